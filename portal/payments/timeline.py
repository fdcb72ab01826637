"""A visit's payment timeline in plain words for the patient (issue #16: "checkout: retry",
"payment: captured: captured", "authorized" after "captured"). Admins keep the technical
timeline; this reads the same attempt rows and says what happened, once, in order."""

from dataclasses import dataclass

from portal.domain.states import PaymentStatus
from portal.payments.models import DESK, LINK, WALLET, AttemptNote


@dataclass(frozen=True)
class Step:
    at: object
    text: str
    amount: int
    outcome: str  # "ok", "bad" or "" (a badge class)


def _pending_text(event, payment):
    if event == "wallet.reserved":
        return "Wallet amount set aside for this payment"
    if event in ("link.resent", "payment.link_resent"):
        return "Payment link sent again"
    if event.startswith("link"):
        return "Payment link sent"
    if event == "checkout.retry":
        return "Payment started again"
    if payment.kind == LINK:
        return "Payment link sent"
    return "Payment started"


def _ended_text(event, payment):
    if payment.kind == WALLET:
        return "Wallet amount released (nothing was paid)"
    if "cancel" in event:
        return "Payment link cancelled"
    if payment.kind == LINK:
        return "Payment link expired"
    if event == "abandoned":
        return "Payment not completed"
    return "Payment time ran out"


def describe(attempt, payment):
    """One attempt in plain words, or None when it adds nothing for the patient."""
    status, event = str(attempt.status), attempt.event or ""
    if status == PaymentStatus.SUCCESSFUL:
        if payment.kind == WALLET:
            return Step(attempt.at, "Paid from your wallet", payment.amount, "ok")
        if payment.kind == DESK:
            return Step(attempt.at, "Paid at the clinic", payment.amount, "ok")
        amount = payment.captured_amount or payment.amount
        return Step(attempt.at, "Payment received", amount, "ok")
    if status == PaymentStatus.FAILED:
        return Step(attempt.at, "Payment failed; no money was taken", payment.amount, "bad")
    if status == PaymentStatus.EXPIRED:
        return Step(attempt.at, _ended_text(event, payment), payment.amount, "")
    if status == AttemptNote.MISMATCH:
        text = "Payment received for a different amount; our team will look into it"
        return Step(attempt.at, text, payment.amount, "bad")
    if status in (AttemptNote.AUTHORIZED, AttemptNote.REJECTED):
        return None  # a step on the way (or a forged callback): nothing the patient did
    return Step(attempt.at, _pending_text(event, payment), payment.amount, "")


def plain_steps(rows):
    """``rows``: (attempt, payment) pairs. The steps in time order, each said once."""
    steps, seen = [], set()
    for attempt, payment in sorted(rows, key=lambda row: (row[0].at, row[0].id)):
        step = describe(attempt, payment)
        if step is None:
            continue
        key = (payment.id, step.text, attempt.razorpay_payment_id)
        if key in seen:  # a webhook and the callback saying the same thing
            continue
        seen.add(key)
        steps.append(step)
    return steps
