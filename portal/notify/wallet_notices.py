"""Notices about manual wallet adjustments: one awaiting a second administrator (an alert
to the admins). Jobs recorded by ``portal.notify.receivers``."""

from portal import jobs
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.notify import alerts
from portal.wallet.models import WalletAdjustment


@jobs.job("notify.wallet_adjustment_requested")
def wallet_adjustment_requested(adjustment_id):
    adjustment = db.session.get(WalletAdjustment, adjustment_id)
    if adjustment is None:
        return
    what = adjustment.what  # credit, debit, cash pay-out
    alerts.raise_alert(
        alerts.ADJUSTMENT_PENDING_APPROVAL,
        f"Wallet adjustment awaits approval: {what} of {format_inr(adjustment.magnitude)}",
        f"{adjustment.created_by.name} asks for a {what} of {format_inr(adjustment.magnitude)} "
        f"on the wallet of {adjustment.patient.name}: {adjustment.note}",
        link="/admin/approvals?kind=wallet_adjustment",
        dedupe_key=f"wallet-adjustment:{adjustment.id}",
    )
