"""What the refund pages list and show (read only): refunds, override approvals waiting and
decided, a visit's refunds and cancellations. Lists are keyset pages and load what their
rows show with the page."""

from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.booking import prices as booking_prices
from portal.booking.credit_notes import CreditNote
from portal.booking.models import (
    PAY_DESK,
    PAY_GATEWAY,
    PAY_WALLET,
    FeeCapture,
    IndividualBooking,
    MasterBooking,
    Reschedule,
)
from portal.booking.reschedule_payment import FEE_CREDITED_AT
from portal.catalog.models import Clinic, Service
from portal.db import UTCDateTime, db
from portal.domain.states import (
    ApprovalStatus,
    BookingStatus,
    PaymentStatus,
    RefundStatus,
    RescheduleStatus,
    VisitStatus,
)
from portal.i18n import N_
from portal.pagination import Order, keyset_page
from portal.payments import records
from portal.payments.models import Payment
from portal.refunds.models import Cancellation, Refund, RefundApproval
from portal.refunds.money import FEE_REFUND

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
    ``refund_pending``: refunds on their way (pending at Razorpay, or failed and not yet
    retried or sent to the wallet: still owed, as My visits and the fee rows say);
    ``due``: still to pay (0 once paid)."""

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
        elif refund.status in IN_FLIGHT:  # a failed one is still owed: retried or to the wallet
            pending += refund.amount
    if visit.is_open:
        due = quote.amount_due
    elif visit.status == VisitStatus.EXPIRED:
        due = 0
    else:
        due = max(quote.payable - paid, 0)
    return VisitMoney(quote.payable, paid, refunded, pending, due)


# How a reschedule fee was paid, as the visit page and the receipt say it.
FEE_PAID_BY = {
    PAY_WALLET: N_("From your wallet"),
    PAY_GATEWAY: N_("Paid online"),
    PAY_DESK: N_("Paid at the clinic"),
}


@dataclass(frozen=True)
class FeePaid:
    """A reschedule fee the patient paid on this visit: its tax document (``document_no``,
    its number in the fees' series as issued, and ``invoice_no``, the visit's invoice it
    is against; the clinic's GSTIN and name, the description of its booking's line
    (service — providers) and the split as stored when it was charged), how it
    was paid (``pay_with``: WALLET, GATEWAY or DESK, ``reference``: the Razorpay payment
    or the desk's receipt), the move it paid for, and what became of it
    (``refund_status``: None, or its live refund's status; ``credit_note_no``: the GST
    credit note its refund issued)."""

    id: int
    document_no: str | None
    invoice_no: str | None
    booking_id: int
    description: str  # as issued: "Consultation — Dr A", whatever it is called today
    clinic_name: str  # as issued
    timezone: str
    old_start: object
    new_start: object
    paid_at: object
    pay_with: str
    reference: str | None
    penalty: int
    platform_fee: int
    gst: int
    cgst: int
    sgst: int
    igst: int
    gstin: str | None
    total: int
    refund_status: str | None = None
    credit_note_no: str | None = None
    visit_number: str | None = None  # read by patient only (``fees_of_patient``)

    @property
    def taxable(self):
        """Its taxable value: the fee and the platform fee (GST is charged on both), as
        the GST report and its credit note count it."""
        return self.penalty + self.platform_fee

    @property
    def paid_by(self):
        """How it was paid, for the page (``FEE_PAID_BY``; translated there)."""
        return FEE_PAID_BY.get(self.pay_with, "")

    @property
    def receipt_no(self):
        """The desk's receipt number, for a fee paid at the desk."""
        return self.reference if self.pay_with == PAY_DESK else None

    @property
    def razorpay_payment_id(self):
        """The gateway's payment id, for a fee paid online."""
        return self.reference if self.pay_with == PAY_GATEWAY else None

    @property
    def refunded(self):
        return self.refund_status == RefundStatus.PROCESSED

    @property
    def refund_pending(self):
        return self.refund_status in (RefundStatus.PENDING, RefundStatus.FAILED)


@dataclass(frozen=True)
class VisitFees:
    """The visit's paid reschedule fees (``rows``, oldest first) and their sums: kept apart
    from ``VisitMoney`` (whose ``paid`` is what the appointments cost): docs/refunds.md."""

    rows: tuple = ()

    @property
    def paid(self):
        return sum(f.total for f in self.rows)

    @property
    def refunded(self):
        return sum(f.total for f in self.rows if f.refunded)

    @property
    def refund_pending(self):
        return sum(f.total for f in self.rows if f.refund_pending)


def _paid_fees_select():
    """The paid fees (DONE with a fee: the fee was posted, as ``refunds.money`` gives them
    back), each with the names its document was issued with (``invoices.issue_fee``) and
    its clinic's time zone, and its live refund, if any (an
    outer join: a fee refund retried or sent to the wallet leaves one live row), and the
    credit note that refund issued (``booking.credit_notes``: one per fee given back).
    Only the fee's own refund (``FEE_REFUND``): a capture on the fee's order after the
    account closed is sent back naming the reschedule too, but it was never the fee (no
    GST, no credit note) and the fee stays paid. Narrowed by the callers: a visit's, a
    patient's."""
    live = sa.and_(Refund.reschedule_id == Reschedule.id, Refund.superseded.is_(False), FEE_REFUND)
    return (
        sa.select(
            Reschedule.id,
            Reschedule.document_no,
            Reschedule.booking_id,
            Reschedule.invoice_description,
            Reschedule.invoice_clinic_name,
            Clinic.timezone,
            Reschedule.old_start,
            Reschedule.new_start,
            Reschedule.done_at,
            Reschedule.pay_with,
            Reschedule.razorpay_payment_id,
            Reschedule.receipt_no,
            Reschedule.penalty,
            Reschedule.platform_fee,
            Reschedule.gst,
            Reschedule.cgst,
            Reschedule.sgst,
            Reschedule.igst,
            Reschedule.invoice_gstin,
            Reschedule.total,
            Refund.status.label("refund_status"),
            CreditNote.number.label("credit_note_no"),
        )
        .join(IndividualBooking, IndividualBooking.id == Reschedule.booking_id)
        .join(Clinic, Clinic.id == IndividualBooking.clinic_id)
        .outerjoin(Refund, live)
        .outerjoin(CreditNote, CreditNote.reschedule_id == Reschedule.id)
        .where(Reschedule.status == RescheduleStatus.DONE, Reschedule.total > 0)
        .order_by(Reschedule.done_at, Reschedule.id, Refund.id)
    )


@cache
def _paid_fees():
    """Built once: the paid fees of a visit (``_paid_fees_select``)."""
    return _paid_fees_select().where(Reschedule.visit_id == sa.bindparam("visit_id"))


def visit_fees(visit):
    """The reschedule fees paid on ``visit`` (``VisitFees``), in one statement whatever
    their number: the visit page's money and payments, the receipt's fee documents. An
    open visit has paid nothing, so no fee: none, and no statement (its pages cost what
    they did)."""
    if visit.is_open:
        return VisitFees()
    rows = db.session.execute(_paid_fees(), {"visit_id": visit.id})
    return VisitFees(tuple(_fees_paid(rows, lambda row: visit.invoice_no)))


def _fees_paid(rows, invoice_no, visit_number=lambda row: None):
    """``FeePaid`` of the rows of a paid-fees statement, oldest first: one per fee (its
    rows differ only by its live refund: the newest one's status is kept)."""
    found = {}
    for row in rows:
        found[row.id] = FeePaid(
            id=row.id,
            document_no=row.document_no,
            invoice_no=invoice_no(row),
            booking_id=row.booking_id,
            description=row.invoice_description,
            clinic_name=row.invoice_clinic_name,
            timezone=row.timezone,
            old_start=row.old_start,
            new_start=row.new_start,
            paid_at=row.done_at,
            pay_with=row.pay_with,
            reference=row.razorpay_payment_id or row.receipt_no,
            penalty=row.penalty,
            platform_fee=row.platform_fee,
            gst=row.gst,
            cgst=row.cgst or 0,
            sgst=row.sgst or 0,
            igst=row.igst or 0,
            gstin=row.invoice_gstin,
            total=row.total,
            refund_status=row.refund_status,  # the newest live refund, when several
            credit_note_no=row.credit_note_no,
            visit_number=visit_number(row),
        )
    return list(found.values())


@cache
def item_refunds_done():
    """Built once: SQL for what of an item's ``refunded_amount`` is processed (its live
    refunds of the paid amount, PROCESSED), correlated to the item's row, for My visits
    (``booking.queries.patient_visits_page``: read with the items, no statement more).
    The rest of ``refunded_amount`` is on its way (pending at Razorpay, or failed and
    being retried or sent to the wallet)."""
    unapplied = sa.select(Payment.id).where(Payment.unapplied.is_(True))
    return (
        sa.select(sa.cast(sa.func.coalesce(sa.func.sum(Refund.amount), 0), sa.BigInteger))
        .where(
            Refund.booking_id == IndividualBooking.id,
            Refund.reschedule_id.is_(None),
            Refund.superseded.is_(False),
            Refund.status == RefundStatus.PROCESSED,
            sa.or_(Refund.payment_id.is_(None), Refund.payment_id.not_in(unapplied)),
        )
        .correlate(IndividualBooking)
        .scalar_subquery()
    )


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


@cache
def _patients_paid_fees():
    """Built once: the paid fees of every visit of a patient (``_paid_fees_select``, the
    visit page's statement), with each visit's number and invoice number."""
    return (
        _paid_fees_select()
        .add_columns(MasterBooking.number.label("visit_number"), MasterBooking.invoice_no)
        .join(MasterBooking, MasterBooking.id == Reschedule.visit_id)
        .where(MasterBooking.patient_id == sa.bindparam("patient_id"))
    )


def fees_of_patient(patient_id):
    """Every reschedule fee the patient paid (``FeePaid``, with ``visit_number``), oldest
    first, in one statement however many: the visit page's rows, for their data
    download."""
    rows = db.session.execute(_patients_paid_fees(), {"patient_id": patient_id})
    return _fees_paid(rows, lambda row: row.invoice_no, lambda row: row.visit_number)


@dataclass(frozen=True)
class FeeNotApplied:
    """A reschedule fee payment Razorpay captured that paid no fee (the wrong amount, a
    second payment, the new time gone, or paid after the request ended): its money went
    to the patient's wallet (``booking.reschedule_payment``). Recorded on its reschedule
    or in a ``FeeCapture`` of its own."""

    visit_number: str
    service_name: str
    old_start: object
    new_start: object
    razorpay_payment_id: str
    amount: int
    captured_at: object


@cache
def _patients_fees_not_applied():
    """Built once: both records of a fee payment that paid no fee, of a patient's visits:
    a reschedule that records a payment but did not move (FAILED, EXPIRED: dated by its
    wallet credit, as reconciliation dates it), and every ``FeeCapture``."""

    def about(select):
        return (
            select.join(MasterBooking, MasterBooking.id == Reschedule.visit_id)
            .join(IndividualBooking, IndividualBooking.id == Reschedule.booking_id)
            .join(Service, Service.id == IndividualBooking.service_id)
            .where(MasterBooking.patient_id == sa.bindparam("patient_id"))
        )

    columns = (
        MasterBooking.number.label("visit_number"),
        Service.name.label("service_name"),
        Reschedule.old_start,
        Reschedule.new_start,
    )
    on_the_row = about(
        sa.select(
            *columns,
            Reschedule.razorpay_payment_id,
            Reschedule.total.label("amount"),
            sa.func.coalesce(FEE_CREDITED_AT, Reschedule.created_at, type_=UTCDateTime).label(
                "captured_at"
            ),
        ).where(
            Reschedule.status != RescheduleStatus.DONE, Reschedule.razorpay_payment_id.is_not(None)
        )
    )
    of_its_own = about(
        sa.select(
            *columns,
            FeeCapture.razorpay_payment_id,
            FeeCapture.amount,
            FeeCapture.captured_at,
        ).join(Reschedule, Reschedule.id == FeeCapture.reschedule_id)
    )
    both = sa.union_all(on_the_row, of_its_own).subquery()
    return sa.select(both).order_by(both.c.captured_at, both.c.razorpay_payment_id)


def fees_not_applied_of_patient(patient_id):
    """The patient's reschedule fee payments that paid no fee (``FeeNotApplied``), oldest
    first, in one statement however many."""
    return [
        FeeNotApplied(**row._mapping)
        for row in db.session.execute(_patients_fees_not_applied(), {"patient_id": patient_id})
    ]


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


def visits_named_by_refunds(patient_id, references):
    """``{("refund", id): (visit id, visit number)}`` for the patient's own refunds among
    ``references`` (ledger pairs, the id a string): a failed refund an administrator sent
    to the wallet names its visit on the wallet page, as ``booking.queries.visits_named_by``
    names the other lines. One statement, none when no line is a refund's."""
    ids = sorted({int(ref) for kind, ref in references if kind == "refund" and str(ref).isdigit()})
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Refund.id, MasterBooking.id, MasterBooking.number)
        .join(MasterBooking, MasterBooking.id == Refund.visit_id)
        .where(Refund.id.in_(ids), Refund.patient_id == patient_id)
    )
    return {("refund", str(ref)): (visit_id, number) for ref, visit_id, number in rows}
