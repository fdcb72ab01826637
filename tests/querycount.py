"""Counting the SQL statements a block runs (query budgets)."""

from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def counted_queries():
    """Yields a list that collects every statement any engine runs inside the block
    (savepoints and transaction control are not statements a page chose to run; SQLite's
    explicit BEGIN, see ``portal.db.savepoint``, is one)."""
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
