"""The embedded mode's process lock waits a bounded time (``EMBEDDED_LOCK_TIMEOUT``): a
request that cannot have it gets the 503 "busy" page, never a 500 and nothing written; a
job that cannot have it is left due for the runner to try again; the log names what held
it (docs/architecture.md, "The embedded mode"). On SQLite in every run (the module's own
``app``): PostgreSQL takes no such lock, and a skip in the PostgreSQL run would only say so."""

import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from portal import create_app, jobs
from portal.audit.models import AuditEntry
from portal.db import SQLITE_LOCK, Busy, unit_of_work
from portal.extensions import db
from portal.outbox import OutboxItem
from tests.plugin import _dispose, _test_config, create_schema

RAN = []


@jobs.job("test.lock_probe")
def _probe(value):
    RAN.append(value)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The embedded mode's database, whatever TEST_DATABASE_URL names."""
    url = "sqlite:///" + str(tmp_path_factory.mktemp("embedded") / "portal.sqlite3")
    app = create_app(_test_config(url))
    create_schema(app)
    yield app
    _dispose(app)


@pytest.fixture
def embedded(app):
    app.config["EMBEDDED_LOCK_TIMEOUT"] = 0.2
    RAN.clear()
    try:
        yield app
    finally:
        app.config["EMBEDDED_LOCK_TIMEOUT"] = 30.0


@contextmanager
def held_elsewhere(app, path="/admin/slow-export"):
    """Another thread's request holds the lock (in a unit of work) for the block."""
    taken, done = threading.Event(), threading.Event()

    def hold():
        with app.test_request_context(path):
            with unit_of_work():
                taken.set()
                done.wait(10)
            db.session.remove()

    thread = threading.Thread(target=hold, name="holder")
    thread.start()
    assert taken.wait(5)
    try:
        yield done.set  # the holder lets go when called (or when the block ends)
    finally:
        done.set()
        thread.join(5)
        assert not thread.is_alive()


def free_to_another():
    """Whether another thread can have the lock now. Not this one: the lock is re-entrant,
    so this thread's own ``acquire`` succeeds even while it still holds a level."""
    got = []

    def probe():
        ok = SQLITE_LOCK.acquire(timeout=5)
        if ok:
            SQLITE_LOCK.release()
        got.append(ok)

    thread = threading.Thread(target=probe, name="probe")
    thread.start()
    thread.join(10)
    return got == [True]


def _audit_rows(app):
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
        db.session.remove()
    return count


def test_a_request_gets_the_busy_page_when_the_lock_stays_taken(
    embedded, client, make_user, caplog
):
    patient = make_user("patient")
    with held_elsewhere(embedded), caplog.at_level("WARNING", logger="portal.db"):
        r = client.post("/auth/login", data={"email": patient.email, "password": "wrong"})
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert "The portal is busy; try again in a moment" in r.get_data(as_text=True)
    # Nothing was written: the failed sign-in's count and audit row came with the lock.
    with embedded.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0
    # The log says what held the lock.
    assert "GET /admin/slow-export" in caplog.text
    # Free again: the same request is answered as usual.
    r = client.post("/auth/login", data={"email": patient.email, "password": "wrong"})
    assert r.status_code == 422  # the form again, with its message


def test_the_wait_raises_busy_outside_a_request(embedded):
    with embedded.app_context(), held_elsewhere(embedded):
        with pytest.raises(Busy), unit_of_work():
            pass
    # The holder gone and the failed wait holding nothing: another thread has it at once.
    assert free_to_another()


def test_a_request_waiting_for_the_lock_gets_it_once_the_holder_lets_go(
    embedded, client, make_user
):
    """Within the timeout the wait is a wait, not a refusal: the holder lets go while the
    request waits, and the request has the lock and is answered as usual."""
    embedded.config["EMBEDDED_LOCK_TIMEOUT"] = 5.0
    patient = make_user("patient")
    before = _audit_rows(embedded)
    with held_elsewhere(embedded) as let_go:
        threading.Timer(0.3, let_go).start()
        started = time.monotonic()
        r = client.post("/auth/login", data={"email": patient.email, "password": "wrong"})
        waited = time.monotonic() - started
    assert r.status_code == 422  # the form again, with its message: not the busy page
    assert waited >= 0.2  # it did wait for the holder
    assert _audit_rows(embedded) == before + 1  # the failed sign-in's row, written
    assert free_to_another()


def test_a_job_waiting_for_the_lock_runs_once_the_holder_lets_go(embedded):
    embedded.config["EMBEDDED_LOCK_TIMEOUT"] = 5.0
    with embedded.app_context():
        with held_elsewhere(embedded) as let_go:
            jobs.enqueue("test.lock_probe", value="y")
            threading.Timer(0.3, let_go).start()
            db.session.commit()  # the handover runs it at once: it waits, then has the lock
            assert RAN == ["y"]
        item = db.session.scalar(sa.select(OutboxItem).order_by(OutboxItem.id.desc()))
        assert item.done_at is not None  # done at once, no sweep needed
        db.session.remove()
    assert free_to_another()


def test_a_job_that_cannot_have_the_lock_is_left_due_and_run_later(embedded):
    with embedded.app_context():
        with held_elsewhere(embedded):
            jobs.enqueue("test.lock_probe", value="x")
            # The commit hands the item over (run at once in tests): it meets the lock.
            # Outside the holder, this commit's own unit of work: a plain session commit.
            db.session.commit()
            assert RAN == []
            item = db.session.scalar(sa.select(OutboxItem))
            assert item.done_at is None
        # The sweep hands it over again, the lock free: it runs.
        db.session.rollback()
        jobs.sweep_outbox()
        db.session.expire_all()
        item = db.session.scalar(sa.select(OutboxItem))
        assert RAN == ["x"] and item.done_at is not None
        db.session.remove()


def test_the_lock_is_let_go_only_before_a_unit_of_work_writes(embedded, make_user):
    from portal.db import outside_the_lock

    admin = make_user("admin")
    with embedded.app_context():
        with unit_of_work():
            with outside_the_lock():
                assert SQLITE_LOCK.acquire(blocking=False)  # another could have it now
                SQLITE_LOCK.release()
            from portal.accounts.models import User

            db.session.get(User, admin.id).name = "Changed"
            db.session.flush()
            with pytest.raises(RuntimeError), outside_the_lock():
                pass
        db.session.remove()


def test_an_export_whose_lock_is_not_free_again_in_time_is_retried(
    embedded, make_user, tmp_path, monkeypatch
):
    """The file written outside the lock, the lock then held by another for longer than the
    timeout: the attempt fails (the partial file removed, the export still queued, the lock
    left as it was), and the item runs again once the lock is free."""
    from portal.audit.service import record
    from portal.domain.states import ExportStatus
    from portal.exports import service as exports
    from portal.exports.models import Export

    embedded.config["EXPORT_DIR"] = str(tmp_path)
    admin = make_user("admin")
    taken, done = threading.Event(), threading.Event()

    def hold():
        with SQLITE_LOCK:
            taken.set()
            done.wait(10)

    real = exports._write_progress

    def progress_then_taken(export_id, rows):
        real(export_id, rows)
        if not taken.is_set():  # the file written: someone else takes the lock meanwhile
            threading.Thread(target=hold, name="holder").start()
            assert taken.wait(5)

    monkeypatch.setattr(exports, "_write_progress", progress_then_taken)
    try:
        with embedded.app_context():
            with unit_of_work():
                for i in range(3):
                    record(admin.id, "test.thing", "thing", i)
            exports.start(admin, "audit", {"action": "test."})  # its job runs at the commit
            export = db.session.scalar(sa.select(Export))
            assert export.status == ExportStatus.QUEUED
            assert not list(tmp_path.glob("*.csv*"))
            item = db.session.scalar(sa.select(OutboxItem))
            assert item.done_at is None
            done.set()
            assert free_to_another()  # the holder's gone, and nothing is left held of ours
            db.session.rollback()
            jobs.sweep_outbox()
            db.session.expire_all()
            export = db.session.scalar(sa.select(Export))
            assert (export.status, export.rows_written) == (ExportStatus.DONE, 3)
            assert db.session.scalar(sa.select(OutboxItem)).done_at is not None
            db.session.remove()
    finally:
        done.set()
        embedded.config["EXPORT_DIR"] = ""
