"""The admin jobs page with Redis in use (production mode on TEST_REDIS_URL): "Retry now" on
the outbox, "Requeue" on RQ's failed registry, and both while Redis is away."""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import current_app

from portal import jobs
from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.outbox import OutboxItem
from tests.notify.conftest import free_port
from tests.plugin import PASSWORD, sign_in

pytestmark = pytest.mark.redis


@jobs.job("test.jobs_page.noop")
def _noop():
    pass


@jobs.job("notify.test_jobs_page_failing")
def _failing():
    raise RuntimeError("smtp away")


@jobs.job("notify.test_jobs_page_noop")
def _noop_on_notify():
    pass


def _admin_client(email="ops@example.com", role="admin"):
    """A test client of the current app signed in as a new user of ``role``."""
    db.session.add(
        User(
            email=email,
            name="Ops",
            role=role,
            phone="+919812345678",
            password_hash=hash_password(PASSWORD),
        )
    )
    db.session.commit()
    return sign_in(current_app._get_current_object(), SimpleNamespace(email=email))


def _work(queues=None):
    current_app.extensions["rq"].make_worker(queues).work(burst=True)
    db.session.expire_all()


def _flashes(response):
    html = response.get_data(as_text=True)
    start = html.index('id="flashes"')
    return html[start : html.index("</div>", start)]


def _job_audits():
    return db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.action.like("job.%"))
    ).all()


def _redis_away(*args, **kwargs):
    import redis

    raise redis.exceptions.ConnectionError("Error 111 connecting. Connection refused.")


def _gave_up(name):
    """An outbox item whose last attempt failed in a worker: RQ's failed registry has it."""
    item_id = jobs.enqueue(name)
    db.session.commit()
    db.session.get(OutboxItem, item_id).attempts = jobs.MAX_ATTEMPTS - 1
    db.session.commit()
    _work()
    assert db.session.get(OutboxItem, item_id).attempts == jobs.MAX_ATTEMPTS
    return item_id


def test_requeue_of_a_mail_that_gave_up_sends_it(rq_ctx):
    """A mail whose SMTP server was away for its eight attempts is FAILED, and ``send_mail``
    treats FAILED as done. "Requeue" put the RQ job back as it was: it found the mail
    FAILED, returned, and marked the outbox row done, so the mail was never sent and
    nothing on the page could send it any more. Requeue of an outbox job now goes the way
    "Retry now" does: the mail is reopened, then handed to a worker."""
    from portal.notify.mail import queue_mail
    from portal.notify.models import MailMessage

    app = current_app._get_current_object()
    client = _admin_client()
    message_id = queue_mail("patient@example.com", "Your receipt", "Paid.")
    db.session.commit()
    item = db.session.scalar(sa.select(OutboxItem).where(OutboxItem.job == "notify.send_mail"))
    item.attempts = jobs.MAX_ATTEMPTS - 1  # seven failed with the SMTP server away
    db.session.get(MailMessage, message_id).attempts = jobs.MAX_ATTEMPTS - 1
    db.session.commit()
    item_id = item.id
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=2)
    try:
        _work(["notify"])
    finally:
        app.config.update(MAIL_SERVER=None, MAIL_PORT=25)
    failed = current_app.extensions["rq"].get_queue("notify").failed_job_registry
    assert failed.get_job_ids() == [f"outbox-{item_id}"]
    assert db.session.get(MailMessage, message_id).status == "failed"

    # The SMTP server is back (here: the log); the admin requeues the failed job.
    response = client.post(f"/admin/jobs/rq/notify/outbox-{item_id}/requeue")
    assert response.status_code == 303
    assert "handed to a worker again" in _flashes(client.get("/admin/jobs"))
    assert failed.get_job_ids() == []
    _work(["notify"])
    mail = db.session.get(MailMessage, message_id)
    assert mail.status in ("sent", "logged"), mail.status
    assert db.session.get(OutboxItem, item_id).done_at is not None
    retried = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "job.retry"))
    assert [e.object_id for e in retried] == [str(item_id)]


def test_requeue_of_a_batch_retries_its_items_and_clears_the_registry(rq_ctx, monkeypatch):
    """A batch job (``outbox-<first>-to-<last>``) that failed names its items in its
    arguments: each item not done is retried, and the failed entry goes."""
    monkeypatch.setitem(current_app.config, "JOBS_PER_RQ_JOB", 3)
    client = _admin_client()
    ids = [jobs.enqueue("notify.test_jobs_page_failing") for _ in range(2)]
    ids.append(jobs.enqueue("notify.test_jobs_page_noop"))
    db.session.commit()
    for item_id in ids[:2]:
        db.session.get(OutboxItem, item_id).attempts = jobs.MAX_ATTEMPTS - 1
    db.session.commit()
    _work(["notify"])
    batch = f"outbox-{ids[0]}-to-{ids[2]}"
    failed = current_app.extensions["rq"].get_queue("notify").failed_job_registry
    assert failed.get_job_ids() == [batch]
    assert db.session.get(OutboxItem, ids[2]).done_at is not None

    response = client.post(f"/admin/jobs/rq/notify/{batch}/requeue", follow_redirects=True)
    assert "handed to a worker again" in _flashes(response)
    assert failed.get_job_ids() == []
    queued = current_app.extensions["rq"].get_queue("notify").get_jobs()
    assert sorted(item for j in queued for item in j.args[0]) == ids[:2]
    assert [db.session.get(OutboxItem, i).run_after is not None for i in ids[:2]] == [True] * 2


def test_requeue_of_a_periodic_job_puts_it_back_on_its_queue(rq_ctx):
    """A job that is not an outbox item's (the schedule's ``run_periodic``) is requeued as
    RQ does it, and audited."""
    from rq.results import Result

    client = _admin_client()
    queue = current_app.extensions["rq"].get_queue("default")
    job = queue.enqueue(jobs.run_periodic, "jobs.sweep_outbox")
    queue.remove(job)
    queue.failed_job_registry.add(job, ttl=3600)
    Result.create_failure(job, 3600, exc_string="Traceback…\nRuntimeError: db away")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert job.id in page and "RuntimeError: db away" in page
    response = client.post(f"/admin/jobs/rq/default/{job.id}/requeue", follow_redirects=True)
    assert f"RQ job {job.id} on default requeued" in _flashes(response)
    assert job.id in queue.job_ids and queue.failed_job_registry.get_job_ids() == []
    requeued = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "job.requeue"))
    assert [e.object_id for e in requeued] == [job.id]
    response = client.post("/admin/jobs/rq/default/nope/requeue", follow_redirects=True)
    assert "not in RQ" in _flashes(response)


def test_rq_failed_jobs_show_their_end_in_clinic_time(rq_ctx):
    """Every time on /admin/jobs is clinic time with its zone, except RQ's "Ended", which
    was the repr of a UTC datetime ("2026-05-04 08:43:11.123456+00:00"): 5 h 30 off."""
    client = _admin_client()
    item_id = _gave_up("notify.test_jobs_page_failing")
    html = client.get("/admin/jobs").get_data(as_text=True)
    table = html[html.index('id="rq-failed"') :]
    start = table.index(f"<td>outbox-{item_id}</td>")
    row = table[start : table.index("</tr>", start)]
    assert "+00:00" not in row and " IST" in row, row


def test_a_retry_of_a_job_that_gave_up_made_while_redis_is_away_still_runs(rq_ctx, monkeypatch):
    """Redis away at the admin's retry of a job that gave up: the lease was released "so the
    next sweep hands it over", but the sweep takes only rows under ``MAX_ATTEMPTS`` and this
    one had 8, so it never ran; and the admin was told "handed to a worker again". The
    retry now leaves the row one attempt short of giving up, and says what happened."""
    client = _admin_client()
    item = OutboxItem(
        job="test.jobs_page.noop",
        payload={},
        attempts=jobs.MAX_ATTEMPTS,
        last_error="RuntimeError('gateway away')",
    )
    db.session.add(item)
    db.session.commit()
    item_id = item.id
    with monkeypatch.context() as m:
        m.setattr(jobs, "enqueue_outbox_items", _redis_away)
        response = client.post(f"/admin/jobs/outbox/{item_id}/retry", follow_redirects=True)
    flashed = _flashes(response)
    assert "handed to a worker again" not in flashed
    assert "will be handed to a worker when Redis is back" in flashed
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "job.retry"))
    assert audit.after["attempts"] == jobs.MAX_ATTEMPTS  # the record before the retry
    # Redis is back; the scheduler's sweeps run as usual, then a worker.
    assert jobs.sweep_outbox() == 1
    _work()
    row = db.session.get(OutboxItem, item_id)
    assert row.done_at is not None, (row.attempts, row.dispatched_at)


def test_a_retry_that_fails_again_gives_up_again(rq_ctx):
    """One attempt more, not eight: the retried job that fails is back in RQ's failed
    registry at once, as before the fix."""
    client = _admin_client()
    item_id = _gave_up("notify.test_jobs_page_failing")
    response = client.post(f"/admin/jobs/outbox/{item_id}/retry", follow_redirects=True)
    assert "handed to a worker again" in _flashes(response)
    _work()
    assert db.session.get(OutboxItem, item_id).attempts == jobs.MAX_ATTEMPTS
    failed = current_app.extensions["rq"].get_queue("notify").failed_job_registry
    assert failed.get_job_ids() == [f"outbox-{item_id}"]


def test_requeue_while_redis_is_away_is_not_a_500(rq_ctx, monkeypatch):
    """The page copes with Redis away ("Redis could not be read"), but its Requeue button (on
    a page loaded a moment before) asked Redis with no guard: the admin got the 500 page."""
    import redis

    app = current_app._get_current_object()
    client = _admin_client()
    item_id = _gave_up("notify.test_jobs_page_failing")
    monkeypatch.setattr(redis.Redis, "execute_command", _redis_away)
    monkeypatch.setattr(redis.client.Pipeline, "execute", _redis_away)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # as in production
    response = client.post(f"/admin/jobs/rq/notify/outbox-{item_id}/requeue")
    assert response.status_code == 303
    assert "Redis could not be reached" in _flashes(client.get("/admin/jobs"))
    assert _job_audits() == []
    assert db.session.get(OutboxItem, item_id).attempts == jobs.MAX_ATTEMPTS


def test_the_services_check_the_admin_role_themselves(rq_ctx):
    """The blueprint lets only admins in; the services refuse anyone else too (a CLI or a
    future caller that skips the blueprint)."""
    from portal.accounts.service import PermissionDenied
    from portal.notify import ops

    _admin_client("provider@example.com", role="provider")
    provider = db.session.scalar(sa.select(User).where(User.role == "provider"))
    item_id = _gave_up("notify.test_jobs_page_failing")
    with pytest.raises(PermissionDenied):
        ops.retry_outbox_item(provider, item_id)
    with pytest.raises(PermissionDenied):
        ops.requeue_rq_job(provider, "notify", f"outbox-{item_id}")
    assert db.session.get(OutboxItem, item_id).attempts == jobs.MAX_ATTEMPTS


def test_retry_now_of_an_item_whose_job_still_runs_hands_it_over(rq_ctx, monkeypatch):
    """The item failed, and its RQ job ran on (a batch's next items, or here the fresh jobs
    it takes over). "Retry now" said "handed to a worker again", but the item's marker
    still named the running job, so the hand-over took the item as held and queued
    nothing, and leased it: it waited the whole lease (10 min). Its marker now goes with
    its failure, and the retry reaches Redis."""
    client = _admin_client()
    failing = jobs.enqueue("notify.test_jobs_page_failing")
    db.session.commit()
    saw = []

    def admin_retries_meanwhile(rq_job, limit):
        if saw:  # once: the retried job takes nothing over
            return []
        response = client.post(f"/admin/jobs/outbox/{failing}/retry", follow_redirects=True)
        saw.append((_flashes(response), current_app.extensions["rq"].get_queue("notify").job_ids))
        return []

    with monkeypatch.context() as m:
        m.setattr(jobs, "take_waiting_items", admin_retries_meanwhile)
        _work(["notify"])
    [(flashed, queued)] = saw
    assert "handed to a worker again" in flashed
    assert queued == [f"outbox-{failing}"]
    # (the burst worker ran it next, and it failed again)
    assert db.session.get(OutboxItem, failing).attempts == 2
