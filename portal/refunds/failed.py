"""An administrator's way out for a failed gateway refund: try it again, or give up on the
gateway and put the amount in the patient's wallet (or, where a refund made on Razorpay's
dashboard gave part of it back already, settle it: ``refunds.outside``). Each is one unit
of work."""

from dataclasses import dataclass

from portal import events, jobs
from portal.audit.service import record
from portal.booking.errors import NotFound
from portal.db import unit_of_work, utcnow
from portal.domain.rates import format_inr
from portal.domain.states import REFUND, RefundStatus
from portal.gateway import GatewayError
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.refunds.common import (
    MSG_AT_GATEWAY,
    MSG_CLOSED_ACCOUNT,
    MSG_GATEWAY_UNKNOWN,
    MSG_NOT_FAILED,
    CancellationError,
    lock_refund,
    replacement,
    require_admin,
)
from portal.refunds.execute import (
    apply_gateway_refund,
    payment_refunds_at_gateway,
    refund_at_gateway,
    refunded_outside,
    successor,
)
from portal.refunds.models import GATEWAY, WALLET
from portal.refunds.money import beyond_captured

RETRY, TO_WALLET, SETTLE = "retry", "wallet", "settle"
NO_WALLET_CLOSED = "Account closed: no wallet"
# Admin pages are English: not translated.
MSG_REFUNDED_OUTSIDE = (
    "Razorpay has refunded %(outside)s of this payment outside the portal (on its "
    "dashboard): sending %(amount)s to the wallet would give the patient %(excess)s more "
    "than they paid. Settle it against the dashboard refund instead (Settle… on the "
    "refunds list): the part the dashboard refund gave back is closed, not paid again, and "
    "only the rest goes to the wallet."
)


@dataclass(frozen=True)
class Actions:
    """What an administrator may do with a refund: the refunds page offers these, and the
    confirmation pages and their posts refuse the others (``refusal``)."""

    retry: bool = False
    to_wallet: bool = False
    no_wallet: str = ""  # why the wallet is not offered for a refund that can be retried
    # Settle against a dashboard refund (``refunds.outside``) is offered where Send to
    # wallet was refused for one; any failed refund may be asked (its page asks Razorpay).
    settle: bool = False

    def refusal(self, action):
        """The message refusing ``action`` (``RETRY``/``TO_WALLET``/``SETTLE``), or None:
        allowed."""
        if not self.retry:
            return MSG_NOT_FAILED
        if action == TO_WALLET and not self.to_wallet:
            return MSG_CLOSED_ACCOUNT
        return None


def actions(refund):
    """A failed gateway refund, not replaced, can be retried; and sent to the wallet
    unless the patient closed their account: money captured after the closure
    (refunds.unapplied) or any refund of a closed account, its wallet can be neither spent
    nor paid out (docs/privacy.md). Settling it against a dashboard refund is offered once
    Razorpay said, when Send to wallet asked, that one took its payment beyond what it
    captured (``refunded_outside``). Anything else allows nothing."""
    if refund.status != RefundStatus.FAILED or refund.superseded or refund.destination != GATEWAY:
        return Actions()
    settle = bool(refund.refunded_outside) and refund.payment_id is not None
    if refund.patient.is_closed:
        return Actions(retry=True, no_wallet=NO_WALLET_CLOSED, settle=settle)
    return Actions(retry=True, to_wallet=True, settle=settle)


def _failed_refund(admin, refund_id, to_wallet=False):
    require_admin(admin)
    refund = lock_refund(refund_id)
    if refund is None:
        raise NotFound("refund")
    refusal = actions(refund).refusal(TO_WALLET if to_wallet else RETRY)
    if refusal:
        raise CancellationError(refusal)
    return refund


def retry_refund(admin, refund_id):
    """Try a failed gateway refund again: the same key when Razorpay never gave it an id
    (it may exist there: the key finds it), a new refund when Razorpay failed it."""
    with unit_of_work():
        refund = _failed_refund(admin, refund_id)
        if refund.razorpay_refund_id:
            target = successor(refund, admin)
        else:
            REFUND.move(refund, RefundStatus.PENDING)
            refund.attempts, refund.failure_reason, refund.alerted = 0, None, False
            refund.next_retry_at = None
            target = refund
            jobs.enqueue("refunds.execute", refund_id=refund.id)
        record(admin, "refund.retry", "refund", refund.id, after={"refund_id": target.id})
    return target


def ask_razorpay(refund, at_gateway=MSG_AT_GATEWAY):
    """Razorpay's refunds of a failed refund's payment, asked before the refund is
    replaced, and why Razorpay's word stops it: ``(theirs, refusal)``, the refusal None
    when it does not. One we gave up on without an answer (no Razorpay id) is looked for
    there, and what Razorpay says is applied: a refund it will pay must not go to the
    wallet too (``at_gateway``, the message then). In the caller's unit of work, the
    refund locked, so what was learnt stays when the caller is refused."""
    try:
        theirs = payment_refunds_at_gateway(refund)
    except GatewayError:
        return None, MSG_GATEWAY_UNKNOWN
    if not refund.razorpay_refund_id:  # with one, Razorpay itself failed it
        entity = refund_at_gateway(refund, theirs)
        if entity is not None:
            apply_gateway_refund(refund, entity)
            if refund.status != RefundStatus.FAILED:
                return theirs, at_gateway
    return theirs, None


def _wallet_refusal(admin, refund_id):
    """Why Razorpay's word stops a failed refund going to the wallet, or None
    (``ask_razorpay``). And a refund made on Razorpay's dashboard outside the portal
    gave back some of the payment already: the wallet refuses what would go beyond what
    the payment took in, and the row keeps what Razorpay said, so the refunds list offers
    to settle it (``refunds.outside``). Its own unit of work, so what was learnt stays
    when the wallet is refused."""
    with unit_of_work():
        refund = _failed_refund(admin, refund_id, to_wallet=True)
        theirs, refusal = ask_razorpay(refund)
        if refusal:
            return refusal
        outside = refunded_outside(refund.razorpay_payment_id, theirs)
        excess = beyond_captured(refund, outside)
        if excess:
            refund.refunded_outside = outside
            return MSG_REFUNDED_OUTSIDE % {
                "outside": format_inr(outside),
                "amount": format_inr(refund.amount),
                "excess": format_inr(excess),
            }
        return None


def refund_to_wallet(admin, refund_id, note=""):
    """Give up on the gateway for a failed refund: the amount goes to the wallet now,
    unless Razorpay turns out to hold it (then it is pending or processed again) or a
    dashboard refund already gave back what the wallet would (``_wallet_refusal``)."""
    refusal = _wallet_refusal(admin, refund_id)
    if refusal:
        raise CancellationError(refusal)
    with unit_of_work():
        refund = _failed_refund(admin, refund_id, to_wallet=True)
        wallet = replacement(
            refund, admin, destination=WALLET, status=RefundStatus.PROCESSED, processed_at=utcnow()
        )
        post(
            "refund_to_wallet",
            [
                debit(chart.REFUNDS_PAYABLE, refund.amount),
                credit(chart.patient_wallet(refund.patient_id), refund.amount),
            ],
            reference=("refund", refund.id),
            idempotency_key=f"refund:{refund.id}:to_wallet",
        )
        record(
            admin,
            "refund.to_wallet",
            "refund",
            refund.id,
            after={"wallet_refund_id": wallet.id, "note": (note or "").strip()},
        )
        events.refund_processed.send("refunds", refund_id=wallet.id)
    return wallet
