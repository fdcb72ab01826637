"""The TDS records keep the PAN they were reported under (docs/privacy.md, "A provider's
account closed"). TDS deducted from a provider's payouts is reported under their PAN in the
clinic's TDS statement (Form 26Q) and its records are kept for the statutory period, like
invoices; the TDS report reads the PAN from the profile. So a PAN under which TDS was
deducted is never cleared (an account closed or not); a wrong one is corrected instead,
and the TDS statement with it. A receiver of the catalog's ``provider_pan_clearing``: the
catalog sits below the payouts and cannot ask them itself."""

import sqlalchemy as sa

from portal import events
from portal.extensions import db
from portal.payouts.models import Payout

MSG_PAN_KEPT = (
    "TDS has been deducted from this provider's payouts under this PAN, and the TDS records "
    "keep it for the statutory period, so it cannot be cleared (a closed account too). "
    "If it is wrong, enter the correct PAN."
)


def tds_deducted(provider_id):
    """Whether any payout of the provider had TDS deducted (even one later returned: the
    quarter it was deducted in still reports it, and the quarter it came back in)."""
    return db.session.scalar(
        sa.select(sa.exists().where(Payout.provider_id == provider_id, Payout.tds > 0))
    )


@events.provider_pan_clearing.connect
def _keep_a_pan_tds_was_reported_under(sender, *, provider_id, **_):
    return MSG_PAN_KEPT if tds_deducted(provider_id) else None
