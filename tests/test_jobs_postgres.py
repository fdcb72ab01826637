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


RUNNING, RELEASE = threading.Event(), threading.Event()


@jobs.job("test.slow_gateway")
def _slow_gateway():
    RUNNING.set()
    RELEASE.wait(30)  # a gateway call that takes its time (a job may run 300 s)


@pytest.mark.postgres
def test_retry_now_on_a_running_job_answers_at_once_and_retries_nothing(pg_app):
    """The jobs page lists every row not done, the running ones too, each with "Retry now".
    ``retry_outbox_item`` wrote the row, which the running job's claim holds ``FOR UPDATE``
    until its commit: the admin's request waited for the job (up to its 300 s; gunicorn
    kills a request after 30 s), then audited a retry and handed over a job that was done.
    It now skips the locked row and says the job is running; nothing is audited."""
    import time
    from types import SimpleNamespace

    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.audit.models import AuditEntry
    from tests.plugin import PASSWORD, sign_in

    RUNNING.clear()
    RELEASE.clear()
    with pg_app.app_context():
        admin = User(
            email="retry@example.com",
            name="Retry Admin",
            role="admin",
            phone="+919812345678",
            password_hash=hash_password(PASSWORD),
        )
        item = OutboxItem(job="test.slow_gateway", payload={}, attempts=0)
        db.session.add_all([admin, item])
        db.session.commit()
        item_id = item.id
        db.session.remove()
    client = sign_in(pg_app, SimpleNamespace(email="retry@example.com"))

    def worker():
        with pg_app.app_context():
            jobs.run_outbox_item(item_id, reraise=False)
            db.session.remove()

    answered = {}

    def admin_clicks_retry():
        started = time.monotonic()
        response = client.post(f"/admin/jobs/outbox/{item_id}/retry", follow_redirects=True)
        answered["after"] = time.monotonic() - started
        answered["page"] = response.get_data(as_text=True)

    running = threading.Thread(target=worker)
    running.start()
    try:
        assert RUNNING.wait(10)
        click = threading.Thread(target=admin_clicks_retry)
        click.start()
        click.join(5)
        still_waiting = click.is_alive()
    finally:
        RELEASE.set()
        running.join(30)
    click.join(30)
    assert not still_waiting, "the admin's Retry now was still waiting for the running job"
    assert f"Job #{item_id} (test.slow_gateway) is running now" in answered["page"]
    with pg_app.app_context():
        retries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "job.retry")
        ).all()
        done = db.session.get(OutboxItem, item_id)
        assert retries == [] and done.done_at is not None and done.attempts == 1
        db.session.remove()
