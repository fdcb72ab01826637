"""Transactions console and settlements: the booking world, the sandbox, a sound ledger."""

import sqlalchemy as sa

from portal.extensions import db
from portal.transactions.models import MoneyMovement
from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401


def payout_row(payout_id):
    """The console's row of one payout, read afresh (after the projector ran)."""
    db.session.expire_all()
    return db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == "payout", MoneyMovement.source_id == payout_id
        )
    )
