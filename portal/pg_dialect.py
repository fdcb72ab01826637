"""PostgreSQL through psycopg 3, with its prepared statements kept.

psycopg prepares a statement on a connection once it has run 5 times there, so the server
no longer parses and plans it: a page's statements took about a third of the time
(docs/performance.md). But psycopg forgets every prepared statement, and every count
towards one, whenever the connection rolls back, and SQLAlchemy ends every transaction
that did not commit with a rollback: every read-only request, every refused hold. So
nothing was ever prepared.

This dialect ends a transaction that only read with COMMIT instead: nothing of it is kept
either way, and its advisory locks are released either way. "Only read" means every
statement began with SELECT and took no row lock (``FOR UPDATE`` / ``SHARE``: a row lock
gives the transaction an id, and committing one waits for the log, and for a synchronous
standby, where a rollback does not). A transaction that ran anything else (DML, a CTE,
DDL, a SAVEPOINT) or failed is rolled back as before, so psycopg's own reason to forget
(a rolled-back DDL) still applies. The portal runs no SELECT with a lasting side effect
(``set_config`` for the session, ``pg_notify``, a function that writes); one added must
not rely on a rollback to undo it. ``portal.db`` registers this as
``postgresql+psycopg``."""

import re

from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Engine

WROTE = "_portal_wrote"  # on the psycopg connection: this transaction may have written
ROW_LOCK = re.compile(r"\bFOR (?:NO KEY UPDATE|UPDATE|KEY SHARE|SHARE)\b")


def _raw(connection):
    """The psycopg connection behind SQLAlchemy's pool proxy."""
    return getattr(connection, "dbapi_connection", None) or connection


class PortalPsycopgDialect(PGDialect_psycopg):
    supports_statement_cache = True  # compiles exactly as its parent

    def do_rollback(self, dbapi_connection):
        raw = _raw(dbapi_connection)
        if not getattr(raw, WROTE, False) and raw.info.transaction_status == (
            TransactionStatus.INTRANS
        ):
            try:
                raw.commit()  # the same as a rollback here, and the cache survives it
            except Exception:  # noqa: BLE001 (whatever it was: roll back as before)
                pass
            else:
                return
        super().do_rollback(dbapi_connection)
        setattr(raw, WROTE, False)  # only once the transaction has ended

    def do_commit(self, dbapi_connection):
        super().do_commit(dbapi_connection)
        setattr(_raw(dbapi_connection), WROTE, False)


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany):
    if conn.dialect.driver == "psycopg" and (
        not statement.startswith("SELECT") or ROW_LOCK.search(statement)
    ):
        setattr(cursor.connection, WROTE, True)
