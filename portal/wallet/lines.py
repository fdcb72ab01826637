"""What the patient is told about each line of their wallet's history: its name by ledger
kind, and which postings' memos are theirs to read (an adjustment's public reason, a bank
pay-out's UTR). Every other memo is internal. The wallet page and the data download both
read a line through here (docs/wallet.md, docs/privacy.md)."""

from portal.i18n import N_
from portal.wallet.adjustments import BANK_LEDGER_KIND, LEDGER_KIND

# What each ledger transaction kind is called on the patient's side.
LABELS = {
    "booking_cancelled": N_("Refund for a cancelled appointment"),
    "refund_override": N_("Additional refund (approved)"),
    "refund_to_wallet": N_("Refund sent to your wallet"),
    # A failed refund settled against one the clinic made on Razorpay's dashboard: only
    # what that did not give back comes here (portal.refunds.outside).
    "refund_settled_outside": N_(
        "Rest of a refund sent to your wallet (part of it was refunded to your original "
        "payment method)"
    ),
    "wallet_reserve": N_("Used at checkout"),
    "wallet_release": N_("Returned from an unfinished checkout"),
    "unapplied_payment": N_("Payment kept for you"),
    "reschedule_fee": N_("Reschedule fee"),
    "reschedule_unapplied": N_("Reschedule fee returned"),
    "reschedule_fee_refund": N_("Reschedule fee refunded (appointment cancelled by the clinic)"),
    "wallet_adjustment": N_("Adjustment by the clinic"),
    "adjustment": N_("Adjustment by the clinic"),
    "desk_top_up": N_("Paid in at the clinic desk"),
    "wallet_cash_payout": N_("Paid to you in cash at the desk"),  # portal.wallet.cash
    "wallet_bank_payout": N_("Paid to your bank account"),  # portal.wallet.bank
}
# Any other kind (none credits a wallet today) is named plainly, never by its stored name.
OTHER = N_("Other change")

# Kinds whose ledger memo is written for the patient (an adjustment's public reason).
PUBLIC_MEMO_KINDS = frozenset({LEDGER_KIND})
# A bank pay-out's memo is the transfer's UTR: the patient's bank statement shows it.
UTR_MEMO_KINDS = frozenset({BANK_LEDGER_KIND})


def label(kind):
    """The line's name (English, marked for the catalogue: a page translates it)."""
    return LABELS.get(kind, OTHER)


def public_reason(line):
    """The reason the clinic wrote for the patient (an adjustment's), or None."""
    return (line.memo or None) if line.kind in PUBLIC_MEMO_KINDS else None


def utr(line):
    """The bank transfer's reference of a bank pay-out, or None."""
    return (line.memo or None) if line.kind in UTR_MEMO_KINDS else None
