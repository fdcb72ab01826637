"""On PostgreSQL: two transactions asking for the same deduplicated work at once."""

import threading

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.extensions import db
from portal.outbox import OutboxItem

RAN = []


@jobs.job("test.dedupe_race")
def _record(value):
    RAN.append(value)


@pytest.mark.postgres
def test_a_dedupe_key_taken_concurrently_is_skipped_not_a_failure(pg_app):
    """The second asker waits for the first one's commit, then finds the key taken: its
    enqueue returns None and the rest of its unit of work commits (a plain insert would
    have failed it with a unique violation)."""
    RAN.clear()
    first_wrote, second_asked = threading.Event(), threading.Event()
    results, errors = {}, []

    def first():
        with pg_app.app_context():
            try:
                results["first"] = jobs.enqueue("test.dedupe_race", value=1, dedupe_key="race")
                first_wrote.set()
                second_asked.wait(5)
                # Give the second asker time to block on the key before this commits.
                db.session.execute(sa.text("SELECT pg_sleep(0.3)"))
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)
            finally:
                db.session.remove()

    def second():
        with pg_app.app_context():
            try:
                first_wrote.wait(5)
                second_asked.set()
                results["second"] = jobs.enqueue("test.dedupe_race", value=2, dedupe_key="race")
                results["other"] = jobs.enqueue("test.dedupe_race", value=3)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        with pg_app.app_context():
            keys = db.session.scalars(sa.select(OutboxItem.dedupe_key).order_by(OutboxItem.id))
            keys = list(keys)
    finally:
        with pg_app.app_context():
            db.session.execute(sa.delete(OutboxItem))
            db.session.commit()
            db.session.remove()
    assert errors == []
    assert isinstance(results["first"], int) and results["second"] is None
    assert isinstance(results["other"], int)  # the second unit of work committed
    assert keys == ["race", None]
    assert sorted(RAN) == [1, 3]
