"""Running test bodies at the same time, each in its own thread and app context (the
PostgreSQL concurrency tests)."""
import threading

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
