"""The patient's wallet: the balance and the history, read from the ledger entries of
their wallet account (refunds, adjustments, money used at checkout)."""

from flask_babel import gettext
from flask_login import current_user

from portal.booking import queries as booking_queries
from portal.ledger import queries
from portal.refunds import queries as refund_queries
from portal.wallet import lines
from portal.wallet import queries as wallet_queries
from portal.web.htmx import render
from portal.web.paging import page_args
from portal.web.patient import bp
from portal.web.signed_in import WALLET_BALANCE, reads_with_user


def public_note(line):
    """What the page says under a line: the bank reference of a bank pay-out, the public
    reason of an adjustment (``wallet.lines``: every other memo is internal)."""
    if reference := lines.utr(line):
        return gettext("Bank reference (UTR): %(utr)s", utr=reference)
    return lines.public_reason(line)


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
        label=lines.label,
        public_note=public_note,
        visits=visits,
    )
