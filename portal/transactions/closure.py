"""A patient closed their account (``portal.privacy.closure``): the transactions console's
rows of theirs show the closed name.

A row keeps the party's name it was first written with (``projection.NAME_KEPT``: a rename
changes rows written after it), so the closure rewrites the rows of the patient's own:
every ``money_movements`` row of theirs takes ``Closed account #<id>``, except those whose
name is the one an issued invoice carries (their visit's ``billed_to_name``: the projector
writes that name as issued, and an invoice is kept unchanged, docs/privacy.md). A rebuild
(``flask transactions rebuild``) writes the closed name again: it projects today's name,
or the invoice's."""

import sqlalchemy as sa

from portal.booking.models import MasterBooking
from portal.extensions import db
from portal.transactions.models import MoneyMovement


def rename_closed_party(patient_id, name):
    """One UPDATE; returns the rows renamed."""
    table = MoneyMovement.__table__
    invoiced = sa.select(MasterBooking.id).where(
        MasterBooking.patient_id == patient_id, MasterBooking.billed_to_name.is_not(None)
    )
    return db.session.execute(
        sa.update(table)
        .where(
            table.c.patient_id == patient_id,
            sa.or_(table.c.visit_id.is_(None), table.c.visit_id.not_in(invoiced)),
            sa.or_(table.c.party_name.is_(None), table.c.party_name != name),
        )
        .values(party_name=name, version=table.c.version + 1)
    ).rowcount
