"""PostgreSQL through psycopg 3, with its prepared statements kept.

psycopg prepares a statement on a connection once it has run 5 times there, so the server
no longer parses and plans it: a page's statements took about a quarter of the time
(docs/performance.md). But psycopg forgets every prepared statement, and every count
towards one, whenever the connection rolls back, and SQLAlchemy ends every transaction
that did not commit with a rollback: every read-only request, every refused hold. So
nothing was ever prepared.

This dialect ends a transaction that only read with COMMIT instead. For a transaction
that ran nothing but SELECTs the outcome is the same: nothing of it is kept, its locks
(``FOR UPDATE``, advisory) are released, and sequences are not transactional anyway. A
transaction that ran anything else (INSERT, UPDATE, DELETE, a CTE, DDL, a SAVEPOINT) or
failed is rolled back as before, so psycopg's own reasons for forgetting (a rolled-back
DDL) still apply. ``portal.db`` registers it as ``postgresql+psycopg``."""

from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Engine

WROTE = "_portal_wrote"  # on the psycopg connection: this transaction ran a non-SELECT


def _raw(connection):
    """The psycopg connection behind SQLAlchemy's pool proxy."""
    return getattr(connection, "dbapi_connection", None) or connection


class PortalPsycopgDialect(PGDialect_psycopg):
    supports_statement_cache = True  # compiles exactly as its parent

    def do_rollback(self, dbapi_connection):
        raw = _raw(dbapi_connection)
        only_read = not getattr(raw, WROTE, False)
        setattr(raw, WROTE, False)
        if only_read and raw.info.transaction_status == TransactionStatus.INTRANS:
            try:
                raw.commit()  # the same as a rollback here, and the cache survives it
                return
            except Exception:  # noqa: BLE001 (whatever it was: roll back as before)
                pass
        dbapi_connection.rollback()

    def do_commit(self, dbapi_connection):
        setattr(_raw(dbapi_connection), WROTE, False)
        dbapi_connection.commit()


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany):
    if not statement.startswith("SELECT") and conn.dialect.driver == "psycopg":
        setattr(cursor.connection, WROTE, True)
