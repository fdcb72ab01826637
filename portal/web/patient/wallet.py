"""The patient's wallet: the balance and the history, read from the ledger entries of
their wallet account (refunds, adjustments, money used at checkout)."""
import sqlalchemy as sa
from flask import request
from flask_login import current_user

from portal.booking import service as booking
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.web.htmx import render
from portal.web.patient import bp

LABELS = {
    "booking_cancelled": "Refund for a cancelled appointment",
    "refund_override": "Additional refund (approved)",
    "refund_to_wallet": "Refund sent to your wallet",
    "wallet_reserve": "Used at checkout",
    "wallet_release": "Returned from an unfinished checkout",
    "unapplied_payment": "Payment kept for you",
    "reschedule_fee": "Reschedule fee",
    "reschedule_unapplied": "Reschedule fee returned",
    "reschedule_fee_refund": "Reschedule fee refunded (appointment cancelled by the clinic)",
    "wallet_adjustment": "Adjustment by the clinic",
    "adjustment": "Adjustment by the clinic",
}


def wallet_history(user_id, page=1, per_page=30):
    """(entries newest first as dicts with the running balance, pagination)."""
    code = chart.patient_wallet(user_id)
    query = (sa.select(LedgerEntry, LedgerTransaction)
             .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
             .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
             .where(LedgerAccount.code == code)
             .order_by(LedgerTransaction.created_at.desc(), LedgerEntry.id.desc()))
    rows = db.session.execute(query).all()
    balance, out = 0, []
    for entry, txn in reversed(rows):
        change = -entry.amount  # a liability: credits raise it
        balance += change
        out.append({"at": txn.created_at, "kind": txn.kind,
                    "label": LABELS.get(txn.kind, txn.kind.replace("_", " ").capitalize()),
                    "memo": txn.memo, "change": change, "balance": balance})
    out.reverse()
    start = (max(page, 1) - 1) * per_page
    return out[start:start + per_page], len(out)


@bp.get("/wallet")
def wallet():
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) > 0 else 1
    entries, count = wallet_history(current_user.id, page)
    return render("patient/wallet/index.html", balance=booking.wallet_balance(current_user.id),
                  entries=entries, page=page, pages=max((count + 29) // 30, 1))
