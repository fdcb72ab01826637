"""PostgreSQL through psycopg 3: a read runs outside any transaction, and psycopg's
prepared statements are kept.

psycopg sends BEGIN before a connection's first statement, a round trip of its own, and a
read-only request then paid a third to end it: BEGIN, its reads, COMMIT or ROLLBACK. Here
a statement that may run on its own (``runs_alone``: a SELECT that takes no row lock and
no transaction-scoped advisory lock, read on a client-side cursor) runs in autocommit
while no transaction is open; the first statement that may not opens one (psycopg's
BEGIN), and everything after it runs inside it until the commit or the rollback. Under
READ COMMITTED, the portal's isolation level, each statement sees its own snapshot inside
a transaction or out of one, so a read before the first write sees what it saw before; a
transaction still holds everything from its first write on (a row lock, a
transaction-scoped advisory lock and a SAVEPOINT count as writes here; a session-level
advisory lock outlives any transaction and runs alone). A signed-in request that does
nothing cost 2.02 ms of CPU with every statement in a transaction and 1.55 ms with its
read alone (``tests/load/bench_reads.py``, docs/performance.md). Left as they are: a
connection in SQLAlchemy's AUTOCOMMIT isolation (``CREATE DATABASE``); one at a stricter
level than READ COMMITTED (the server's default, or asked for), which opens its
transaction before its first statement, as psycopg does; and ``READS_ALONE = False``.
Code that sets a psycopg connection's ``autocommit`` by hand, under SQLAlchemy, would
see the first write turn it off: use SQLAlchemy's isolation level instead.

psycopg prepares a statement on a connection once it has run 5 times there, so the server
no longer parses and plans it: a page's statements took about a third of the time. But
psycopg forgets every prepared statement whenever the connection rolls back, and
SQLAlchemy ends every transaction that did not commit with a rollback. A read alone opens
none; a transaction that only read (a server-side cursor's, a stricter level's, one
opened outside SQLAlchemy's statement events such as its own start-up queries) ends with
COMMIT instead, which keeps nothing either way and releases its advisory locks either
way. A transaction that wrote, or failed, is rolled back as before, so psycopg's own
reason to forget (a rolled-back DDL) still applies. The portal runs no SELECT with a
lasting side effect (``set_config`` for the session, ``pg_notify``, a function that
writes); one added must not rely on a transaction to hold it or a rollback to undo it.
``portal.db`` registers this as ``postgresql+psycopg``."""

import re

from psycopg import ServerCursor
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Engine

WROTE = "_portal_wrote"  # on the psycopg connection: this transaction may have written
# False: every statement in a transaction, psycopg's way (tests/load/bench_reads.py
# measures one against the other in one process).
READS_ALONE = True
ROW_LOCK = re.compile(r"\bFOR (?:NO KEY UPDATE|UPDATE|KEY SHARE|SHARE)\b", re.IGNORECASE)


def runs_alone(statement):
    """Whether ``statement`` may run outside a transaction with the same effect: a SELECT
    that takes nothing held until the transaction ends (a row lock, a transaction-scoped
    advisory lock; in any case). Read on a server-side cursor, it still needs one (its
    DECLARE).

    Every statement passes here: the plain substring tests come first (a regular
    expression over a 3 KB statement cost 50-140 µs; these, 2-3 µs)."""
    if not statement.startswith("SELECT"):
        return False
    lowered = statement.lower()
    if "for " in lowered and ROW_LOCK.search(statement):
        return False
    return "advisory_xact_lock" not in lowered  # pg_(try_)advisory_xact_lock(_shared)


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
def _transaction_from_the_first_write(conn, cursor, statement, parameters, context, executemany):
    if conn.dialect.driver != "psycopg":
        return
    raw = cursor.connection
    reads = runs_alone(statement)
    if not reads:
        setattr(raw, WROTE, True)  # whatever the isolation level: a rollback must roll back
    if conn._is_autocommit_isolation():  # SQLAlchemy's own test (pinned in pyproject)
        return  # the caller asked for it (CREATE DATABASE, say): every statement alone
    if not read_committed(conn):
        return  # a stricter level's snapshot is the transaction's: psycopg's way, BEGIN first
    # A server-side cursor only reads, but its DECLARE needs a transaction.
    alone = reads and READS_ALONE and not isinstance(cursor, ServerCursor)
    # psycopg opens a transaction before a statement unless in autocommit; the mode can
    # change only between transactions, and the setter costs a call: only when it differs.
    if raw.pgconn.transaction_status == TransactionStatus.IDLE and raw.autocommit != alone:
        raw.autocommit = alone


def read_committed(conn):
    """Whether the connection runs at READ COMMITTED (or READ UNCOMMITTED, which PostgreSQL
    runs as READ COMMITTED): asked for on the connection, else the engine's level
    (SQLAlchemy reads its "default" from a first connection already set to an engine's
    ``isolation_level``; ``tests/test_pg_dialect.py`` holds an engine at REPEATABLE READ to
    it), else the server's default."""
    level = conn.get_execution_options().get("isolation_level")
    level = (level or conn.dialect.default_isolation_level or "").replace("_", " ").upper()
    return level in ("READ COMMITTED", "READ UNCOMMITTED")
