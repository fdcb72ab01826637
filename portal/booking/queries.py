"""What the booking pages list and show (read only): visits, a patient's open visit, earlier
bookings a follow-up may refer to, coupons.

Lists are keyset pages (``portal.pagination``) and load what their rows show up front
(items with their clinic and service, the patient, the dependent), so a page costs the same
few queries for 3 rows or 50."""

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, load_only

from portal.accounts.models import Dependent, User
from portal.booking import attention
from portal.booking.models import (
    Coupon,
    IndividualBooking,
    MasterBooking,
    Reschedule,
    counts_in_total,
)
from portal.catalog.models import Clinic, Provider, Service
from portal.config import policy
from portal.db import column_rows, contains_text, db, utcnow
from portal.domain.states import BookingStatus, VisitStatus
from portal.pagination import Order, keyset_page
from portal.payments.models import Payment

VISIT_ORDER = (
    Order(MasterBooking.created_at, descending=True),
    Order(MasterBooking.id, descending=True),
)
NEWEST_FIRST = (MasterBooking.created_at.desc(), MasterBooking.id.desc())  # VISIT_ORDER in SQL
COUPON_ORDER = (Order(Coupon.created_at, descending=True), Order(Coupon.id, descending=True))
OPEN_VISIT = (VisitStatus.DRAFT, VisitStatus.PENDING_PAYMENT)
UPCOMING_VISIT = (VisitStatus.CONFIRMED, VisitStatus.PARTIALLY_CANCELLED)
# A visit's items in their own order (``MasterBooking.items`` says it to the ORM).
ITEM_ORDER = (IndividualBooking.start_at, IndividualBooking.id)
# A follow-up or lab test may refer to an earlier booking that really happened (or will).
REFERABLE = (BookingStatus.CONFIRMED, BookingStatus.STARTED, BookingStatus.COMPLETED)
# An item that will not happen (again): not what makes a visit upcoming.
_OVER = (BookingStatus.CANCELLED, BookingStatus.EXPIRED, BookingStatus.COMPLETED)

# What a visits list shows of each row, loaded with the page (no per-row queries), and
# no more: a row shows its number, status, who it is for, its items' services, first
# start (in its clinic's zone) and total. Not its items' providers, its clinics' hours or
# its services' specializations (the relations' own eager loads are turned off here),
# nor the columns only a visit's own page reads.
_ITEMS = joinedload(MasterBooking.items)
VISIT_ROW = (
    load_only(
        MasterBooking.id,
        MasterBooking.number,
        MasterBooking.patient_id,
        MasterBooking.dependent_id,
        MasterBooking.status,
        MasterBooking.hold_expires_at,
        MasterBooking.created_at,
    ),
    _ITEMS.load_only(
        IndividualBooking.id,
        IndividualBooking.master_id,
        IndividualBooking.service_id,
        IndividualBooking.clinic_id,
        IndividualBooking.start_at,
        IndividualBooking.status,
        IndividualBooking.total,
    ),
    _ITEMS.lazyload(IndividualBooking.providers),
    _ITEMS.joinedload(IndividualBooking.clinic).load_only(Clinic.timezone).lazyload(Clinic.hours),
    _ITEMS.joinedload(IndividualBooking.service)
    .load_only(Service.name)
    .lazyload(Service.specialization),
    joinedload(MasterBooking.dependent),
)
# What a visit's own page shows, loaded with it: who it is for, its items with their
# service and clinic (not the clinic's hours) and providers, its payments and their
# attempts (the timeline): the visit joined with all of these, one query however many.
# The joined rows multiply (items x providers x payments x attempts): a visit holds a
# handful of each (three items of two providers, paid at the fourth try with four
# attempts a try, are 3 x 2 x 4 x 4 = 96 rows), and the ORM keeps each row once in its
# collection. No policy bounds the attempts (a repeated pay step adds a retry line); the
# join multiplies them by the items and their providers, a few at most. The attempts had
# a query of their own (a selectin load): that query and its loader cost a paid visit's
# confirmation about a quarter of its CPU (session 20, docs/performance.md).
_PAGE_ITEMS = joinedload(MasterBooking.items)
VISIT_PAGE = (
    joinedload(MasterBooking.dependent),
    _PAGE_ITEMS.joinedload(IndividualBooking.service),
    _PAGE_ITEMS.joinedload(IndividualBooking.clinic).lazyload(Clinic.hours),
    _PAGE_ITEMS.joinedload(IndividualBooking.providers),
    joinedload(MasterBooking.payments).joinedload(Payment.attempts),
)


# What a visit's notices say (notify.tasks): who it is for, its items with their service,
# clinic (not its hours) and providers: VISIT_PAGE without the payments. One query where
# lazy loads took six (the items, their providers, services, clinics, clinics' hours).
# With the patient and each provider's login: every notice is written in its reader's
# language and addressed to them, and each of those looked its user up (three a booking).
VISIT_NOTICE = (
    joinedload(MasterBooking.patient),
    joinedload(MasterBooking.dependent),
    _PAGE_ITEMS.joinedload(IndividualBooking.service),
    _PAGE_ITEMS.joinedload(IndividualBooking.clinic).lazyload(Clinic.hours),
    _PAGE_ITEMS.joinedload(IndividualBooking.providers).joinedload(Provider.user),
)


@cache
def _visit_notice():
    return (
        sa.select(MasterBooking)
        .where(MasterBooking.id == sa.bindparam("visit_id"))
        .options(*VISIT_NOTICE)
    )


def visit_for_notice(visit_id):
    """The visit with what its notices say loaded with it (``VISIT_NOTICE``), or None."""
    return db.session.scalars(_visit_notice(), {"visit_id": visit_id}).unique().one_or_none()


@cache
def _visit_page():
    """Built once (a statement with these loader options costs as much CPU to build and
    key as to run): one visit with what its page shows (``VISIT_PAGE``)."""
    return (
        sa.select(MasterBooking)
        .where(MasterBooking.id == sa.bindparam("visit_id"))
        .options(*VISIT_PAGE)
    )


def visit_for_page(visit_id):
    """The visit with what its own page shows loaded with it (``VISIT_PAGE``), or None.
    Whose it is is the caller's check (``portal.web.security.owned_or_404``)."""
    return db.session.scalars(_visit_page(), {"visit_id": visit_id}).unique().one_or_none()


# A list of every patient's visits names each one's patient; one patient's own list does
# not join them (the same row for every visit: one identity-map look-up, no query).
WITH_PATIENT = (joinedload(MasterBooking.patient),)


@dataclass(frozen=True, slots=True)
class VisitRow:
    """One line of a patient's visits list, read as columns: its number, status, who it
    is for, its items' services, its first item's start (in that item's clinic's zone)
    and its total (the items that count, ``counts_in_total``)."""

    id: int
    number: str
    status: str
    created_at: datetime
    for_name: str
    service_names: str = ""
    first_start: datetime | None = None
    first_timezone: str | None = None
    subtotal: int = 0  # what its appointments still on cost (an unpaid visit's "to pay")
    paid: int = 0  # paid for its appointments (wallet, online, desk): no reschedule fee
    refunded: int = 0  # of that, refunded: the refunds processed
    refund_pending: int = 0  # and on its way (pending at the gateway, or being retried)

    @property
    def is_open(self):
        """Unpaid yet (draft or awaiting payment): the list states what it costs."""
        return self.status in OPEN_VISIT


def patient_visits_page(
    patient_id, *, status=None, after=None, before=None, per_page=20, refunds_done=None
):
    """A patient's own visits, newest first, as ``VisitRow`` values: two statements (the
    page's visits with whom each is for, then their items with service and clinic zone),
    however many rows. Loading the same page as the ORM's visits, items, clinics and
    services cost 8.4 of the page's 27 million instructions (docs/performance.md).
    Whom a visit is for is ``MasterBooking.for_name``'s rule, in SQL: the dependent's
    name, else the account holder's; its total is ``counts_in_total``'s. What it states
    of money is the visit page's (docs/booking.md "What My visits shows"): an unpaid
    visit, what it costs (``subtotal``); any other, what was paid for its appointments
    and how much of that was refunded (the items' ``paid_amount`` and
    ``refunded_amount``: a cancelled visit is no longer ₹0). ``refunds_done``: SQL for
    the part of an item's ``refunded_amount`` already processed (the refunds'
    package's, ``refunds.queries.item_refunds_done``), read with the items: the row
    shows processed and on-its-way apart (without it all of it counts as processed)."""
    page = keyset_page(
        _patient_visits(bool(status)),
        VISIT_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        scalars=False,
        params={"patient_id": patient_id, "status": status},
    )
    if not page.items:
        return page
    items = {}
    for row in column_rows(_visit_items(refunds_done), {"ids": [v.id for v in page.items]}):
        items.setdefault(row.master_id, []).append(row)
    rows = []
    for visit in page.items:
        mine = items.get(visit.id, ())
        # The first appointment still on (a cancelled first item is not the visit's
        # first appointment any more); the first of all when every one is off.
        first = next((i for i in mine if counts_in_total(i.status)), mine[0] if mine else None)
        rows.append(
            VisitRow(
                id=visit.id,
                number=visit.number,
                status=visit.status,
                created_at=visit.created_at,
                for_name=visit.for_name,
                service_names=", ".join(item.service_name for item in mine),
                first_start=first.start_at if first else None,
                first_timezone=first.timezone if first else None,
                subtotal=sum(item.total for item in mine if counts_in_total(item.status)),
                paid=sum(item.paid_amount for item in mine),
                refunded=sum(item.refunds_done for item in mine),
                refund_pending=sum(item.refunded_amount - item.refunds_done for item in mine),
            )
        )
    return replace(page, items=rows)


@cache
def _patient_visits(with_status):
    """The visits of a patient's list (built once, on bind parameters; keyset_page adds
    the order, the cursor and the limit)."""
    query = (
        sa.select(
            MasterBooking.id,
            MasterBooking.number,
            MasterBooking.status,
            MasterBooking.created_at,
            sa.func.coalesce(Dependent.name, User.name).label("for_name"),
        )
        .join(User, User.id == MasterBooking.patient_id)
        .outerjoin(Dependent, Dependent.id == MasterBooking.dependent_id)
        .where(MasterBooking.patient_id == sa.bindparam("patient_id"))
    )
    if with_status:
        query = query.where(MasterBooking.status == sa.bindparam("status"))
    return query


@cache
def _visit_items(refunds_done=None):
    """The items of a page of visits, in each visit's own order (start, then id), each
    with how much of its refunded amount is processed (``refunds_done``: an SQL
    expression on the item, built once by its caller; else all of it)."""
    done = IndividualBooking.refunded_amount if refunds_done is None else refunds_done
    return (
        sa.select(
            IndividualBooking.master_id,
            IndividualBooking.start_at,
            IndividualBooking.status,
            IndividualBooking.total,
            IndividualBooking.paid_amount,
            IndividualBooking.refunded_amount,
            done.label("refunds_done"),
            Service.name.label("service_name"),
            Clinic.timezone,
        )
        .join(Service, Service.id == IndividualBooking.service_id)
        .join(Clinic, Clinic.id == IndividualBooking.clinic_id)
        .where(IndividualBooking.master_id.in_(sa.bindparam("ids", expanding=True)))
        .order_by(IndividualBooking.master_id, *ITEM_ORDER)
    )


def attention_clause(now, window):
    """SQL for "needs attention" (the rules are ``portal.booking.attention``'s)."""
    return attention.attention_clause(now, window)


def _search(text):
    return sa.or_(
        contains_text(MasterBooking.number, text),
        MasterBooking.patient_id.in_(
            sa.select(User.id).where(
                sa.or_(contains_text(User.name, text), contains_text(User.email, text))
            )
        ),
    )


def visits_page(
    *,
    patient_id=None,
    status=None,
    needs_attention=None,
    search=None,
    after=None,
    before=None,
    per_page=20,
    count=False,
):
    """Visits newest first. ``status``: one status or several; ``search``: visit number,
    patient name or email (case-insensitive); ``needs_attention``: True / False / None."""
    query = sa.select(MasterBooking)
    if patient_id is not None:
        query = query.where(MasterBooking.patient_id == patient_id)
    if status:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(MasterBooking.status.in_(statuses))
    if needs_attention is not None:
        clause = attention_clause(utcnow(), policy().attention_window)
        query = query.where(clause if needs_attention else sa.not_(clause))
    text = " ".join((search or "").split()).lower()
    if text:
        query = query.where(_search(text))
    return keyset_page(
        query,
        VISIT_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        count=count,
        options=VISIT_ROW + (() if patient_id is not None else WITH_PATIENT),
    )


def _item_count():
    """A visit's item count, for a statement that selects visits (a correlated subquery)."""
    return (
        sa.select(sa.func.count(IndividualBooking.id))
        .where(IndividualBooking.master_id == MasterBooking.id)
        .scalar_subquery()
        .label("item_count")
    )


@cache
def _open_and_upcoming(limit):
    """Built once (building it and its cache key cost as much CPU as running it): the
    patient's newest ``limit`` unpaid visits and soonest ``limit`` upcoming ones, as
    columns: each with its dependent's name (whom it is for, when not the account
    holder: an outer join), its item count and the start and clinic zone of its first item
    (an unpaid visit) or of its next item still to happen (an upcoming one): correlated
    subqueries over the visit's items in their own order (start, then id).

    Upcoming means paid with an item not yet over (``end_at`` after ``:now``) and not
    cancelled, expired or completed: a visit whose appointment passed unmarked (a no-show)
    is not upcoming any more."""

    def first_item(column, *where):
        return (
            sa.select(column)
            .select_from(IndividualBooking)
            .join(Clinic, Clinic.id == IndividualBooking.clinic_id)
            .where(IndividualBooking.master_id == MasterBooking.id, *where)
            .order_by(*ITEM_ORDER)
            .limit(1)
            .scalar_subquery()
        )

    ahead = (
        IndividualBooking.status.not_in(_OVER),
        IndividualBooking.end_at > sa.bindparam("now"),
    )
    next_start = first_item(IndividualBooking.start_at, *ahead)
    unpaid = (
        sa.select(MasterBooking.id)
        .where(
            MasterBooking.patient_id == sa.bindparam("patient_id"),
            MasterBooking.status.in_(OPEN_VISIT),
        )
        .order_by(*NEWEST_FIRST)
        .limit(limit)
        .subquery()
    )
    upcoming = (
        sa.select(MasterBooking.id)
        .where(
            MasterBooking.patient_id == sa.bindparam("patient_id"),
            MasterBooking.status.in_(UPCOMING_VISIT),
            next_start.is_not(None),
        )
        .order_by(next_start, MasterBooking.id)
        .limit(limit)
        .subquery()
    )

    def rows(ids, *where):
        return (
            sa.select(
                MasterBooking.id,
                MasterBooking.number,
                MasterBooking.status,
                MasterBooking.hold_expires_at,
                MasterBooking.created_at,
                Dependent.name.label("dependent_name"),
                _item_count(),
                first_item(IndividualBooking.start_at, *where).label("first_start"),
                first_item(Clinic.timezone, *where).label("first_timezone"),
            )
            .outerjoin(Dependent, Dependent.id == MasterBooking.dependent_id)
            .where(MasterBooking.id.in_(sa.select(ids.c.id)))
        )

    return sa.union_all(rows(unpaid), rows(upcoming, *ahead))


def open_and_upcoming_visits(patient_id, limit=5):
    """``(unpaid, upcoming)``: the patient's newest ``limit`` unpaid visits, newest first,
    and soonest ``limit`` upcoming ones, soonest first (``_open_and_upcoming``), read in
    one query as rows (``id``, ``number``, ``status``, ``hold_expires_at``,
    ``created_at``, ``dependent_name``, ``item_count``, ``first_start``,
    ``first_timezone``: what the patient's home shows; ``dependent_name`` is None for the
    account holder's own visit; an upcoming row's ``first_start`` is its next appointment).
    Loading them as the ORM's visits with their items cost a fifth of the page's CPU."""
    rows = column_rows(_open_and_upcoming(limit), {"patient_id": patient_id, "now": utcnow()})
    unpaid = [v for v in rows if v.status in OPEN_VISIT]
    upcoming = [v for v in rows if v.status in UPCOMING_VISIT]
    unpaid.sort(key=lambda v: (v.created_at, v.id), reverse=True)
    upcoming.sort(key=lambda v: (v.first_start, v.id))
    return unpaid, upcoming


@cache
def _newest_open(any_person, holder, with_count):
    """The newest unpaid visit's statement, built once per shape (a hold and the book
    page read it): for anyone, for the account holder, or for a dependent; the visit
    itself, or (for the book page) its id, number and person as columns with its item
    count."""
    shown = (MasterBooking.id, MasterBooking.number, MasterBooking.dependent_id, _item_count())
    query = sa.select(*(shown if with_count else (MasterBooking,))).where(
        MasterBooking.patient_id == sa.bindparam("patient_id"),
        MasterBooking.status.in_(OPEN_VISIT),
    )
    if not any_person:
        query = query.where(
            MasterBooking.dependent_id.is_(None)
            if holder
            else MasterBooking.dependent_id == sa.bindparam("dependent_id")
        )
    return query.order_by(*NEWEST_FIRST).limit(1)


def _newest_open_row(patient_id, dependent_id, any_person, with_count):
    params = {"patient_id": patient_id}
    if not any_person and dependent_id is not None:
        params["dependent_id"] = dependent_id
    query = _newest_open(any_person, dependent_id is None, with_count)
    if with_count:  # columns, for the book page
        rows = column_rows(query, params)
        return rows[0] if rows else None
    return db.session.execute(query, params).first()


def newest_open_visit(patient_id, dependent_id=None, *, any_person=False):
    """The account's newest unpaid visit for this person (``dependent_id`` None = the
    account holder), where a new item goes; ``any_person``: for whoever it is."""
    row = _newest_open_row(patient_id, dependent_id, any_person, False)
    return row[0] if row else None


def newest_open_visit_and_count(patient_id, dependent_id=None, *, any_person=False):
    """``(newest_open_visit, item_count of it)`` in one query, the visit as a row of its
    ``id``, ``number`` and ``dependent_id``; ``(None, 0)`` when there is none (what the
    book page says: "this joins your visit V… with 2 items")."""
    row = _newest_open_row(patient_id, dependent_id, any_person, True)
    return (row, row.item_count) if row else (None, 0)


@cache
def _visits_named():
    """Built once: the visit (id, number) of each reschedule, booking, visit and payment
    named, as one statement of four parts (``visits_named_by``)."""

    def part(kind, key, join=None):
        query = sa.select(
            sa.literal(kind).label("kind"), key.label("ref"), MasterBooking.id, MasterBooking.number
        )
        if join is not None:
            query = query.join(MasterBooking, join)
        return query.where(
            MasterBooking.patient_id == sa.bindparam("patient_id"),
            key.in_(sa.bindparam(f"{kind}_ids", expanding=True)),
        )

    return sa.union_all(
        part("reschedule", Reschedule.id, MasterBooking.id == Reschedule.visit_id),
        part("booking", IndividualBooking.id, MasterBooking.id == IndividualBooking.master_id),
        part("visit", MasterBooking.id),
        # Money used at checkout and given back from it: its payment's visit.
        part("payment", Payment.id, MasterBooking.id == Payment.master_id),
    )


NAMED_KINDS = ("reschedule", "booking", "visit", "payment")


def visits_named_by(patient_id, references):
    """``{(reference_type, reference_id): (visit id, visit number)}`` for the patient's
    own reschedules, bookings, visits and payments among ``references`` (pairs as ledger
    transactions store them, the id a string): the wallet's lines name their visit. One
    statement however many lines; none when no line names one."""
    ids = {kind: set() for kind in NAMED_KINDS}
    for kind, ref in references:
        if kind in ids and ref and str(ref).isdigit():
            ids[kind].add(int(ref))
    if not any(ids.values()):
        return {}
    params = {"patient_id": patient_id}
    params.update({f"{kind}_ids": sorted(found) for kind, found in ids.items()})
    rows = db.session.execute(_visits_named(), params)
    return {(row.kind, str(row.ref)): (row.id, row.number) for row in rows}


def reserved_wallet(patient_id, visit_id):
    """What the patient's visit awaiting payment holds reserved from the wallet (0 when it
    is not theirs or not awaiting payment)."""
    return (
        db.session.scalar(
            sa.select(MasterBooking.wallet_applied).where(
                MasterBooking.id == visit_id,
                MasterBooking.patient_id == patient_id,
                MasterBooking.status == VisitStatus.PENDING_PAYMENT,
            )
        )
        or 0
    )


def referable_bookings(patient_id, before=None, limit=50, *, dependent_id=None, any_person=True):
    """Earlier bookings of the account a follow-up or lab test may refer to, newest first;
    ``before``: only those starting before then. ``any_person=False``: only the person's
    (``dependent_id``, None for the account holder), as the patient's book page lists them
    (a referral must be the same person's)."""
    query = (
        sa.select(IndividualBooking)
        .join(MasterBooking)
        .where(MasterBooking.patient_id == patient_id, IndividualBooking.status.in_(REFERABLE))
        .options(
            joinedload(IndividualBooking.service),
            joinedload(IndividualBooking.clinic),
            joinedload(IndividualBooking.visit).joinedload(MasterBooking.dependent),
            joinedload(IndividualBooking.visit).joinedload(MasterBooking.patient),
        )
    )
    if before is not None:
        query = query.where(IndividualBooking.start_at < before)
    if not any_person:
        whose = MasterBooking.dependent_id
        query = query.where(whose.is_(None) if dependent_id is None else whose == dependent_id)
    return db.session.scalars(
        query.order_by(IndividualBooking.start_at.desc(), IndividualBooking.id.desc()).limit(limit)
    ).all()


def coupons_page(*, active=None, after=None, before=None, per_page=50):
    query = sa.select(Coupon)
    if active is not None:
        query = query.where(Coupon.active.is_(bool(active)))
    return keyset_page(query, COUPON_ORDER, after=after, before=before, per_page=per_page)


# --- a patient's own record (portal.privacy: their data download, closing the account) --

LIVE_ITEM = (BookingStatus.SCHEDULED, BookingStatus.CONFIRMED, BookingStatus.STARTED)


def patient_record(patient_id):
    """Every visit of the patient, oldest first, with its coupon (joined: no statement
    more), items (service, clinic, providers) and payments loaded up front: a handful of
    statements however many visits (``selectinload``). For the patient's data download,
    which lists everything."""
    from sqlalchemy.orm import joinedload, selectinload

    return db.session.scalars(
        sa.select(MasterBooking)
        .where(MasterBooking.patient_id == patient_id)
        .order_by(MasterBooking.created_at, MasterBooking.id)
        .options(
            joinedload(MasterBooking.coupon),
            selectinload(MasterBooking.dependent),
            selectinload(MasterBooking.payments),
            selectinload(MasterBooking.items).selectinload(IndividualBooking.service),
            selectinload(MasterBooking.items).selectinload(IndividualBooking.clinic),
            selectinload(MasterBooking.items).selectinload(IndividualBooking.providers),
        )
    ).all()


def invoiced_names(patient_id):
    """The names the patient's invoices were issued with, as rows (``dependent_id``,
    ``billed_to_name``, ``billed_for_name``): what the account holder and the person each
    visit was for were called when it was confirmed (a closure looks for them in what was
    sent to others about the visits, a name changed since included)."""
    return db.session.execute(
        sa.select(
            MasterBooking.dependent_id, MasterBooking.billed_to_name, MasterBooking.billed_for_name
        )
        .where(MasterBooking.patient_id == patient_id, MasterBooking.billed_to_name.is_not(None))
        .distinct()
    ).all()


def open_business(patient_id):
    """What a patient still has running, by visit number: (visits with an appointment held,
    confirmed or started, at any time; visits waiting for payment, a payment link or a
    reschedule fee open). Closing the account waits until both are empty. An open visit
    whose last appointment was taken out (``visits.remove_item``: DRAFT, nothing held, owed
    or to cancel) is not waiting for anything: counted, it refused a closure or a
    deactivation for good (review rv_late)."""
    from portal.booking.models import Reschedule
    from portal.domain.states import PaymentStatus, RescheduleStatus

    mine = sa.select(MasterBooking.id).where(MasterBooking.patient_id == patient_id)
    live = db.session.scalars(
        sa.select(MasterBooking.number)
        .join(IndividualBooking, IndividualBooking.master_id == MasterBooking.id)
        .where(MasterBooking.patient_id == patient_id, IndividualBooking.status.in_(LIVE_ITEM))
        .distinct()
        .order_by(MasterBooking.number)
    ).all()
    unpaid = db.session.scalars(
        sa.select(MasterBooking.number)
        .where(
            MasterBooking.patient_id == patient_id,
            sa.or_(
                sa.and_(MasterBooking.status.in_(OPEN_VISIT), MasterBooking.items.any()),
                MasterBooking.id.in_(
                    sa.select(Payment.master_id).where(
                        Payment.master_id.in_(mine), Payment.status == PaymentStatus.PENDING
                    )
                ),
                MasterBooking.id.in_(
                    sa.select(Reschedule.visit_id).where(
                        Reschedule.visit_id.in_(mine),
                        Reschedule.status == RescheduleStatus.PENDING_PAYMENT,
                    )
                ),
            ),
        )
        .order_by(MasterBooking.number)
    ).all()
    return [n or "—" for n in live], [n or "—" for n in unpaid]
