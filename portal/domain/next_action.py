"""What an operator should do next about a visit's money: one pure function for the
appointments list, the visit page and the payments monitor (the seed's
``determineNextAction``, with POLICY.md's retry limits).

The input is the state of the visit's current payment (``booking.desk.current_payment``:
its newest, a wallet part counting once used): its status, when it expires, how many
gateway attempts were made and how many failed. No payment at all asks for one, unless
the visit was confirmed without one (a coupon took it all); a paid visit (the wallet
alone included) needs nothing more about money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .policy import DEFAULT_POLICY, Policy
from .states import PaymentStatus


class Action(StrEnum):
    TAKE_PAYMENT = "TAKE_PAYMENT"  # nothing asked for yet: send a link or take it at the desk
    WAITING = "WAITING"  # a live order or link: the webhook confirms
    RETRY = "RETRY"  # attempts failed; the patient may still retry on the same order/link
    INTERVENE = "INTERVENE"  # too many failures: call the patient, resend or take it at the desk
    RENEW_LINK = "RENEW_LINK"  # the order/link ran out: send a new payment link
    COMPLETE = "COMPLETE"  # paid: nothing left to do about the money
    REVIEW = "REVIEW"  # a state this rule does not know: look at it by hand
    NONE = "NONE"  # the visit is cancelled: nothing is left to do about its money here


LABELS = {
    Action.TAKE_PAYMENT: "Take payment: send a payment link or record a desk payment",
    Action.WAITING: "Waiting for payment: the gateway confirms",
    Action.RETRY: "Retry: the patient may pay again on the same link",
    Action.INTERVENE: "Intervene: payment failed repeatedly; call the patient or send a new link",
    Action.RENEW_LINK: "Renew link: send a new payment link",
    Action.COMPLETE: "Complete: payment confirmed",
    Action.REVIEW: "Review by hand",
    Action.NONE: "None — cancelled",
}


@dataclass(frozen=True)
class NextAction:
    action: Action
    label: str

    @property
    def urgent(self) -> bool:
        return self.action in (Action.INTERVENE, Action.RENEW_LINK, Action.REVIEW)


def _next(action: Action) -> NextAction:
    return NextAction(action, LABELS[action])


def next_action(
    status: str | None,
    *,
    now: datetime,
    expires_at: datetime | None = None,
    attempts: int = 0,
    failed_attempts: int = 0,
    policy: Policy = DEFAULT_POLICY,
    confirmed: bool = False,
    cancelled: bool = False,
) -> NextAction:
    """The hint for a payment in ``status`` (None: the visit has no payment; ``confirmed``:
    it was confirmed all the same, nothing being due; ``cancelled``: the visit is, and its
    refunds are the refunds queue's business, not a payment to take or renew)."""
    if cancelled:
        return _next(Action.NONE)
    if status is None:
        return _next(Action.COMPLETE if confirmed else Action.TAKE_PAYMENT)
    if status == PaymentStatus.SUCCESSFUL:
        return _next(Action.COMPLETE)
    if status == PaymentStatus.EXPIRED:
        return _next(Action.RENEW_LINK)
    if status == PaymentStatus.FAILED:
        # FAILED is final: the retry limit was reached on that order/link.
        return _next(Action.INTERVENE)
    if status == PaymentStatus.PENDING:
        if expires_at is not None and expires_at <= now:
            return _next(Action.RENEW_LINK)  # the sweep has not ended it yet
        if failed_attempts >= policy.payment_failures_for_intervention:
            return _next(Action.INTERVENE)
        if failed_attempts and attempts < policy.payment_max_attempts:
            return _next(Action.RETRY)
        if failed_attempts:
            return _next(Action.INTERVENE)
        return _next(Action.WAITING)
    return _next(Action.REVIEW)
