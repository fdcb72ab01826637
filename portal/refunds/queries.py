"""What the refund pages list and show (read only): refunds, override approvals waiting and
decided, a visit's refunds and cancellations. Lists are keyset pages and load what their
rows show with the page."""

from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.booking import prices as booking_prices
from portal.booking.models import IndividualBooking, MasterBooking
from portal.db import db
from portal.domain.states import (
    ApprovalStatus,
    BookingStatus,
    PaymentStatus,
    RefundStatus,
    VisitStatus,
)
from portal.pagination import Order, keyset_page
from portal.payments import records
from portal.refunds.models import Cancellation, Refund, RefundApproval

REFUND_ORDER = (Order(Refund.created_at, descending=True), Order(Refund.id, descending=True))
PENDING_ORDER = (Order(RefundApproval.created_at), Order(RefundApproval.id))
DECIDED_ORDER = (
    Order(RefundApproval.decided_at, descending=True),
    Order(RefundApproval.id, descending=True),
)
REFUND_ROW = (
    joinedload(Refund.visit),
    joinedload(Refund.patient),  # closed: no wallet offered (refunds.failed.actions)
    joinedload(Refund.booking).joinedload(IndividualBooking.service),
)
APPROVAL_ROW = (
    joinedload(RefundApproval.booking).joinedload(IndividualBooking.service),
    joinedload(RefundApproval.booking).joinedload(IndividualBooking.visit),
    joinedload(RefundApproval.requested_by),
    joinedload(RefundApproval.decided_by),
)


def refunds_page(*, status=None, after=None, before=None, per_page=30):
    """Every refund newest first, optionally of one status."""
    query = sa.select(Refund)
    if status:
        query = query.where(Refund.status == status)
    return keyset_page(
        query, REFUND_ORDER, after=after, before=before, per_page=per_page, options=REFUND_ROW
    )


def pending_approvals_page(*, after=None, before=None, per_page=50):
    """Overrides and further refunds awaiting a second administrator, oldest first."""
    query = sa.select(RefundApproval).where(RefundApproval.status == ApprovalStatus.PENDING)
    return keyset_page(
        query, PENDING_ORDER, after=after, before=before, per_page=per_page, options=APPROVAL_ROW
    )


def decided_approvals_page(*, after=None, before=None, per_page=30):
    """Approvals decided (approved or rejected), the latest decision first."""
    query = sa.select(RefundApproval).where(
        RefundApproval.status != ApprovalStatus.PENDING, RefundApproval.decided_at.is_not(None)
    )
    return keyset_page(
        query, DECIDED_ORDER, after=after, before=before, per_page=per_page, options=APPROVAL_ROW
    )


def pending_approvals_for(booking_id):
    return db.session.scalars(
        sa.select(RefundApproval)
        .where(
            RefundApproval.status == ApprovalStatus.PENDING, RefundApproval.booking_id == booking_id
        )
        .order_by(RefundApproval.created_at, RefundApproval.id)
    ).all()


@cache
def _live_refunds():
    """Built once: a visit's page reads it on every view, and building the statement
    (with its cache key) cost about as much CPU as running it."""
    return (
        sa.select(Refund)
        .where(Refund.visit_id == sa.bindparam("visit_id"), Refund.superseded.is_(False))
        .order_by(Refund.id)
    )


def live_refunds_for_visit(visit_id):
    """The visit's refunds that count (not replaced by a retry or the wallet), in order."""
    return db.session.scalars(_live_refunds(), {"visit_id": visit_id}).all()


def refunds_for_booking(booking_id):
    return db.session.scalars(
        sa.select(Refund).where(Refund.booking_id == booking_id).order_by(Refund.id)
    ).all()


def cancellations_for_visit(visit_id):
    """The visit's cancellations, one per cancelled item, in the items' order."""
    return db.session.scalars(
        sa.select(Cancellation)
        .join(IndividualBooking, Cancellation.booking_id == IndividualBooking.id)
        .where(
            IndividualBooking.master_id == visit_id,
            IndividualBooking.status == BookingStatus.CANCELLED,
        )
        .order_by(IndividualBooking.start_at, IndividualBooking.id)
    ).all()


@dataclass(frozen=True)
class VisitMoney:
    """What a visit's money stands at, for the patient's and the admin's visit pages.

    ``price``: what the visit costs after the coupon; ``paid``: captured for it so far
    (online, desk and wallet); ``refunded``: refunds processed (to the card or the wallet);
    ``refund_pending``: refunds on their way; ``due``: still to pay (0 once paid)."""

    price: int
    paid: int
    refunded: int
    refund_pending: int
    due: int

    @property
    def kept(self):
        """Paid and not given back."""
        return self.paid - self.refunded - self.refund_pending


def visit_money(visit, wallet_paise=0, quote=None, refunds=True):
    """Paid, refunded and due for one visit (issue #16: a paid visit showed its whole price
    as "Amount due"). An open visit is due what its quote asks through the gateway (after
    coupon and the wallet part asked for); a paid one what its price exceeds the captures by
    (never below 0); an expired one nothing. ``quote``: the caller's
    ``booking_prices.quote(visit, wallet_paise)``, when it has it (not computed twice).
    ``refunds=False``: the refunds are not read and count 0, for a page that does not show
    them (the patient's page of an unpaid visit)."""
    if quote is None:
        quote = booking_prices.quote(visit, wallet_paise)
    # Not a capture that paid for nothing (late, the wrong amount): that is in the wallet.
    paid = sum(
        p.captured_amount or p.amount
        for p in visit.payments
        if p.status == PaymentStatus.SUCCESSFUL and not records.paid_for_nothing(p)
    )
    refunded = pending = 0
    nothing_paid = {p.id for p in visit.payments if records.paid_for_nothing(p)}
    for refund in live_refunds_for_visit(visit.id) if refunds else ():
        if refund.reschedule_id is not None:
            continue  # a reschedule fee given back: never part of the visit's payments
        if refund.payment_id is not None and refund.payment_id in nothing_paid:
            continue  # a capture that paid for nothing, sent back (``refunds.unapplied``)
        if refund.status == RefundStatus.PROCESSED:
            refunded += refund.amount
        elif refund.status == RefundStatus.PENDING:
            pending += refund.amount
    if visit.is_open:
        due = quote.amount_due
    elif visit.status == VisitStatus.EXPIRED:
        due = 0
    else:
        due = max(quote.payable - paid, 0)
    return VisitMoney(quote.payable, paid, refunded, pending, due)


# --- a patient's own record (portal.privacy) -----------------------------------------------

IN_FLIGHT = (RefundStatus.PENDING, RefundStatus.FAILED)


def refunds_of_patient(patient_id):
    """The patient's refunds, oldest first, with their visit and booking's service."""
    return db.session.scalars(
        sa.select(Refund)
        .where(Refund.patient_id == patient_id)
        .order_by(Refund.created_at, Refund.id)
        .options(*REFUND_ROW)
    ).all()


def refunds_in_flight(patient_id):
    """How many of the patient's refunds are not finished: sent and not yet processed,
    failed (the clinic still owes it: retried or sent again), or a further refund
    waiting for a second administrator. A failed one replaced (retried, sent to the
    wallet: ``superseded``) is its replacement's to count."""
    refunds = db.session.scalar(
        sa.select(sa.func.count(Refund.id)).where(
            Refund.patient_id == patient_id,
            Refund.status.in_(IN_FLIGHT),
            Refund.superseded.is_(False),
        )
    )
    approvals = db.session.scalar(
        sa.select(sa.func.count(RefundApproval.id))
        .join(IndividualBooking, IndividualBooking.id == RefundApproval.booking_id)
        .join(MasterBooking, MasterBooking.id == IndividualBooking.master_id)
        .where(
            MasterBooking.patient_id == patient_id, RefundApproval.status == ApprovalStatus.PENDING
        )
    )
    return refunds + approvals
