"""Where a refund's money goes and what it posts: the wallet or back through the Razorpay
payment(s) it came from (``plan_split``, ``make_refunds``), GST reversed pro rata, the
cancellation, penalty and further-refund postings, and reschedule fees given back.
Runs in the caller's unit of work."""

from dataclasses import dataclass

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking.models import PAY_GATEWAY, Reschedule
from portal.db import utcnow
from portal.domain import cancellation as rules
from portal.domain.rates import div_round_half_up
from portal.domain.states import PaymentStatus, RefundStatus, RescheduleStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.ledger.service import entries_for as ledger_entries_for
from portal.payments import records
from portal.payments.models import LINK, ORDER, Payment
from portal.refunds.common import (
    GATEWAY_MINIMUM,
    MSG_CLOSED_ACCOUNT,
    CancellationError,
    new_idempotency_key,
)
from portal.refunds.models import GATEWAY, WALLET, Refund


def open_refunds(item_id):
    """Refunds of the item's paid amount (not of reschedule fees, nor a capture that
    paid for nothing sent back: ``refunds.unapplied``), not replaced."""
    unapplied = sa.select(Payment.id).where(Payment.unapplied.is_(True))
    return db.session.scalars(
        sa.select(Refund).where(
            Refund.booking_id == item_id,
            Refund.reschedule_id.is_(None),
            Refund.superseded.is_(False),
            sa.or_(Refund.payment_id.is_(None), Refund.payment_id.not_in(unapplied)),
        )
    ).all()


def _gateway_payments(visit):
    """The visit's captured Razorpay payments that paid for its items (not money kept in
    the wallet after a late or mismatched capture), oldest first."""
    out = []
    for p in visit.payments:
        if (
            p.kind not in (ORDER, LINK)
            or p.status != PaymentStatus.SUCCESSFUL
            or not p.razorpay_payment_id
        ):
            continue
        if records.paid_for_nothing(p):
            continue
        out.append(p)
    return out


def _refunded_through(razorpay_payment_id):
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                Refund.razorpay_payment_id == razorpay_payment_id,
                Refund.destination == GATEWAY,
                Refund.superseded.is_(False),
            )
        )
        or 0
    )


def beyond_captured(refund, outside):
    """Paise by which ``outside`` (what Razorpay refunded of ``refund``'s payment outside
    the portal) and our refunds of that payment still standing (``refund`` among them,
    and any sent to the wallet instead: they name the payment too) exceed what it
    captured; 0 within. ``_planned`` keeps ours within the captured amount, but does not
    know of a dashboard refund: this is where the wallet learns of one."""
    payment = db.session.get(Payment, refund.payment_id) if refund.payment_id else None
    if payment is None:
        return 0
    return max(0, outside + standing_against(payment.id) - captured(payment))


def captured(payment):
    return payment.captured_amount or payment.amount


def standing_against(payment_id):
    """Paise of our refunds of a payment still standing: not replaced, whatever their
    status or destination (a failed one is still owed; one sent to the wallet, or a part
    settled against a dashboard refund, names the payment it stands in for)."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                Refund.payment_id == payment_id, Refund.superseded.is_(False)
            )
        )
        or 0
    )


@dataclass(frozen=True)
class Split:
    to_wallet: int
    to_gateway: int

    @property
    def total(self):
        return self.to_wallet + self.to_gateway


def split_of(rows):
    """What refund ``rows`` put in the wallet and what they send back online (paise): the
    one sum of a refund's two parts, for its postings and for what people are told."""
    return Split(
        sum(r.amount for r in rows if r.destination == WALLET),
        sum(r.amount for r in rows if r.destination == GATEWAY),
    )


def plan_split(item, amount, prefer_wallet):
    """(to_wallet, to_gateway) for refunding ``amount`` more of ``item`` (domain rule:
    wallet-paid portions always go to the wallet; the rest goes back the way it came
    unless the patient chose the wallet)."""
    if amount <= 0:
        return Split(0, 0)
    already = split_of(open_refunds(item.id))
    split = rules.split_refund(
        amount,
        item.wallet_paid,
        item.gateway_paid,
        already.to_wallet,
        already.to_gateway,
        prefer_wallet=prefer_wallet,
    )
    return Split(split.to_wallet, split.to_gateway)


def _planned(item, amount, prefer_wallet):
    """Where a refund of ``amount`` of ``item`` goes, paisa by paisa: ``(to the wallet,
    [(Razorpay payment, part)])``. The gateway part goes back to the visit's Razorpay
    payments within what each has left; a desk payment has none, and a part below
    Razorpay's minimum is not sent: both go to the wallet. Any wallet part of a closed
    account is refused here (``CancellationError``), the one place that decides it: the
    further refund's request and its approval, and a cancellation, all come through."""
    split = plan_split(item, amount, prefer_wallet)
    remaining, parts = split.to_gateway, []
    if remaining:
        for payment in _gateway_payments(item.visit):
            room = (
                (payment.captured_amount or payment.amount)
                - _refunded_through(payment.razorpay_payment_id)
                - sum(
                    p for pay, p in parts if pay.razorpay_payment_id == payment.razorpay_payment_id
                )
            )
            part = min(room, remaining)
            if part < GATEWAY_MINIMUM:
                continue
            parts.append((payment, part))
            remaining -= part
            if remaining == 0:
                break
    to_wallet = split.to_wallet + remaining
    if to_wallet:
        refuse_a_closed_wallet(item.visit.patient_id)
    return to_wallet, parts


def refuse_a_closed_wallet(patient_id):
    """A closed account's wallet takes no credit, made or approved later (docs/privacy.md):
    nobody can spend it or be paid it. Read fresh, the row held ``FOR KEY SHARE`` as the
    claims' trigger holds it, so a closure committing meanwhile (it takes the row ``FOR
    UPDATE``) is waited for and seen. A refund to the original payment method is not
    refused: only the wallet's part asks."""
    patient = db.session.get(
        User, patient_id, with_for_update={"key_share": True}, populate_existing=True
    )
    if patient.is_closed:
        raise CancellationError(MSG_CLOSED_ACCOUNT, field="destination")


def refund_split(item, amount, prefer_wallet):
    """What a refund of ``amount`` of ``item`` will do, as ``make_refunds`` writes it: the
    cancel page's preview shows this, so a desk-paid visit is shown going to the wallet."""
    to_wallet, parts = _planned(item, amount, prefer_wallet)
    return Split(to_wallet, sum(part for _payment, part in parts))


def make_refunds(item, amount, prefer_wallet, *, actor, cancellation=None, approval=None, now=None):
    """Refund rows for ``amount`` of ``item`` (``_planned``): the wallet part PROCESSED at
    once, the gateway parts PENDING against the visit's Razorpay payment(s). Returns the
    rows."""
    now = now or utcnow()
    to_wallet, parts = _planned(item, amount, prefer_wallet)
    rows = []
    visit = item.visit
    common = dict(
        booking_id=item.id,
        visit_id=visit.id,
        patient_id=visit.patient_id,
        cancellation=cancellation,
        approval_id=approval.id if approval else None,
        created_by_id=getattr(actor, "id", None),
    )
    for payment, part in parts:
        rows.append(
            Refund(
                amount=part,
                destination=GATEWAY,
                status=RefundStatus.PENDING,
                payment_id=payment.id,
                razorpay_payment_id=payment.razorpay_payment_id,
                idempotency_key=new_idempotency_key(),
                **common,
            )
        )
    if to_wallet:
        rows.insert(
            0,
            Refund(
                amount=to_wallet,
                destination=WALLET,
                status=RefundStatus.PROCESSED,
                processed_at=now,
                idempotency_key=new_idempotency_key(),
                **common,
            ),
        )
    for row in rows:
        db.session.add(row)
    db.session.flush()
    return rows


def gst_kept(gst, paid, kept):
    """GST that stays payable on the part of an item's paid amount kept as a cancellation
    charge: pro rata to what is kept (half-up), never more than what is kept."""
    if paid <= 0 or kept <= 0:
        return 0
    return min(kept, div_round_half_up(gst * kept, paid))


def _split_lines(rows, patient_id):
    split = split_of(rows)
    return [
        credit(chart.patient_wallet(patient_id), split.to_wallet),
        credit(chart.REFUNDS_PAYABLE, split.to_gateway),
    ]


def post_cancellation(item, cancellation, rows):
    """docs/ledger.md "cancellation with refund R", GST reversed pro rata (docs/refunds.md):
    the item is unwound; what is kept is cancellation revenue net of its GST."""
    paid, refund = item.paid_amount, cancellation.refund
    kept = paid - refund
    gst_stays = gst_kept(item.gst, paid, kept)
    cancellation.gst_reversed = item.gst - gst_stays
    lines = [
        debit(chart.UNEARNED_FEES, item.fee),
        debit(chart.PLATFORM_REVENUE, item.platform_fee),
        debit(chart.GST_PAYABLE, item.gst - gst_stays),
        credit(chart.DISCOUNTS, item.discount_share),
        *_split_lines(rows, item.visit.patient_id),
        credit(chart.CANCELLATION_REVENUE, kept - gst_stays),
    ]
    if item.total == 0:
        return None
    return post(
        "booking_cancelled",
        lines,
        reference=("booking", item.id),
        idempotency_key=f"cancel:{item.id}",
        memo=f"cancellation of booking {item.id} ({cancellation.rule})",
    )


def post_penalty(cancellation, provider_id, amount):
    return post(
        "provider_penalty",
        [debit(chart.provider_payable(provider_id), amount), credit(chart.PENALTY_REVENUE, amount)],
        reference=("cancellation", cancellation.id),
        idempotency_key=f"penalty:{cancellation.id}",
        memo=f"provider cancellation penalty, booking {cancellation.booking_id}",
    )


def post_extra_refund(item, cancellation, approval, rows, extra):
    """A further refund after the cancellation (an approved override): taken back from
    cancellation revenue, with the GST that no longer stays payable."""
    paid = item.paid_amount
    kept_before = paid - (item.refunded_amount - extra)
    kept_after = kept_before - extra
    delta_gst = gst_kept(item.gst, paid, kept_before) - gst_kept(item.gst, paid, kept_after)
    cancellation.gst_reversed += delta_gst
    return post(
        "refund_override",
        [
            debit(chart.GST_PAYABLE, delta_gst),
            debit(chart.CANCELLATION_REVENUE, extra - delta_gst),
            *_split_lines(rows, item.visit.patient_id),
        ],
        reference=("booking", item.id),
        idempotency_key=f"refund_extra:{approval.id}",
        memo=f"approved refund override {approval.id}",
    )


# A refund of a reschedule fee itself: made by the cancellation that gave the fee back
# (``refund_reschedule_fees``; a retry or the wallet's replacement keeps it), not the
# refund of a capture on the fee's order that paid for nothing (``refunds.unapplied``,
# which names the reschedule too: that money was never the fee).
FEE_REFUND = Refund.cancellation_id.is_not(None)


def _fee_refunds_due(item):
    """Reschedule fees the patient paid for this booking and has not had back."""
    refunded = sa.select(Refund.reschedule_id).where(Refund.reschedule_id.is_not(None), FEE_REFUND)
    return db.session.scalars(
        sa.select(Reschedule)
        .where(
            Reschedule.booking_id == item.id,
            Reschedule.status == RescheduleStatus.DONE,
            Reschedule.total > 0,
            Reschedule.id.not_in(refunded),
        )
        .order_by(Reschedule.id)
    ).all()


def reschedule_fees_refundable(item, kind):
    """Paise of reschedule fees a cancellation of this kind gives back."""
    return (
        sum(r.total for r in _fee_refunds_due(item))
        if rules.gives_back_reschedule_fees(kind)
        else 0
    )


def refund_reschedule_fees(item, cancellation, actor, prefer_wallet, now):
    """Give back every paid reschedule fee of the item: the fee posting is unwound (the
    provider's share, commission, platform fee and GST) into the wallet — the way a
    wallet or desk fee came in, or by choice — or ``refunds_payable`` for a Razorpay
    refund of the fee's own payment. Returns the refund rows."""
    rows = []
    for resched in _fee_refunds_due(item):
        online = (
            resched.pay_with == PAY_GATEWAY
            and resched.razorpay_payment_id
            and not prefer_wallet
            and resched.total >= GATEWAY_MINIMUM
        )
        row = Refund(
            booking_id=item.id,
            visit_id=item.master_id,
            patient_id=item.visit.patient_id,
            cancellation=cancellation,
            reschedule_id=resched.id,
            amount=resched.total,
            destination=GATEWAY if online else WALLET,
            status=RefundStatus.PENDING if online else RefundStatus.PROCESSED,
            processed_at=None if online else now,
            razorpay_payment_id=resched.razorpay_payment_id if online else None,
            idempotency_key=new_idempotency_key(),
            created_by_id=getattr(actor, "id", None),
        )
        db.session.add(row)
        db.session.flush()
        fee_txn = next(
            t for t in ledger_entries_for("reschedule", resched.id) if t.kind == "reschedule_fee"
        )
        lines = [(e.account.code, -e.amount) for e in fee_txn.entries if e.amount < 0]
        lines.append(
            credit(
                chart.REFUNDS_PAYABLE if online else chart.patient_wallet(item.visit.patient_id),
                resched.total,
            )
        )
        post(
            "reschedule_fee_refund",
            lines,
            reference=("reschedule", resched.id),
            idempotency_key=f"reschedule_refund:{resched.id}",
            memo=f"reschedule fee given back, booking {item.id}",
        )
        rows.append(row)
    return rows
