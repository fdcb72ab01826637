"""Webhook delivery from the sandbox: Razorpay's envelope, signature and retries.

Each event is serialised once; every attempt (and every injected duplicate) sends the same
bytes with the same ``X-Razorpay-Event-Id``, as Razorpay does. A non-2xx answer or a
network error schedules a retry with backoff until ``max_attempts`` is reached.

Razorpay sends webhooks in parallel and promises no order; ``senders`` > 1 does the same
(a pass sends its due deliveries over that many threads). One sender, the default of the
in-process sandbox, keeps tests' deliveries in a fixed order; the sandbox served on its own
port uses several, so that a portal under load is not fed its webhooks one at a time."""

import json
import logging
import random
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from portal.gateway import tls
from portal.gateway.webhooks import sign_body

log = logging.getLogger("portal.gateway.sandbox")
_ALPHABET = string.ascii_letters + string.digits


@dataclass
class Delivery:
    event_id: str
    source: str
    event: str
    body: bytes
    url: str
    secret: str
    attempts: int = 0
    next_at: float = 0.0
    statuses: list = field(default_factory=list)


def http_transport(timeout=5.0):
    client = httpx.Client(timeout=timeout, verify=tls.context())

    def send(url, body, headers):
        return client.post(url, content=body, headers=headers).status_code

    send.close = client.close
    return send


def wsgi_transport(wsgi_app):
    """Deliver into a WSGI app in-process (tests, and the embedded mode's test client)."""
    client = httpx.Client(transport=httpx.WSGITransport(app=wsgi_app))

    def send(url, body, headers):
        return client.post(url, content=body, headers=headers).status_code

    send.close = client.close
    return send


class WebhookDispatcher:
    def __init__(
        self,
        *,
        account_id,
        faults,
        clock=time.time,
        transport=None,
        max_attempts=5,
        backoff=1.0,
        timeout=5.0,
        seed=None,
        senders=1,
    ):
        self.account_id = account_id
        self.faults = faults
        self.clock = clock
        self.transport = transport
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.senders = max(int(senders), 1)
        self._pool = None  # the sender threads, made on first use when senders > 1
        self.backoff = backoff
        self._own_transport = False
        self.targets = {}  # source -> (url, secret)
        self._random = random.Random(seed)
        self._lock = threading.Lock()  # guards the lists below
        self._deliver_lock = threading.Lock()  # one delivery pass at a time
        self._stop = threading.Event()
        self._thread = None
        self.reset()

    def reset(self):
        with self._lock:
            self.events = []  # every event made, newest last
            self.pending = []
            self.delivered = []  # (event_id, event, status)
            self.failed = []  # deliveries given up on
            self.dropped = []  # deliveries dropped by fault injection

    def set_target(self, source, url, secret):
        with self._lock:
            if url:
                self.targets[source] = (url, secret)
            else:
                self.targets.pop(source, None)

    def emit(self, source, name, entities, created_at=None):
        envelope = {
            "entity": "event",
            "account_id": self.account_id,
            "event": name,
            "contains": list(entities),
            "payload": {key: {"entity": value} for key, value in entities.items()},
            "created_at": int(created_at if created_at is not None else self.clock()),
        }
        with self._lock:
            event_id = "".join(self._random.choice(_ALPHABET) for _ in range(14))
            self.events.append({"id": event_id, "source": source, **envelope})
            target = self.targets.get(source)
            if target:
                body = json.dumps(envelope, separators=(",", ":")).encode()
                self.pending.append(Delivery(event_id, source, name, body, *target))
        return event_id

    def deliver_pending(self, force=True):
        """Send what is due (everything when ``force``) once; returns [(event_id, status)]."""
        with self._deliver_lock:
            now = self.clock()
            with self._lock:
                due = [d for d in self.pending if force or d.next_at <= now]
                self.pending = [d for d in self.pending if d not in due]
            shaped, dropped = self.faults.shape_deliveries(due)
            results, ok, failed = [], set(), {}
            for delivery, status in zip(shaped, self._send_all(shaped), strict=True):
                delivery.statuses.append(status)
                results.append((delivery.event_id, status))
                if isinstance(status, int) and 200 <= status < 300:
                    ok.add(id(delivery))
                    with self._lock:
                        self.delivered.append((delivery.event_id, delivery.event, status))
                else:
                    failed[id(delivery)] = delivery
            with self._lock:
                self.dropped.extend(dropped)
                for key, delivery in failed.items():
                    if key in ok:
                        continue
                    delivery.attempts += 1
                    if delivery.attempts >= self.max_attempts:
                        self.failed.append(delivery)
                        log.warning(
                            "webhook %s (%s) given up after %d attempts",
                            delivery.event_id,
                            delivery.event,
                            delivery.attempts,
                        )
                    else:
                        delivery.next_at = now + self.backoff * 2 ** (delivery.attempts - 1)
                        self.pending.append(delivery)
            return results

    def _send_all(self, deliveries):
        """Each delivery's status, in the order given (sent in parallel when senders > 1)."""
        if self.transport is None:  # one client for every sender thread (httpx's is safe)
            self.transport = http_transport(self.timeout)
            self._own_transport = True
        if self.senders == 1 or len(deliveries) < 2:
            return [self._send(d) for d in deliveries]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.senders, thread_name_prefix="sandbox-send")
        return list(self._pool.map(self._send, deliveries))

    def _send(self, delivery):
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign_body(delivery.body, delivery.secret),
            "X-Razorpay-Event-Id": delivery.event_id,
            "User-Agent": "Razorpay-Webhook/v1 (sandbox)",
        }
        try:
            return self.transport(delivery.url, delivery.body, headers)
        except Exception as exc:  # a network error is just a failed attempt
            log.info("webhook %s to %s failed: %r", delivery.event_id, delivery.url, exc)
            return repr(exc)

    # --- the background sender ---------------------------------------------------------

    def start(self, tick=None, interval=0.25):
        if self._thread is not None:
            return
        self._stop.clear()

        def run():
            while not self._stop.is_set():
                try:
                    if tick:
                        tick()
                    self.deliver_pending(force=False)
                except Exception:
                    log.exception("sandbox webhook loop")
                self._stop.wait(interval)

        self._thread = threading.Thread(target=run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._own_transport:
            self.transport.close()
            self.transport, self._own_transport = None, False
