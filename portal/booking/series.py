"""The number series of the GST documents (invoices, reschedule-fee invoices, credit notes):
each its own counter table, one row per financial year (IST, ``rates.financial_year``).
Rule 46(b) asks a document's serial number be consecutive and unique within the year: the
next number is one atomic upsert inside the issuing transaction, so two issues at once wait
for each other's row and a rollback gives its number back (no gap)."""

from sqlalchemy.dialects import postgresql, sqlite

from portal.catalog.time_lock import is_postgres
from portal.db import db
from portal.domain import rates


def next_number(counter, at):
    """``(financial year, number)``: the next number of ``counter``'s series (a model with
    ``financial_year`` and ``last_number``) in the financial year of ``at``."""
    fy = rates.financial_year(at)
    table = counter.__table__
    insert = postgresql.insert if is_postgres() else sqlite.insert
    statement = (
        insert(table)
        .values(financial_year=fy, last_number=1)
        .on_conflict_do_update(
            index_elements=[table.c.financial_year],
            set_={"last_number": table.c.last_number + 1},
        )
        .returning(table.c.last_number)
    )
    return fy, db.session.execute(statement).scalar_one()
