"""Refund overrides above the calculated amount, decided by a second administrator: asking
(at cancellation, or a further refund later), approving (the extra is refunded now, never
beyond paid − already refunded) and rejecting. Each decision is one unit of work."""

import sqlalchemy as sa

from portal import events, jobs
from portal.audit.service import record
from portal.booking import claims, lifecycle
from portal.booking.errors import NotFound, PermissionDenied
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain import cancellation as rules
from portal.domain.rates import format_inr
from portal.domain.states import APPROVAL, ApprovalStatus, BookingStatus
from portal.domain.text import Text
from portal.extensions import db
from portal.refunds.common import (
    MSG_DECIDED,
    MSG_FURTHER_AMOUNT,
    MSG_FURTHER_NOT_CANCELLED,
    MSG_FURTHER_PENDING,
    MSG_FURTHER_TOO_MUCH,
    MSG_NOTHING_LEFT,
    MSG_SECOND_ADMIN,
    CancellationError,
    item_for_admin_or_provider,
    lock_items,
    lock_query,
    require_admin,
)
from portal.refunds.lookup import cancellation_for
from portal.refunds.models import GATEWAY, RefundApproval
from portal.refunds.money import make_refunds, post_extra_refund, refund_split

# The audit actions of an override's maker-checker trail: its request and its decision
# (the approvals queue's source names them as its steps, ``approvals.sources``).
REQUESTED = "refund.override_requested"
APPROVED = "refund.override_approved"
REJECTED = "refund.override_rejected"
APPROVAL_STEPS = (REQUESTED, APPROVED, REJECTED)


def request_approval(admin, item, cancellation, override, calculated, reason, prefer_wallet=None):
    """The part of a refund override above the calculated amount waits for a second
    administrator (inside the caller's unit of work)."""
    approval = RefundApproval(
        booking_id=item.id,
        cancellation_id=cancellation.id,
        requested_by_id=admin.id,
        override_amount=override,
        calculated=calculated,
        extra=override - calculated,
        reason=(reason or "").strip(),
        prefer_wallet=prefer_wallet,
        status=ApprovalStatus.PENDING,
    )
    db.session.add(approval)
    db.session.flush()
    record(
        admin,
        REQUESTED,
        "booking",
        item.id,
        after={
            "approval_id": approval.id,
            "override": override,
            "calculated": calculated,
            "reason": approval.reason,
        },
    )
    events.refund_override_requested.send("refunds", approval_id=approval.id)
    return approval


def pending_approvals():
    return db.session.scalars(
        sa.select(RefundApproval)
        .where(RefundApproval.status == ApprovalStatus.PENDING)
        .order_by(RefundApproval.created_at, RefundApproval.id)
    ).all()


def decide(admin, approval_id):
    require_admin(admin)
    approval = db.session.scalar(
        lock_query(sa.select(RefundApproval).where(RefundApproval.id == approval_id))
    )
    if approval is None:
        raise NotFound("approval")
    if approval.status != ApprovalStatus.PENDING:
        raise CancellationError(MSG_DECIDED)
    if approval.requested_by_id == admin.id:
        raise PermissionDenied(MSG_SECOND_ADMIN)
    return approval


def prefers_wallet(cancellation, prefer_wallet):
    """Where a further refund goes: as asked, or (None) as chosen at cancellation."""
    return cancellation.prefer_wallet if prefer_wallet is None else prefer_wallet


def request_further_refund(admin, item_id, amount, reason, prefer_wallet=None, now=None):
    """More money back for an item already cancelled (goodwill, a mistake corrected): up
    to paid − already refunded, with a reason of the policy's note length. It is above the
    amount the cancellation calculated, so it always waits for a second administrator
    (``approve_override`` pays it). ``prefer_wallet`` None: the cancellation's choice.
    Money that would go to a closed account's wallet is refused, here and at approval
    (``money._planned``: ``MSG_CLOSED_ACCOUNT``)."""
    require_admin(admin)
    reason = (reason or "").strip()
    if len(reason) < policy().note_min_length:
        raise CancellationError(rules.MSG_OVERRIDE_NOTE, field="reason")
    if amount is None or amount <= 0:
        raise CancellationError(MSG_FURTHER_AMOUNT, field="amount")
    with claims.serialized(), unit_of_work():
        item = item_for_admin_or_provider(item_id)
        lifecycle.lock_visit(item.master_id)
        item = lock_items(item.master_id)[item.id]
        cancellation = cancellation_for(item.id)
        if item.status != BookingStatus.CANCELLED or cancellation is None:
            raise CancellationError(MSG_FURTHER_NOT_CANCELLED, field="amount")
        if amount > item.refundable:
            left = format_inr(item.refundable)
            raise CancellationError(Text(MSG_FURTHER_TOO_MUCH, left=left), field="amount")
        if any(a.booking_id == item.id for a in pending_approvals()):
            raise CancellationError(MSG_FURTHER_PENDING, field="amount")
        # Refused now, not only at approval, if any of it would go to a closed wallet.
        split = refund_split(item, amount, prefers_wallet(cancellation, prefer_wallet))
        if not split.to_gateway:
            # Nothing can go back online (a desk payment has no Razorpay payment): it all
            # goes to the wallet, and the checking administrator's queue says so.
            prefer_wallet = True
        approval = request_approval(
            admin,
            item,
            cancellation,
            item.refunded_amount + amount,
            item.refunded_amount,
            reason,
            prefer_wallet=prefer_wallet,
        )
    return approval


def approve_override(admin, approval_id, note=None, now=None):
    """A second administrator approves: the extra amount is refunded now (never beyond
    paid − already refunded)."""
    with claims.serialized(), unit_of_work():
        approval = decide(admin, approval_id)
        item = approval.booking
        lifecycle.lock_visit(item.master_id)
        item = lock_items(item.master_id)[item.id]
        cancellation = approval.cancellation
        extra = min(approval.extra, item.refundable)
        if extra <= 0:
            raise CancellationError(MSG_NOTHING_LEFT)
        now = now or utcnow()
        rows = make_refunds(
            item,
            extra,
            prefers_wallet(cancellation, approval.prefer_wallet),
            actor=admin,
            cancellation=cancellation,
            approval=approval,
            now=now,
        )
        item.refunded_amount += extra
        post_extra_refund(item, cancellation, approval, rows, extra)
        APPROVAL.move(approval, ApprovalStatus.APPROVED)
        approval.decided_by_id, approval.decided_at = admin.id, now
        approval.decision_note = (note or "").strip() or None
        record(
            admin,
            APPROVED,
            "booking",
            item.id,
            after={
                "approval_id": approval.id,
                "extra": extra,
                "refunds": [(r.id, r.destination, r.amount) for r in rows],
            },
        )
        for row in rows:
            if row.destination == GATEWAY:
                jobs.enqueue(
                    "refunds.execute", refund_id=row.id, dedupe_key=f"refund-exec:{row.id}"
                )
        events.refund_override_approved.send(
            "refunds", approval_id=approval.id, booking_id=item.id, amount=extra
        )
    return approval


def reject_override(admin, approval_id, note=None, now=None):
    with unit_of_work():
        approval = decide(admin, approval_id)
        APPROVAL.move(approval, ApprovalStatus.REJECTED)
        approval.decided_by_id, approval.decided_at = admin.id, now or utcnow()
        approval.decision_note = (note or "").strip() or None
        record(
            admin,
            REJECTED,
            "booking",
            approval.booking_id,
            after={"approval_id": approval.id, "note": approval.decision_note},
        )
    return approval
