"""A failed refund settled against refunds Razorpay made of its payment outside the portal
(on its dashboard): what those gave back of it is closed, not paid again, and only the
rest goes to the patient's wallet (docs/refunds.md, "A refund made on Razorpay's
dashboard").

The closed part becomes a processed gateway refund row naming the dashboard refund
(``outside_refund_id``, never sent by us), the rest a wallet refund, both standing in for
the failed row (superseded). Its posting takes the whole refund out of
``refunds_payable``: the wallet's part into the wallet, the closed part into
``reconciliation_suspense``, where the dashboard refund's reconciliation case puts it when
accepted (taken out of gateway clearing there, once). Either may come first."""

from dataclasses import dataclass

import sqlalchemy as sa

from portal import events
from portal.audit.service import record
from portal.booking import lifecycle
from portal.booking.errors import NotFound
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain import outside_refunds as rules
from portal.domain.rates import format_inr
from portal.domain.states import RefundStatus
from portal.extensions import db
from portal.gateway import GatewayError
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.payments.models import Payment
from portal.refunds.common import (
    CancellationError,
    lock_refund,
    replacement,
    require_admin,
    whole_paise,
)
from portal.refunds.execute import made_outside, payment_refunds_at_gateway, refund_at_gateway
from portal.refunds.failed import SETTLE, actions, ask_razorpay
from portal.refunds.models import GATEWAY, WALLET, Refund
from portal.refunds.money import captured, refuse_a_closed_wallet, standing_against

LEDGER_KIND = "refund_settled_outside"
# Admin pages are English: not translated.
MSG_SETTLED = "This refund was settled already against a refund made on Razorpay's dashboard."
MSG_NOT_A_PAYMENT = (
    "Only a refund of a visit's payment can be settled against Razorpay's dashboard refunds."
)
MSG_CANNOT_ASK = (
    "Razorpay could not be asked for this payment's refunds, so nothing was settled: try "
    "again in a few minutes."
)
MSG_AT_GATEWAY = "Razorpay has this refund after all and will pay it: it was not settled."
MSG_NOTHING_OUTSIDE = (
    "Razorpay has refunded nothing of this payment outside the portal that this refund "
    "would give back again: send it to the wallet or retry it."
)
MSG_OUTSIDE_PENDING = (
    "Razorpay is still processing a refund of this payment made outside the portal "
    "(%(id)s, %(amount)s): settle this one once that has processed or failed."
)
MSG_CHANGED = (
    "Razorpay's refunds of this payment changed since the page was shown: settling is "
    "now %(covered)s closed against the dashboard refund and %(wallet)s to the wallet. "
    "Check the figures and confirm again."
)
MSG_UNSHOWN = "Check the settlement shown, then confirm."
MSG_NOTE = (
    "Detailed note required for audit trail (at least %(n)s characters): say why the "
    "dashboard refund was for this refund."
)
MSG_NOTE_LONG = "Keep the note to 500 characters."


@dataclass(frozen=True)
class Settled:
    refund: Refund  # the failed refund, superseded
    parts: tuple[Refund, ...]  # the closed parts, one per dashboard refund counted
    wallet: Refund | None  # what went to the wallet (None: nothing was still owed)


def _checked_note(note):
    note = (note or "").strip()
    minimum = policy().note_min_length
    if len(note) < minimum:
        raise CancellationError(MSG_NOTE % {"n": minimum}, field="note")
    if len(note) > 500:
        raise CancellationError(MSG_NOTE_LONG, field="note")
    return note


def _settled_already(refund):
    return db.session.scalar(
        sa.select(sa.func.count(Refund.id)).where(
            Refund.retry_of_id == refund.id, Refund.outside_refund_id.is_not(None)
        )
    )


def _refusal(refund):
    """Why ``refund`` cannot be settled, whatever Razorpay says, or None."""
    if refund.superseded and _settled_already(refund):
        return MSG_SETTLED
    refusal = actions(refund).refusal(SETTLE)
    if refusal:
        return refusal
    if refund.payment_id is None:  # a reschedule fee's: no payment row to weigh against
        return MSG_NOT_A_PAYMENT
    return None


def _settleable(admin, refund_id, *, lock=True):
    require_admin(admin)
    refund = lock_refund(refund_id) if lock else db.session.get(Refund, refund_id)
    if refund is None:
        raise NotFound("refund")
    refusal = _refusal(refund)
    if refusal:
        raise CancellationError(refusal)
    return refund


def _plan(refund, theirs):
    """The settlement of ``refund`` given Razorpay's refunds of its payment ``theirs``, as
    our rows stand now (``rules.settle``); refused when it would cover nothing, or while a
    dashboard refund not yet counted is still pending at Razorpay (it may fail: the
    patient would then be owed what it was taken to cover)."""
    payment = db.session.get(Payment, refund.payment_id)
    made = made_outside(refund.razorpay_payment_id, theirs)
    for entity, left in made:
        if left and entity.get("status") != "processed":
            raise CancellationError(
                MSG_OUTSIDE_PENDING % {"id": entity.get("id"), "amount": format_inr(left)}
            )
    plan = rules.settle(
        refund.amount,
        captured(payment),
        standing_against(payment.id),
        [(entity["id"], left) for entity, left in made if left],
    )
    if not plan.covered:
        raise CancellationError(MSG_NOTHING_OUTSIDE)
    return plan


def preview(admin, refund_id):
    """What settling the failed refund would do now (``rules.Settlement``), Razorpay asked
    for the payment's refunds: the confirmation page's figures. Reads only: a refund
    Razorpay turns out to hold is applied when settling is asked for, not here."""
    refund = _settleable(admin, refund_id, lock=False)
    try:
        theirs = payment_refunds_at_gateway(refund)
    except GatewayError as exc:
        raise CancellationError(MSG_CANNOT_ASK) from exc
    if not refund.razorpay_refund_id:
        entity = refund_at_gateway(refund, theirs)
        if entity is not None and entity.get("status") != "failed":
            raise CancellationError(MSG_AT_GATEWAY)
    return _plan(refund, theirs)


def _asked(admin, refund_id):
    """Razorpay's refunds of the payment, asked at the moment of settling, in a unit of
    work of its own (``failed.ask_razorpay``): a refund Razorpay holds after all is
    applied and stays so when settling is refused."""
    with unit_of_work():
        refund = _settleable(admin, refund_id)
        theirs, refusal = ask_razorpay(refund, at_gateway=MSG_AT_GATEWAY)
    if theirs is None:
        raise CancellationError(MSG_CANNOT_ASK)
    if refusal:
        raise CancellationError(refusal)
    return theirs


def settle_refund(admin, refund_id, *, shown_to_wallet, note):
    """Settle a failed refund against refunds made on Razorpay's dashboard: the part they
    gave back closed (a processed row naming each), the rest (``shown_to_wallet``, the
    figure the page showed: anything else refuses, nothing moved) to the wallet, the
    failed row superseded, one posting, audited. Razorpay is asked first; the visit is
    locked, then the refund, so two settlements of one payment's refunds count a
    dashboard refund once; a second settlement of the row is refused."""
    require_admin(admin)
    note = _checked_note(note)
    if not whole_paise(shown_to_wallet):
        raise CancellationError(MSG_UNSHOWN, field="shown_to_wallet")
    theirs = _asked(admin, refund_id)
    with unit_of_work():
        visit_id = db.session.scalar(sa.select(Refund.visit_id).where(Refund.id == refund_id))
        if visit_id is not None:
            lifecycle.lock_visit(visit_id)
        refund = _settleable(admin, refund_id)
        plan = _plan(refund, theirs)
        if plan.to_wallet != shown_to_wallet:
            raise CancellationError(
                MSG_CHANGED
                % {"covered": format_inr(plan.covered), "wallet": format_inr(plan.to_wallet)},
                field="shown_to_wallet",
            )
        if plan.to_wallet:
            refuse_a_closed_wallet(refund.patient_id)
        now = utcnow()
        parts = tuple(
            replacement(
                refund,
                admin,
                amount=paise,
                destination=GATEWAY,
                status=RefundStatus.PROCESSED,
                processed_at=now,
                razorpay_payment_id=refund.razorpay_payment_id,
                outside_refund_id=outside_id,
            )
            for outside_id, paise in plan.parts
        )
        wallet = (
            replacement(
                refund,
                admin,
                amount=plan.to_wallet,
                destination=WALLET,
                status=RefundStatus.PROCESSED,
                processed_at=now,
            )
            if plan.to_wallet
            else None
        )
        post(
            LEDGER_KIND,
            [
                debit(chart.REFUNDS_PAYABLE, refund.amount),
                credit(chart.RECONCILIATION_SUSPENSE, plan.covered),
                credit(chart.patient_wallet(refund.patient_id), plan.to_wallet),
            ],
            reference=("refund", refund.id),
            idempotency_key=f"refund:{refund.id}:settled",
            memo="failed refund settled against Razorpay refund(s) "
            + ", ".join(outside_id for outside_id, _paise in plan.parts),
        )
        record(
            admin,
            "refund.settled_outside",
            "refund",
            refund.id,
            after={
                "covered": [list(part) for part in plan.parts],
                "covered_refund_ids": [row.id for row in parts],
                "to_wallet": plan.to_wallet,
                "wallet_refund_id": wallet.id if wallet else None,
                "note": note,
            },
        )
        if wallet is not None:
            events.refund_processed.send("refunds", refund_id=wallet.id)
    return Settled(refund, parts, wallet)
