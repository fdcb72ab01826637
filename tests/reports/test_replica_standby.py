"""The reporting replica as a real PostgreSQL hot standby: a throwaway primary and a
standby streaming from it (``pg_basebackup -R``), started from Debian's PostgreSQL binaries
by ``tools/services.py`` for this module and stopped after it. The report page reads the
standby, says how far behind it is while replay is paused, and catches up when replay
resumes. Fails (never skips) when the binaries cannot be had: PostgreSQL is one of the
machine's services."""

import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from portal import create_app, replica
from portal.audit.models import AuditEntry
from portal.audit.service import record
from portal.db import unit_of_work
from portal.extensions import db
from tests.plugin import PASSWORD, _dispose, _test_config, create_schema, sign_in
from tools.services import Services

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def clusters():
    """(primary URL, standby URL) of two throwaway servers, the second a hot standby."""
    services = Services()
    try:
        primary = services.throwaway_postgres()
        standby = services.standby_of(primary)
        yield (
            f"postgresql://postgres@127.0.0.1:{primary}/postgres",
            f"postgresql://postgres@127.0.0.1:{standby}/postgres",
        )
    finally:
        services.stop()


@pytest.fixture(scope="module")
def portal(clusters):
    primary_url, standby_url = clusters
    app = create_app(_test_config(primary_url, REPORTS_DATABASE_URL=standby_url))
    create_schema(app)  # on the primary; the standby replays it
    lsn = _one(primary_url, "SELECT pg_current_wal_insert_lsn()")
    _until(lambda: _one(standby_url, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))
    yield app
    with app.app_context():
        replica.engine().dispose()
    _dispose(app)


def _one(url, sql):
    """One value read on its own connection (a server of ``clusters``)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def _until(check, seconds=20):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the standby did not get there in time")
        time.sleep(0.1)


def test_the_report_page_reads_a_hot_standby_and_says_when_it_lags(portal, clusters):
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password

    _primary_url, standby_url = clusters
    with portal.app_context():
        with unit_of_work():
            admin = User(
                email="admin@example.com",
                name="Admin",
                role="admin",
                password_hash=hash_password(PASSWORD),
            )
            db.session.add(admin)
        with unit_of_work():
            record(None, "first.entry", "thing", 1)
        db.session.remove()
    # The admin signs in on the primary; the report waits for the standby's replay.
    client = sign_in(portal, SimpleNamespace(email="admin@example.com"))
    _until(lambda: "first.entry" in client.get("/admin/reports/audit").text)
    assert "Figures from the reporting replica" in client.get("/admin/reports/audit").text
    with portal.app_context():
        _until(lambda: replica.behind() == 0)  # replayed all it received

    # Replay paused: a new entry reaches the standby but is not applied.
    _one(standby_url, "SELECT pg_wal_replay_pause()")
    try:
        time.sleep(2.1)  # the last replayed commit is now at least 2 s old
        with portal.app_context():
            with unit_of_work():
                record(None, "second.entry", "thing", 2)
            db.session.remove()
            # Where the commit's record was inserted (not yet written: commits do not wait
            # for the disk on these servers).
            primary_lsn = db.session.scalar(sa.text("SELECT pg_current_wal_insert_lsn()"))
            db.session.remove()
        _until(
            lambda: _one(
                standby_url, f"SELECT pg_last_wal_receive_lsn() >= '{primary_lsn}'::pg_lsn"
            )
        )
        page = client.get("/admin/reports/audit").text
        assert "second.entry" not in page and "first.entry" in page
        assert "s behind the live system" in page
        assert client.get("/readyz/reports").get_json()["behind_seconds"] >= 2
        with portal.app_context():
            assert replica.behind() >= 2
            # The primary has it: only the report is behind.
            assert db.session.scalar(
                sa.select(AuditEntry.id).where(AuditEntry.action == "second.entry")
            )
    finally:
        _one(standby_url, "SELECT pg_wal_replay_resume()")
    _until(lambda: "second.entry" in client.get("/admin/reports/audit").text)
    with portal.app_context():
        _until(lambda: replica.behind() == 0)  # and the page says nothing of lag again
