"""The patient's wallet: the balance and the history, read from the ledger entries of
their wallet account (refunds, adjustments, money used at checkout)."""

from flask_login import current_user

from portal.booking import prices as booking_prices
from portal.ledger import queries
from portal.web.htmx import render
from portal.web.paging import page_args
from portal.web.patient import bp

# What each ledger transaction kind is called on the patient's wallet page.
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


# Kinds whose ledger memo is written for the patient (an adjustment's public reason).
PUBLIC_MEMO_KINDS = frozenset({"wallet_adjustment"})


def label(kind):
    return LABELS.get(kind, kind.replace("_", " ").capitalize())


def public_note(line):
    return line.memo if line.kind in PUBLIC_MEMO_KINDS else None


@bp.get("/wallet")
def wallet():
    return render(
        "patient/wallet/index.html",
        balance=booking_prices.wallet_balance(current_user.id),
        history=queries.wallet_history_page(current_user.id, **page_args(30)),
        label=label,
        public_note=public_note,
    )
