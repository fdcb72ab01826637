"""A token bucket: at most ``rate`` requests per second on average, bursts up to
``capacity``. The clock and the sleep are injected, so tests never really wait.

Without Redis (the embedded mode) the bucket is per process. With REDIS_URL the bucket
lives in Redis (:class:`RedisTokenBucket`: one Lua script refills and takes a token
atomically on Redis's own clock), so every worker on every machine shares one budget and
RAZORPAYX_RATE_LIMIT is the account's whole limit."""

import threading
import time


def _capacity(rate, capacity):
    """The bucket's size: the burst, else the rate, but never below one whole token (a
    call takes one, so a smaller bucket, e.g. a rate of 0.5/s, would wait forever)."""
    size = capacity if capacity else (rate or 1)
    return max(float(size), 1.0)


class TokenBucket:
    def __init__(self, rate, capacity=None, *, clock=time.monotonic, sleep=time.sleep):
        if rate is not None and rate <= 0:
            rate = None
        self.rate = rate  # None: unlimited
        self.capacity = _capacity(rate, capacity)
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


# KEYS[1] the bucket; ARGV rate, capacity. Returns "0" when a token was taken, else the
# seconds to wait before trying again (as text: Lua numbers come back as integers).
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or capacity
local ts = tonumber(v[2]) or now
tokens = math.min(capacity, tokens + math.max(now - ts, 0) * rate)
local wait = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(tokens - 1, 0)
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


class RedisTokenBucket:
    """The same bucket, shared by every process through Redis."""

    def __init__(self, redis, rate, capacity=None, *, key="portal:razorpayx:bucket", sleep=None):
        if rate is not None and rate <= 0:
            rate = None
        self.rate = rate
        self.capacity = _capacity(rate, capacity)
        self.key = key
        self.sleep = sleep or time.sleep
        self._take = redis.register_script(_TAKE)
        self.acquired = 0
        self.waited = 0.0

    def acquire(self):
        if self.rate is None:
            self.acquired += 1
            return 0.0
        waited = 0.0
        while True:
            wait = float(self._take(keys=[self.key], args=[self.rate, self.capacity]))
            if wait <= 0:
                self.acquired += 1
                self.waited += waited
                return waited
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
