"""PostgreSQL (portal.pg_dialect): a read runs outside any transaction, the first write opens
one that holds until it ends; a transaction that only read ends with COMMIT, so psycopg
keeps its prepared statements across requests; one that wrote, or failed, still rolls
back."""

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from psycopg.pq import TransactionStatus

from portal import pg_dialect
from portal.audit.models import AuditEntry
from portal.db import db
from portal.pg_dialect import PortalPsycopgDialect, runs_alone

pytestmark = pytest.mark.postgres

STATEMENTS = sa.text("SELECT statement FROM pg_prepared_statements")


def _entries(conn):
    return conn.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar()


def test_read_only_transactions_keep_the_prepared_statements(pg_app):
    with pg_app.app_context():
        assert isinstance(db.engine.dialect, PortalPsycopgDialect)
        with db.engine.connect() as conn:
            query = sa.select(AuditEntry.id).where(AuditEntry.object_id == sa.bindparam("o"))
            for _ in range(7):  # psycopg prepares a statement at its 6th run
                conn.execute(query, {"o": "prepared?"}).all()
                conn.rollback()  # how every read-only request ends
            prepared = conn.execute(STATEMENTS).scalars().all()
            conn.rollback()
    assert any("FROM audit_log" in s for s in prepared), prepared


def _prepare(conn):
    query = sa.select(AuditEntry.id).where(AuditEntry.object_id == sa.bindparam("o"))
    for _ in range(7):
        conn.execute(query, {"o": "prepared?"}).all()
        conn.rollback()
    assert conn.execute(STATEMENTS).scalars().all()
    conn.rollback()


@pytest.mark.parametrize(
    "lock", [{}, {"read": True}, {"key_share": True}, {"read": True, "key_share": True}]
)
def test_a_read_that_locks_rows_is_rolled_back_not_committed(pg_app, lock):
    # A row lock gives the transaction an id (a commit would wait for the log and for a
    # synchronous standby): it is rolled back, which also makes psycopg forget.
    with pg_app.app_context(), db.engine.connect() as conn:
        _prepare(conn)
        conn.execute(sa.select(AuditEntry.id).limit(1).with_for_update(**lock)).all()
        conn.rollback()
        assert conn.execute(STATEMENTS).scalars().all() == []
        conn.rollback()


def test_a_transaction_that_wrote_is_still_rolled_back(pg_app):
    with pg_app.app_context(), db.engine.connect() as conn:
        before = _entries(conn)
        conn.rollback()
        conn.execute(sa.select(AuditEntry.id).limit(1)).all()  # a read first, then a write
        conn.execute(sa.insert(AuditEntry).values(action="x", object_type="t", object_id="1"))
        conn.rollback()
        assert _entries(conn) == before
        conn.rollback()


def test_a_failed_transaction_is_rolled_back_and_the_connection_works(pg_app):
    with pg_app.app_context(), db.engine.connect() as conn:
        try:
            conn.execute(sa.text("SELECT 1 / 0")).all()
        except sa.exc.DataError:
            pass
        conn.rollback()
        assert conn.execute(sa.text("SELECT 2")).scalar() == 2
        conn.rollback()


def test_a_read_only_transaction_releases_its_locks_when_it_ends(pg_app):
    with pg_app.app_context(), db.engine.connect() as one, db.engine.connect() as two:
        one.execute(sa.text("SELECT pg_advisory_xact_lock(4242)")).all()
        assert two.execute(sa.text("SELECT pg_try_advisory_xact_lock(4242)")).scalar() is False
        two.rollback()
        one.rollback()  # ends with COMMIT: the lock goes all the same
        assert two.execute(sa.text("SELECT pg_try_advisory_xact_lock(4242)")).scalar() is True
        two.rollback()


def test_prepared_statements_turned_off_prepare_nothing(pg_app):
    # DB_PREPARED_STATEMENTS=false passes this to psycopg (behind PgBouncer < 1.21).
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    engine = sa.create_engine(url, connect_args={"prepare_threshold": None})
    try:
        with engine.connect() as conn:
            for _ in range(7):
                conn.execute(sa.select(AuditEntry.id).limit(1)).all()
                conn.rollback()
            assert conn.execute(STATEMENTS).scalars().all() == []
            conn.rollback()
    finally:
        engine.dispose()


def _status(conn):
    return conn.connection.dbapi_connection.pgconn.transaction_status


def test_a_read_opens_no_transaction_and_the_first_write_opens_one(pg_app):
    with pg_app.app_context(), db.engine.connect() as conn, db.engine.connect() as other:
        before = _entries(conn)
        assert _status(conn) == TransactionStatus.IDLE  # no BEGIN, nothing to end
        conn.execute(sa.insert(AuditEntry).values(action="x", object_type="t", object_id="2"))
        assert _status(conn) == TransactionStatus.INTRANS
        assert _entries(conn) == before + 1  # a read after the write: inside it
        assert _entries(other) == before  # not committed: nobody else sees it
        other.rollback()
        conn.commit()
        assert _status(conn) == TransactionStatus.IDLE
        assert _entries(other) == before + 1
        other.rollback()


def test_a_session_read_opens_no_transaction(pg_app):
    with pg_app.app_context():
        db.session.execute(sa.select(AuditEntry.id).limit(1)).all()
        raw = db.session.connection().connection.dbapi_connection
        assert raw.pgconn.transaction_status == TransactionStatus.IDLE
        db.session.rollback()


def test_a_server_side_cursor_reads_inside_a_transaction(pg_app):
    # stream_results (the exports) is a DECLARE, which needs a transaction.
    with pg_app.app_context(), db.engine.connect() as conn:
        streamed = conn.execution_options(stream_results=True, yield_per=10)
        rows = streamed.execute(sa.select(sa.func.generate_series(1, 25))).scalars().all()
        assert rows == list(range(1, 26))
        conn.rollback()


def test_a_connection_the_caller_put_in_autocommit_stays_so(pg_app):
    # VACUUM cannot run in a transaction: the dialect must not open one around it.
    with pg_app.app_context(), db.engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(sa.text("VACUUM audit_log"))


def test_a_stricter_isolation_level_opens_its_transaction_before_the_first_read(pg_app):
    # REPEATABLE READ's snapshot is the transaction's: taken at its first statement.
    with pg_app.app_context(), db.engine.connect() as conn:
        strict = conn.execution_options(isolation_level="REPEATABLE READ")
        strict.execute(sa.select(AuditEntry.id).limit(1)).all()
        assert _status(strict) == TransactionStatus.INTRANS
        strict.rollback()


def test_a_rollback_at_a_stricter_level_still_rolls_the_writes_back(pg_app):
    with pg_app.app_context(), db.engine.connect() as conn:
        strict = conn.execution_options(isolation_level="REPEATABLE READ")
        before = _entries(strict)
        strict.execute(sa.insert(AuditEntry).values(action="x", object_type="t", object_id="3"))
        strict.rollback()  # not a COMMIT: the transaction wrote
        assert _entries(strict) == before
        strict.rollback()


def test_read_committed_however_spelled_reads_outside_a_transaction(pg_app):
    with pg_app.app_context(), db.engine.connect() as conn:
        for spelling in ("read_committed", "READ COMMITTED", "READ UNCOMMITTED"):
            level = conn.execution_options(isolation_level=spelling)
            level.execute(sa.select(AuditEntry.id).limit(1)).all()
            assert _status(level) == TransactionStatus.IDLE, spelling
            level.rollback()


def test_a_streamed_read_ends_without_forgetting_the_prepared_statements(pg_app):
    with pg_app.app_context(), db.engine.connect() as conn:
        _prepare(conn)
        streamed = conn.execution_options(stream_results=True, yield_per=10)
        assert len(streamed.execute(sa.select(sa.func.generate_series(1, 5))).all()) == 5
        conn.rollback()  # a transaction that only read: COMMIT, the cache kept
        assert conn.execute(STATEMENTS).scalars().all()
        conn.rollback()


@pytest.mark.parametrize(
    "statement, alone",
    [
        ("SELECT users.id FROM users WHERE users.id = %(id)s", True),
        ("SELECT pg_advisory_lock(1)", True),  # a session lock: outlives any transaction
        ("SELECT visits.id FROM visits FOR UPDATE", False),
        ("SELECT visits.id FROM visits FOR NO KEY UPDATE SKIP LOCKED", False),
        ("SELECT visits.id FROM visits FOR KEY SHARE OF visits", False),
        ("SELECT pg_advisory_xact_lock(hashtextextended(s, 0)) FROM unnest(x)", False),
        ("SELECT PG_TRY_ADVISORY_XACT_LOCK_SHARED(7)", False),
        ("SELECT visits.id FROM visits for update", False),  # a lock in any case
        ("select 1", False),  # not recognised: a transaction, as before
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
        ("INSERT INTO audit_log (action) VALUES ('x')", False),
    ],
)
def test_what_runs_alone(statement, alone):
    assert runs_alone(statement) is alone


def test_reads_in_a_transaction_when_switched_off(pg_app, monkeypatch):
    # bench_reads' other way: psycopg's, every statement in a transaction.
    monkeypatch.setattr(pg_dialect, "READS_ALONE", False)
    with pg_app.app_context(), db.engine.connect() as conn:
        conn.execute(sa.select(AuditEntry.id).limit(1)).all()
        assert _status(conn) == TransactionStatus.INTRANS
        conn.rollback()


@contextmanager
def _engine(pg_app, isolation_level):
    """A connection of an engine made at ``isolation_level`` (create_engine's own)."""
    engine = sa.create_engine(
        pg_app.config["SQLALCHEMY_DATABASE_URI"], isolation_level=isolation_level
    )
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def test_an_engine_in_autocommit_stays_so(pg_app):
    # Such an engine (tests/plugin.py, tools/prod_env.py: CREATE DATABASE) reports the
    # server's READ COMMITTED: only its own isolation setting says it is in autocommit.
    with _engine(pg_app, "AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM audit_log"))  # refused inside a transaction


def test_an_engine_at_a_stricter_level_opens_its_transaction_before_the_first_read(pg_app):
    # An engine made at REPEATABLE READ (not a connection's execution option): its
    # snapshot is the transaction's, as for a connection asking so.
    with _engine(pg_app, "REPEATABLE READ") as conn:
        conn.execute(sa.select(AuditEntry.id).limit(1)).all()
        assert _status(conn) == TransactionStatus.INTRANS
        conn.rollback()
