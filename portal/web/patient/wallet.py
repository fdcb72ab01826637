"""The patient's wallet: the balance and the history, read from the ledger entries of
their wallet account (refunds, adjustments, money used at checkout)."""

from flask_babel import gettext
from flask_login import current_user

from portal.booking import queries as booking_queries
from portal.i18n import N_
from portal.ledger import queries
from portal.refunds import queries as refund_queries
from portal.wallet import queries as wallet_queries
from portal.web.htmx import render
from portal.web.paging import page_args
from portal.web.patient import bp
from portal.web.signed_in import WALLET_BALANCE, reads_with_user

# What each ledger transaction kind is called on the patient's wallet page.
LABELS = {
    "booking_cancelled": N_("Refund for a cancelled appointment"),
    "refund_override": N_("Additional refund (approved)"),
    "refund_to_wallet": N_("Refund sent to your wallet"),
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
PUBLIC_MEMO_KINDS = frozenset({"wallet_adjustment"})
# A bank pay-out's memo is the transfer's UTR: the patient's bank statement shows it.
UTR_MEMO_KINDS = frozenset({"wallet_bank_payout"})


def label(kind):
    return LABELS.get(kind, OTHER)


def public_note(line):
    if line.kind in UTR_MEMO_KINDS and line.memo:
        return gettext("Bank reference (UTR): %(utr)s", utr=line.memo)
    return line.memo if line.kind in PUBLIC_MEMO_KINDS else None


@bp.get("/wallet")
@reads_with_user(WALLET_BALANCE)
def wallet():
    history = queries.wallet_history_page(current_user.id, **page_args(30))
    # The visit each line is about (a reschedule fee, a refund of an appointment, money
    # used at checkout), named and linked: one statement for the page, none when no line
    # names one (and one more when a failed refund was sent to the wallet).
    references = [(line.reference_type, line.reference_id) for line in history.items]
    visits = booking_queries.visits_named_by(current_user.id, references)
    visits.update(refund_queries.visits_named_by_refunds(current_user.id, references))
    return render(
        "patient/wallet/index.html",
        balance=wallet_queries.shown_balance(current_user.id),
        history=history,
        label=label,
        public_note=public_note,
        visits=visits,
    )
