"""What a payment the patient just made came to, as its return tells them: a checkout's
(``checkout.complete_checkout_callback``) or a payment link's
(``checkout.complete_link_callback``). Decided here, from what the capture recorded
(``payment_events.capture``), never by a page from the visit's status alone: a capture
may have paid the visit, or gone to the wallet because the visit was no longer waiting
for it (a link replaced by an order, an order by a link, the hold ended), or, for a
closed account, be on its way back to where it came from. The pages only show the words
below, the same on the link's return page, in the signed-in flash (review r4) and on the
checkout's confirmation page (``on_confirmation``)."""

from dataclasses import dataclass, field
from enum import StrEnum

from portal.domain.states import VisitStatus
from portal.domain.text import Text
from portal.i18n import N_
from portal.payments import records


class Outcome(StrEnum):
    CONFIRMED = "confirmed"  # it paid the visit, which is confirmed
    CONFIRMING = "confirming"  # not captured yet (or the gateway did not answer)
    CANCELLED = "cancelled"  # it paid the visit, cancelled since (a reload)
    IN_WALLET = "wallet"  # it paid nothing: in the patient's wallet
    REFUNDED = "refunded"  # a closed account's: refunded to where it came from


# The money did not pay the visit: the patient is told where it went, on the visit's
# page, not a confirmation that waits for nothing.
ELSEWHERE = frozenset({Outcome.IN_WALLET, Outcome.REFUNDED})

MESSAGES = {
    Outcome.CONFIRMED: N_(
        "Payment received, your visit %(number)s is confirmed. We will remind you before "
        "each appointment."
    ),
    Outcome.CONFIRMING: N_(
        "We are confirming your payment for visit %(number)s with the payment gateway. You "
        "will get a message once it is confirmed; there is no need to pay again."
    ),
    Outcome.CANCELLED: N_(
        "Your payment for visit %(number)s was received and confirmed the visit, which has "
        "since been cancelled. Any refund is shown on the visit's page."
    ),
    Outcome.IN_WALLET: N_(
        "Your payment was received, but it did not pay for visit %(number)s: the visit was "
        "no longer waiting for it (another way to pay had been started, its hold had ended, "
        "or the amount was not the one due). The money is in your wallet; you can use it to "
        "pay for this visit or another one."
    ),
    Outcome.REFUNDED: N_(
        "Your payment was received, but it did not pay for visit %(number)s: the account "
        "it was booked under is closed. The whole amount is being refunded to the card, UPI "
        "or bank account it was paid from."
    ),
}
HEADINGS = {
    Outcome.CONFIRMED: N_("Payment received"),
    Outcome.CONFIRMING: N_("Confirming your payment…"),
    Outcome.CANCELLED: N_("Payment received"),
    Outcome.IN_WALLET: N_("Payment added to your wallet"),
    Outcome.REFUNDED: N_("Payment being refunded"),
}
# The flash's kind (its colour) when the signed-in patient is told on the visit's page.
LEVELS = {
    Outcome.CONFIRMED: "success",
    Outcome.CONFIRMING: "info",
    Outcome.CANCELLED: "info",
    Outcome.IN_WALLET: "warning",
    Outcome.REFUNDED: "warning",
}
# Confirmed, then partly cancelled or completed: a later reload still says it was confirmed.
_PAID = (VisitStatus.CONFIRMED, VisitStatus.PARTIALLY_CANCELLED, VisitStatus.COMPLETED)


def message(outcome, number):
    """The words for ``outcome`` on visit ``number``, for the page to translate."""
    return Text(MESSAGES[outcome], number=number)


def outcome_of(visit, razorpay_payment_id):
    """What the gateway payment ``razorpay_payment_id`` came to for ``visit`` (its
    payments loaded as the capture left them): by the row it was recorded on, so a reload
    says the same as the first return. None recorded yet: still being confirmed (the
    capture's webhook decides)."""
    row = next((p for p in visit.payments if p.razorpay_payment_id == razorpay_payment_id), None)
    if row is None:
        return Outcome.CONFIRMING
    if records.paid_for_nothing(row):
        return Outcome.REFUNDED if records.refunded_to_source(row) else Outcome.IN_WALLET
    if visit.status == VisitStatus.CANCELLED:
        return Outcome.CANCELLED
    return Outcome.CONFIRMED if visit.status in _PAID else Outcome.CONFIRMING


@dataclass(frozen=True)
class Paid:
    """A verified return's answer. What the page after a paid link may say (the return may
    be anonymous, opened on a phone): the visit's number, who owns it, and ``outcome``.
    ``visit``: the visit as the capture left it (for callers in the same session);
    ``razorpay_payment_id``: the gateway payment it is about (the confirmation page's
    address names it, so a reload reads the same row)."""

    visit_id: int
    number: str
    owner_ids: frozenset
    outcome: Outcome
    visit: object = field(default=None, compare=False, repr=False)
    razorpay_payment_id: str | None = None

    @property
    def confirmed(self):
        return self.outcome == Outcome.CONFIRMED

    @property
    def elsewhere(self):
        return self.outcome in ELSEWHERE

    @property
    def message(self):
        return message(self.outcome, self.number)

    @property
    def heading(self):
        return HEADINGS[self.outcome]

    @property
    def level(self):
        return LEVELS[self.outcome]


def paid(visit, razorpay_payment_id):
    """The ``Paid`` for ``visit`` (inside the capture's unit of work)."""
    return Paid(
        visit.id,
        visit.number,
        frozenset(visit.owner_ids()),
        outcome_of(visit, razorpay_payment_id),
        visit,
        razorpay_payment_id,
    )


def on_confirmation(visit, razorpay_payment_id=None):
    """The ``Paid`` the confirmation page shows for ``visit`` (its payments loaded), or
    None. A checkout's return names its gateway payment: ``outcome_of`` it, as the return
    did, so a reload says what the return said (or what became of it since). None named
    (paid from the wallet alone, or the page opened by its address): a visit once
    confirmed was paid, confirmed or cancelled since; one never confirmed has no payment
    to speak of (None: the page names the visit and its status)."""
    if razorpay_payment_id:
        return paid(visit, razorpay_payment_id)
    if visit.confirmed_at is None:
        return None
    outcome = Outcome.CANCELLED if visit.status == VisitStatus.CANCELLED else Outcome.CONFIRMED
    return Paid(visit.id, visit.number, frozenset(visit.owner_ids()), outcome, visit)
