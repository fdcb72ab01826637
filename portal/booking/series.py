"""The number series of the GST documents (invoices, reschedule-fee invoices, credit notes):
each its own counter table, one row per financial year (IST, ``rates.financial_year``).
Rule 46(b) asks a document's serial number be consecutive and unique within the year: the
next number is one atomic upsert inside the issuing transaction, so two issues at once wait
for each other's row and a rollback gives its number back (no gap).

Rule 46(b) also caps the number at 16 characters (letters, digits, '-' and '/'): a number
reads ``CP/26-27/000001`` (15; the year's two-digit years, six digits, seven past 999,999).
Documents issued before kept ``CP/2026-27/000001`` (17), as stored; the year's counter
runs on across the change, so no serial repeats (docs/decisions.md)."""

from sqlalchemy.dialects import postgresql, sqlite

from portal.catalog.time_lock import is_postgres
from portal.db import db
from portal.domain import rates

MAX_LENGTH = 16  # Rule 46(b)


class SeriesExhausted(RuntimeError):
    """A serial whose number would pass Rule 46(b)'s 16 characters: refused, not issued."""


def document_number(prefix, fy, number):
    """``("CP", "2026-27", 1) -> "CP/26-27/000001"``: series letters, the financial year
    with two-digit years (unique within the year, as the rule asks), the serial."""
    text = f"{prefix}/{fy[2:]}/{number:06d}"
    if len(text) > MAX_LENGTH:
        raise SeriesExhausted(f"{prefix} series of {fy} has no number left within 16 characters")
    return text


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
