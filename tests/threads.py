"""Threads in tests: running bodies at the same time (the PostgreSQL concurrency tests),
waiting until one of them is blocked on a row lock, and serving a WSGI app on loopback."""

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from werkzeug.serving import make_server

from portal.extensions import db


def run_together(app, *bodies, timeout=30):
    """Start every body in its own thread inside ``app``'s context and wait for all.
    Returns, in order, what each body returned or the exception it raised, for the test
    to assert on (nothing is swallowed silently: an unexpected exception is a result)."""
    results = [None] * len(bodies)

    def run(i, body):
        with app.app_context():
            try:
                results[i] = body()
            except Exception as exc:  # noqa: BLE001 -- returned to the test
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, body)) for i, body in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return results


LOCK_WAITERS = sa.text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


def lock_waiters(engine):
    """How many other sessions on this database are waiting for a lock right now."""
    with engine.connect() as probe:
        return probe.scalar(LOCK_WAITERS)


def wait_for_lock_waiters(engine, count=1, timeout=10.0, interval=0.01):
    """Poll ``pg_stat_activity`` until at least ``count`` other sessions wait on a lock:
    the other thread has reached the locked row (no fixed sleep, no guessing). Fails the
    test if that does not happen within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with engine.connect() as probe:
        while True:
            waiting = probe.scalar(LOCK_WAITERS)
            probe.rollback()  # a fresh snapshot of pg_stat_activity on the next read
            if waiting >= count:
                return waiting
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} session(s) never started waiting on a lock ({waiting} did)"
                )
            time.sleep(interval)


@dataclass
class Served:
    """A WSGI app served on 127.0.0.1 from a daemon thread; ``stop()`` shuts it down."""

    url: str
    server: object
    thread: threading.Thread

    @property
    def port(self):
        return self.server.server_port

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


def serve(app, poll_interval=0.05):
    """Serve ``app`` over real HTTP on a free loopback port (threaded, like production)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        name="wsgi-server",
        kwargs={"poll_interval": poll_interval},
        daemon=True,
    )
    thread.start()
    return Served(f"http://127.0.0.1:{server.server_port}", server, thread)
