"""A payout given back to the payable (failed for good, stopped or reversed at RazorpayX):
how much of its money is still to be paid again. An admin's retry pays at most that, and
a returned payout needs a look only while some of it is left (docs/payouts.md, "A returned
payout is retried once, for what is still owed").

The payable is one balance, so "which money a later payout took" is a convention; the one
used here is first in, first out: a debit after the return (a later run's payout, Pay now,
a penalty) takes the oldest money on the payable first, and the returned money is older
than anything **earned** after its return. So the part still owed is what the payable
holds beyond the credits posted since the return, at most the payout's gross:

    owed = clamp(payable now − credits since the return, 0, gross)

Money given back by other payouts (their own returns) is not counted as earned since when
they were made before this one came back: it was due when they were made, and it is
returned money too. A payout made after this one's return took the oldest money first,
this one's, so its return is counted: the money is that payout's to be owed and retried,
never both's."""

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.service import owned_code
from portal.payouts import models as m
from portal.payouts.common import payable_column


def _return_posting(payout=m.Payout):
    """The id of the posting that gave ``payout``'s money back (a correlated subquery; its
    own alias, so that it correlates to the payout only, not to the postings it bounds)."""
    back = aliased(LedgerTransaction)
    return (
        sa.select(sa.func.max(back.id))
        .where(
            back.reference_type == "payout",
            back.reference_id == sa.cast(payout.id, sa.String),
            back.kind.in_(m.RETURNED_KINDS),
        )
        .correlate(payout)
        .scalar_subquery()
    )


def _made_after(returned_posting, since):
    """SQL: the payout a return posting gave back was made (its money taken off the
    payable) after the posting ``since``."""
    made = aliased(LedgerTransaction)
    return (
        sa.select(made.id)
        .where(
            made.reference_type == "payout",
            made.reference_id == returned_posting.reference_id,
            made.kind == m.INITIATED_KIND,
            made.id > since,
        )
        .exists()
    )


def _earned_since_return(payout=m.Payout):
    """Credits to ``payout``'s provider's payable posted after its return (a correlated
    subquery, paise), other payouts' returns left out but for those of payouts made after
    it: such a payout carried the oldest money, this one's first, so its return takes
    this one's claim with it (it is owed, and retried, as its own; re-read finding: both
    claimed one returned ₹1,000, and the second retry paid newer earnings early)."""
    since = _return_posting(payout)
    return (
        sa.select(sa.func.coalesce(sa.func.sum(-LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(
            LedgerAccount.code == owned_code(chart.PROVIDER_PAYABLE, payout.provider_id),
            LedgerEntry.amount < 0,
            LedgerTransaction.id > since,
            sa.or_(
                LedgerTransaction.kind.not_in(m.RETURNED_KINDS),
                _made_after(LedgerTransaction, since),
            ),
        )
        .scalar_subquery()
    )


def _older_money(payout=m.Payout):
    """What the payable holds beyond what was earned since ``payout`` came back."""
    return payable_column(payout.provider_id) - _earned_since_return(payout)


def owed_condition(payout=m.Payout):
    """SQL: some of a returned ``payout``'s money is still on the payable (not paid again
    by the payouts made since). For a statement over payouts: no query per row."""
    return sa.and_(payout.returned.is_(True), _older_money(payout) > 0)


def still_owed(payout):
    """The part of ``payout``'s gross not paid again since it came back (paise; 0 for a
    payout not returned). Read under the provider's payout lock for a decision."""
    if not payout.returned:
        return 0
    older = db.session.scalar(sa.select(_older_money()).where(m.Payout.id == payout.id))
    return max(0, min(int(older or 0), payout.gross))
