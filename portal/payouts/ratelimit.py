"""A token bucket: at most ``rate`` requests per second on average, bursts up to
``capacity``. The clock and the sleep are injected, so tests never really wait.

One bucket per process (see docs/payouts.md: with N worker processes the account sees at
most N × rate; set RAZORPAYX_RATE_LIMIT to the account's limit divided by N)."""

import threading
import time


class TokenBucket:
    def __init__(self, rate, capacity=None, *, clock=time.monotonic, sleep=time.sleep):
        if rate is not None and rate <= 0:
            rate = None
        self.rate = rate  # None: unlimited
        self.capacity = float(capacity if capacity is not None else (rate or 1))
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()
        self.acquired = 0
        self.waited = 0.0

    def _refill(self, now):
        elapsed = max(now - self._last, 0.0)
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)

    def acquire(self):
        """Take one token, waiting (via ``sleep``) for it if the bucket is empty."""
        if self.rate is None:
            self.acquired += 1
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                self._refill(self.clock())
                if self._tokens >= 1.0 - 1e-9:  # float refills may fall a hair short
                    self._tokens = max(self._tokens - 1.0, 0.0)
                    self.acquired += 1
                    self.waited += waited
                    return waited
                wait = (1.0 - self._tokens) / self.rate
            self.sleep(wait)
            waited += wait


class LimitedGateway:
    """The RazorpayX adapter with every API call taking a token first."""

    def __init__(self, adapter, bucket):
        self.adapter = adapter
        self.bucket = bucket
        self.calls = 0

    def __getattr__(self, name):
        target = getattr(self.adapter, name)
        if not callable(target) or name.startswith("_") or name in ("close",):
            return target

        def call(*args, **kwargs):
            self.bucket.acquire()
            self.calls += 1
            return target(*args, **kwargs)

        return call
