"""``INSERT … ON CONFLICT DO NOTHING`` for PostgreSQL and SQLite: the race-safe "add it
unless it is there" this capability uses for reminders, deduplicated notices and flags.

(A SAVEPOINT + IntegrityError would do too, but releasing a savepoint fires the session's
``after_commit`` event, which the outbox listens to.)"""

from portal.extensions import db


def insert_ignore(model, values, index_elements):
    """Insert one row unless one with the same ``index_elements`` exists; returns the new
    id, or ``None`` when the row was already there (or inserted concurrently)."""
    table = model.__table__
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.flush()
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=index_elements)
        .returning(table.c.id)
    )
    return db.session.execute(statement).scalar()
