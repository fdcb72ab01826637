"""Booking use cases: build a visit, hold slots, price, coupon, checkout, payment links,
desk payments, confirmation callbacks, lists and receipts.

Each public function that changes something runs one transaction, writes its audit row and
commits itself; a broken rule raises ``BookingError(message, field)`` (``SlotUnavailable``
for a taken slot, ``PaymentError`` for a payment that cannot be verified or started) and
nothing is committed. A missing object, or someone else's, raises ``NotFound``; a role
that may not act raises ``PermissionDenied`` (both from ``portal.accounts.service``).

CONTRACT CHANGES (for the web pages):
- ``checkout(...)`` returns ``CheckoutResult(payment, redirect_url, form_action,
  form_fields)``. With the sandbox, ``redirect_url`` is a GET-able checkout page. With real
  Razorpay the hosted checkout needs a POST: ``redirect_url`` is then ``form_action`` and
  the page must render ``form_fields`` as hidden inputs of a form posting there
  (``result.needs_post``). ``redirect_url is None`` still means "paid, nothing to do".
  ``callback_url`` is keyword-or-positional and required.
- Checkout again on a visit already awaiting payment returns the same order (a retry)
  while fewer than 5 attempts exist; a different ``wallet_paise`` abandons the old order
  and makes a new one.
- Extra: ``set_meet_link(actor, item_id, url)``, ``complete_link_callback(params)``,
  ``create_coupon / update_coupon / list_coupons`` (admin), ``attempts(payment)``,
  ``Quote`` fields as documented in ``portal.booking.pricing``; ``list_visits`` takes
  ``per_page`` and returns Flask-SQLAlchemy's ``Pagination``.
- ``add_item`` refuses a patient-supplied ``meet_link`` (providers/admins set it).
"""
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from portal.accounts.models import ADMIN, PATIENT, PROVIDER, Dependent, User
from portal.audit.service import record
from portal.booking import claims, coupons, lifecycle, postings
from portal.booking.coupons import create_coupon, list_coupons, update_coupon  # noqa: F401
from portal.booking.errors import (BookingError, NotFound, PaymentError,  # noqa: F401
                                   PermissionDenied, SlotUnavailable)
from portal.booking.models import (CONFIRMED, DESK_CHANNEL, DRAFT, LIVE_ITEM_STATUSES,
                                   ONLINE_CHANNEL, PENDING_PAYMENT, IndividualBooking,
                                   MasterBooking, patient_subject, provider_subject)
from portal.config import setting
from portal.booking.pricing import Quote, build_quote
from portal.catalog.models import FOLLOW_UP, LAB_TEST, Clinic, Provider, Service
from portal.db import utcnow
from portal.domain import meetlinks, pricing, schedule, slots
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.gateway import GatewayError, get_payin
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.payments import service as payments
from portal.payments.models import DESK, LINK, ORDER, PENDING, SUCCESSFUL, WALLET, Payment

MSG_SPECIALIZATION = "The service's specialization must be one of the provider's"
MSG_NOT_OFFERED = "{name} does not offer this service at this clinic"
MSG_PATIENT_BUSY = "{name} already has an appointment at that time"
MSG_ONE_PERSON = "A visit is for one person; start a new visit for someone else"
MSG_VISIT_CLOSED = "This visit is already paid; items can no longer be changed"
MSG_ONLY_UNPAID = "Only unpaid items can be removed"
MSG_REFERRAL_OWNER = "The referral must be a booking of the same patient"
MSG_REFERRAL_KIND = "Only follow-ups and lab tests can refer to an earlier booking"
MSG_REFERRAL_EARLIER = "The referral must be an earlier booking"
MSG_MEET_LINK_OFFLINE = "Meeting links are only for online services"
MSG_MEET_LINK_WHO = "The provider or the clinic adds the meeting link"
MSG_EMPTY = "Add at least one appointment first"
MSG_HOLD_EXPIRED = "Your hold on these slots has expired; please choose them again"
MSG_TOO_MANY_ATTEMPTS = "Too many payment attempts; please contact the clinic"
MSG_LINK_TOO_LATE = ("The appointment is too soon for a payment link; "
                     "take the payment at the desk")
MSG_NOTHING_TO_PAY = "Nothing is left to pay for this visit"
MSG_RECEIPT_NO = "Enter the receipt number"
MSG_GATEWAY_DOWN = "Payments are unavailable right now; please try again in a few minutes"
MSG_BAD_SIGNATURE = "We could not verify this payment"


# --- small helpers -------------------------------------------------------------------------

class _Transaction:
    """Roll back on any error, so a failed use case leaves nothing behind."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            db.session.rollback()
        return False


def _role(actor):
    return getattr(actor, "role", None)


def _get(model, obj_id, what):
    obj = db.session.get(model, obj_id) if obj_id is not None else None
    if obj is None:
        raise NotFound(what)
    return obj


def _visit_for(actor, visit_id, lock=True):
    """The visit (locked), if the actor may act on it: its patient or an admin."""
    visit = lifecycle.lock_visit(visit_id) if lock else db.session.get(MasterBooking, visit_id)
    if visit is None:
        raise NotFound("visit")
    if _role(actor) == ADMIN or (_role(actor) == PATIENT and visit.patient_id == actor.id):
        return visit
    raise NotFound("visit")


def _require_admin(actor):
    if _role(actor) != ADMIN:
        raise PermissionDenied("Only administrators can do this.")


def _check_person(actor, patient_id, dependent_id):
    """Patients book for themselves and their dependents; admins for any patient."""
    if _role(actor) == PATIENT:
        if patient_id != actor.id:
            raise NotFound("patient")
    elif _role(actor) != ADMIN:
        raise PermissionDenied("Only patients and administrators can book.")
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role != PATIENT or not patient.active:
        raise NotFound("patient")
    dependent = None
    if dependent_id is not None:
        dependent = db.session.get(Dependent, dependent_id)
        if dependent is None or dependent.guardian_id != patient_id:
            raise NotFound("dependent")
    return patient, dependent


def _aware(value, name):
    if getattr(value, "tzinfo", None) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


def _snapshot(item):
    return {"id": item.id, "service_id": item.service_id, "clinic_id": item.clinic_id,
            "start_at": item.start_at.isoformat(), "end_at": item.end_at.isoformat(),
            "providers": [p.id for p in item.providers], "status": item.status,
            "total": item.total}


# --- building a visit ----------------------------------------------------------------------

def _check_meet_link(actor, service, meet_link):
    """Decision (docs/booking.md): the provider or an operator supplies the link; a patient
    booking an online service leaves it empty and the provider adds it before the start."""
    if meet_link in (None, ""):
        return None
    if not service.is_online:
        raise BookingError(MSG_MEET_LINK_OFFLINE, field="meet_link")
    if _role(actor) not in (ADMIN, PROVIDER):
        raise BookingError(MSG_MEET_LINK_WHO, field="meet_link")
    policy = lifecycle.policy()
    extra = setting("MEET_LINK_DOMAINS")
    try:
        return meetlinks.validate_meet_link(meet_link, policy, extra)
    except meetlinks.MeetLinkError as exc:
        raise BookingError(str(exc), field="meet_link") from None


def _check_referral(referral_id, service, patient_id, dependent_id, start_at):
    if referral_id is None:
        return None
    referral = db.session.get(IndividualBooking, referral_id)
    if referral is None or referral.visit.patient_id != patient_id or \
            referral.visit.dependent_id != dependent_id:
        raise BookingError(MSG_REFERRAL_OWNER, field="referral_id")
    if service.kind not in (FOLLOW_UP, LAB_TEST):
        raise BookingError(MSG_REFERRAL_KIND, field="referral_id")
    if referral.start_at >= start_at or referral.status in ("CANCELLED", "EXPIRED"):
        raise BookingError(MSG_REFERRAL_EARLIER, field="referral_id")
    return referral


def _check_providers(service, clinic, providers):
    for p in providers:
        if service.specialization_id not in {s.id for s in p.specializations}:
            raise BookingError(MSG_SPECIALIZATION, field="provider_ids")
        if service.id not in {s.id for s in p.services} or \
                clinic.id not in {c.id for c in p.clinics} or not p.active:
            raise BookingError(MSG_NOT_OFFERED.format(name=p.display_name), field="provider_ids")
    if not service.active or not clinic.active:
        raise BookingError("This service is not available at that clinic", field="service_id")


def _clear_stale_holds(subjects, start, end, keep_visit_id=None):
    """Holds whose time ran out but the sweep has not reached yet must not block anyone."""
    from portal.booking.reschedule import release_stale_hold
    now = utcnow()
    for claim in claims.conflicts(subjects, start, end):
        if claim.reschedule_id is not None:  # a move's held time whose checkout ran out
            release_stale_hold(claim, now)
            continue
        visit = claim.booking.visit
        if visit.id != keep_visit_id and lifecycle.is_hold_stale(visit, now):
            lifecycle.expire_if_stale(visit.id, now)


def _check_slot(service, clinic, providers, start_at, subjects, person_name, visit_id):
    end_at = start_at + timedelta(minutes=service.duration_minutes)
    _clear_stale_holds(subjects, start_at, end_at, keep_visit_id=visit_id)
    messages = _catalog_check(providers, service, clinic, start_at)
    if messages:
        if messages[0] == slots.MSG_TAKEN:
            raise SlotUnavailable()
        raise BookingError(messages[0], field="start_at")
    taken = claims.conflicts(subjects, start_at, end_at)
    if any(c.subject.startswith("provider:") for c in taken):
        raise SlotUnavailable()
    if taken:
        raise SlotUnavailable(MSG_PATIENT_BUSY.format(name=person_name))
    return end_at


def _catalog_check(providers, service, clinic, start_at):
    from portal.catalog.service import check_booking_slot
    return check_booking_slot(providers, service, clinic, start_at)


def add_item(actor, *, patient_id, service_id, provider_ids, clinic_id, start_at,
             dependent_id=None, visit_id=None, referral_id=None, meet_link=None):
    """Hold a slot: a SCHEDULED booking with live claims for every provider and for the
    person seen, in a new DRAFT visit (``visit_id=None``) or an open one. The visit's hold
    runs ``BOOKING_HOLD_MINUTES`` (15) from now."""
    _aware(start_at, "start_at")
    with _Transaction(), claims.serialized():
        patient, dependent = _check_person(actor, patient_id, dependent_id)
        visit = None
        if visit_id is not None:
            visit = _visit_for(actor, visit_id)
            if not visit.is_open:
                raise BookingError(MSG_VISIT_CLOSED)
            if (visit.patient_id, visit.dependent_id) != (patient_id, dependent_id):
                raise BookingError(MSG_ONE_PERSON, field="dependent_id")
        service = _get(Service, service_id, "service")
        clinic = _get(Clinic, clinic_id, "clinic")
        ids = list(dict.fromkeys(int(p) for p in (provider_ids or [])))
        if not ids:
            raise BookingError("Choose a provider", field="provider_ids")
        providers = [_get(Provider, pid, "provider") for pid in ids]
        _check_providers(service, clinic, providers)
        link = _check_meet_link(actor, service, meet_link)
        _check_referral(referral_id, service, patient_id, dependent_id, start_at)
        person = patient_subject(patient_id, dependent_id)
        subjects = [provider_subject(p.id) for p in providers] + [person]
        end_at = _check_slot(service, clinic, providers, start_at, subjects,
                             dependent.name if dependent else patient.name,
                             visit.id if visit else None)
        if visit is None:
            visit = MasterBooking(patient_id=patient_id, dependent_id=dependent_id,
                                  created_by_id=actor.id, status=DRAFT,
                                  channel=DESK_CHANNEL if _role(actor) == ADMIN
                                  else ONLINE_CHANNEL)
            db.session.add(visit)
            db.session.flush()
            visit.number = f"V{visit.id:06d}"
        elif visit.status == PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "item added", actor)
        price = pricing.price_item(service.fee_paise, service.taxable, lifecycle.policy())
        item = IndividualBooking(
            service=service, clinic=clinic, start_at=start_at, end_at=end_at,
            status=str(BookingStatus.SCHEDULED), fee=price.fee, platform_fee=price.platform_fee,
            gst=price.gst, total=price.total, taxable=price.taxable_value,
            fee_taxed=price.fee_taxable, referral_id=referral_id, meet_link=link)
        item.providers = providers
        visit.items.append(item)
        claims.add_claims(item, subjects)
        visit.hold_expires_at = utcnow() + lifecycle.hold_lifetime()
        _refresh_discount(visit)
        lifecycle.refresh_status(visit)
        record(actor, "booking.hold", "visit", visit.id, after=_snapshot(item))
        claims.commit_claims()
    return item


def remove_item(actor, item_id):
    """Take an unpaid item out of its visit and free its slot."""
    with _Transaction():
        item = db.session.get(IndividualBooking, item_id)
        if item is None:
            raise NotFound("booking")
        visit = _visit_for(actor, item.master_id)
        if item.status != BookingStatus.SCHEDULED or not visit.is_open:
            raise BookingError(MSG_ONLY_UNPAID)
        if visit.status == PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "item removed", actor)
        before = _snapshot(item)
        visit.items.remove(item)
        db.session.flush()
        _refresh_discount(visit)
        lifecycle.refresh_status(visit)
        record(actor, "booking.remove", "visit", visit.id, before=before)
        db.session.commit()


def set_meet_link(actor, item_id, url):
    """The provider of an online booking (or an admin) sets or changes its meeting link."""
    with _Transaction():
        item = db.session.get(IndividualBooking, item_id)
        if item is None:
            raise NotFound("booking")
        if _role(actor) != ADMIN and not (
                _role(actor) == PROVIDER and actor.id in {p.user_id for p in item.providers}):
            raise NotFound("booking")
        before = item.meet_link
        item.meet_link = _check_meet_link(actor, item.service, url)
        record(actor, "booking.meet_link", "booking", item.id, before={"meet_link": before},
               after={"meet_link": item.meet_link})
        db.session.commit()
    return item


# --- coupons ---------------------------------------------------------------------------------

def _refresh_discount(visit):
    visit.discount = quote(visit).discount if visit.coupon is not None else 0


def apply_coupon(actor, visit_id, code):
    with _Transaction():
        visit = _visit_for(actor, visit_id)
        if not visit.is_open:
            raise BookingError(MSG_VISIT_CLOSED, field="coupon")
        coupon = coupons.find(code)
        message = coupons.check(coupon, visit.patient_id, visit_id=visit.id)
        if message:
            raise BookingError(message, field="coupon")
        if visit.status == PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "coupon changed", actor)
        visit.coupon = coupon
        _refresh_discount(visit)
        lifecycle.refresh_status(visit)
        record(actor, "visit.coupon", "visit", visit.id,
               after={"coupon": coupon.code, "discount": visit.discount})
        db.session.commit()
    return visit


def remove_coupon(actor, visit_id):
    with _Transaction():
        visit = _visit_for(actor, visit_id)
        if not visit.is_open:
            raise BookingError(MSG_VISIT_CLOSED, field="coupon")
        if visit.status == PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "coupon removed", actor)
        before = visit.coupon.code if visit.coupon else None
        visit.coupon = None
        visit.discount = 0
        lifecycle.refresh_status(visit)
        record(actor, "visit.coupon_removed", "visit", visit.id, before={"coupon": before})
        db.session.commit()
    return visit


# --- prices and the wallet -------------------------------------------------------------------

def wallet_balance(user_id):
    """The patient's spendable wallet balance in paise (a ledger sum)."""
    return balance(chart.patient_wallet(user_id))


def quote(visit, wallet_paise=0):
    """The visit's price. While it is open: computed now (coupon spread pro rata, the wallet
    capped at the balance and at what is due). Once checked out or paid: the stored split."""
    if visit.is_open and not any(p.status == PENDING for p in visit.payments):
        items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
        wallet = 0
        if wallet_paise:
            if isinstance(wallet_paise, bool) or not isinstance(wallet_paise, int):
                raise TypeError("wallet_paise must be int paise")
            wallet = min(max(wallet_paise, 0), max(wallet_balance(visit.patient_id), 0))
        return build_quote(items, visit.coupon, wallet)
    items = [i for i in visit.items if i.status != BookingStatus.EXPIRED] or list(visit.items)
    from portal.booking.pricing import QuoteLine
    lines = [QuoteLine(i.id, i.fee, i.platform_fee, i.gst, i.total, i.discount_share,
                       i.paid_amount, i.wallet_paid, i.gateway_paid) for i in items]
    subtotal = sum(i.total for i in items)
    discount = sum(i.discount_share for i in items)
    wallet = sum(i.wallet_paid for i in items)
    return Quote(lines=lines, subtotal=subtotal, discount=discount, wallet_used=wallet,
                 amount_due=subtotal - discount - wallet)


def _store_split(visit, q):
    items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    for item, line in zip(items, q.lines):
        item.discount_share, item.paid_amount = line.discount_share, line.paid_amount
        item.wallet_paid, item.gateway_paid = line.wallet_paid, line.gateway_paid
    visit.discount, visit.wallet_applied = q.discount, q.wallet_used


def _fix_price(visit, wallet_paise):
    """Freeze the price for a payment: coupon use taken, split stored, wallet reserved.
    Returns (quote, wallet payment or None)."""
    q = quote(visit, wallet_paise)
    if visit.coupon is not None and not coupons.has_use(visit):
        message = coupons.check(visit.coupon, visit.patient_id, visit_id=visit.id)
        if message:
            raise BookingError(message, field="coupon")
        coupons.take_use(visit, q.discount)
    _store_split(visit, q)
    wallet_payment = None
    if q.wallet_used:
        wallet_payment = Payment(kind=WALLET, amount=q.wallet_used, status=PENDING)
        visit.payments.append(wallet_payment)
        db.session.flush()
        lifecycle.add_attempt(wallet_payment, "wallet.reserved", PENDING)
        postings.reserve_wallet(visit, wallet_payment)
    return q, wallet_payment


def _ready_for_payment(visit):
    if not visit.is_open:
        raise BookingError(MSG_VISIT_CLOSED)
    if not any(i.status == BookingStatus.SCHEDULED for i in visit.items):
        raise BookingError(MSG_EMPTY)


def _expired_hold(visit, actor):
    """Expire a hold whose time passed and tell the caller (committed, then raised)."""
    if lifecycle.is_hold_stale(visit):
        lifecycle.expire(visit, actor=actor)
        db.session.commit()
        raise BookingError(MSG_HOLD_EXPIRED)


# --- checkout ----------------------------------------------------------------------------

@dataclass
class CheckoutResult:
    payment: Payment | None
    redirect_url: str | None
    form_action: str | None = None
    form_fields: dict = field(default_factory=dict)

    @property
    def needs_post(self):
        return bool(self.form_fields) and self.redirect_url == self.form_action


def _checkout_target(payment, callback_url, visit):
    payin = get_payin()
    if payin.is_sandbox:
        return CheckoutResult(payment, payin.checkout_url(payment.razorpay_order_id,
                                                          callback_url))
    patient = visit.patient
    action, fields = payin.hosted_checkout(
        payment.razorpay_order_id, callback_url, description=f"Visit {visit.number}",
        prefill={"name": patient.name, "email": patient.email,
                 "contact": patient.phone or ""})
    return CheckoutResult(payment, action, action, fields)


def _same_wallet_request(visit, wallet_paise):
    """Would this request reserve what the pending checkout already reserved?"""
    due = sum(i.total - i.discount_share for i in visit.items
              if i.status == BookingStatus.SCHEDULED)
    available = max(wallet_balance(visit.patient_id), 0) + visit.wallet_applied
    return min(max(int(wallet_paise or 0), 0), available, due) == visit.wallet_applied


def checkout(actor, visit_id, wallet_paise=0, callback_url=None):
    """Pay for a visit: the wallet part is reserved, the rest becomes one Razorpay order
    and the hold is extended to the order's lifetime (``BOOKING_ORDER_MINUTES``, 30).
    Fully covered by the wallet (or the coupon): confirmed at once, ``redirect_url=None``."""
    if not callback_url:
        raise ValueError("checkout needs the callback_url Razorpay returns to")
    with _Transaction():
        visit = _visit_for(actor, visit_id)
        _ready_for_payment(visit)
        _expired_hold(visit, actor)
        pending = visit.pending_payment
        if pending is not None and pending.kind == ORDER and \
                _same_wallet_request(visit, wallet_paise):
            # A retry: back to the same order while the attempt limit allows.
            if not schedule.may_retry_payment(pending.attempt_count, lifecycle.policy()):
                raise BookingError(MSG_TOO_MANY_ATTEMPTS)
            lifecycle.add_attempt(pending, "checkout.retry", PENDING)
            db.session.commit()
            return _checkout_target(pending, callback_url, visit)
        if pending is not None or visit.status == PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "checkout restarted", actor)
        q, wallet_payment = _fix_price(visit, wallet_paise)
        now = utcnow()
        if q.amount_due == 0:
            lifecycle.confirm(visit, gateway_amount=0, money_account=chart.GATEWAY_CLEARING,
                              actor=actor, source="wallet")
            record(actor, "visit.checkout", "visit", visit.id,
                   after={"wallet": q.wallet_used, "gateway": 0, "discount": q.discount})
            db.session.commit()
            return CheckoutResult(wallet_payment, None)
        payment = Payment(kind=ORDER, amount=q.amount_due, status=PENDING,
                          created_by_id=actor.id, expires_at=now + lifecycle.order_lifetime())
        visit.payments.append(payment)
        db.session.flush()
        try:
            order = get_payin().create_order(
                q.amount_due, receipt=f"{visit.number}-P{payment.id}",
                notes={"visit": visit.number, "portal_payment": str(payment.id)})
        except GatewayError as exc:
            raise PaymentError(MSG_GATEWAY_DOWN) from exc
        payment.razorpay_order_id = order["id"]
        lifecycle.add_attempt(payment, "order.created", PENDING, detail={"order": order["id"]})
        visit.hold_expires_at = max(visit.hold_expires_at or now, payment.expires_at)
        lifecycle.refresh_status(visit)
        record(actor, "visit.checkout", "visit", visit.id,
               after={"wallet": q.wallet_used, "gateway": q.amount_due, "discount": q.discount,
                      "order": order["id"], "payment_id": payment.id})
        db.session.commit()
        return _checkout_target(payment, callback_url, visit)


def complete_checkout_callback(params):
    """Razorpay's checkout came back: verify the signature with the SDK, then confirm
    (idempotent with the webhook, whichever comes first). Raises PaymentError."""
    order_id = (params.get("razorpay_order_id") or "").strip()
    payment_id = (params.get("razorpay_payment_id") or "").strip()
    signature = (params.get("razorpay_signature") or "").strip()
    if not (order_id and payment_id and signature):
        description = params.get("error[description]") or "The payment did not go through"
        raise PaymentError(description)
    with _Transaction():
        payment = payments.find_payment(order_id=order_id)
        if payment is None:
            raise PaymentError(MSG_BAD_SIGNATURE)
        payin = get_payin()
        if not payin.verify_payment_signature(order_id, payment_id, signature):
            lifecycle.add_attempt(payment, "callback.bad_signature", "REJECTED", payment_id)
            record(None, "payment.bad_signature", "payment", payment.id,
                   after={"razorpay_payment_id": payment_id})
            db.session.commit()
            raise PaymentError(MSG_BAD_SIGNATURE)
        amount, method = payment.amount, None
        try:  # the amount and method as Razorpay has them; the signature already proves payment
            fetched = payin.fetch_payment(payment_id)
            amount, method = int(fetched["amount"]), fetched.get("method")
        except GatewayError:
            pass
        visit = payments.capture(payment, razorpay_payment_id=payment_id, amount=amount,
                                 method=method, source="callback")
        db.session.commit()
    return visit


def complete_link_callback(params):
    """A payment link's redirect: verified with the SDK, then handled like a capture."""
    link_id = params.get("razorpay_payment_link_id") or ""
    payment_id = params.get("razorpay_payment_id") or ""
    with _Transaction():
        payment = payments.find_payment(link_id=link_id)
        payin = get_payin()
        if payment is None or params.get("razorpay_payment_link_status") != "paid" or \
                not payin.verify_payment_link_signature(
                    link_id, params.get("razorpay_payment_link_reference_id") or "",
                    "paid", payment_id, params.get("razorpay_signature")):
            raise PaymentError(MSG_BAD_SIGNATURE)
        visit = payments.capture(payment, razorpay_payment_id=payment_id, amount=payment.amount,
                                 source="link_callback")
        db.session.commit()
    return visit


# --- admin: payment links and desk payments ----------------------------------------------

def create_payment_link(admin, visit_id):
    """A Razorpay payment link for an admin-made visit. Expiry = min(now + 24 h, first start
    − 2 h), at least 15 min ahead (else BookingError: take the payment at the desk). The
    hold lasts until the link expires."""
    _require_admin(admin)
    with _Transaction():
        visit = _visit_for(admin, visit_id)
        _ready_for_payment(visit)
        _expired_hold(visit, admin)
        now = utcnow()
        expiry = schedule.payment_link_expiry(now, visit.first_start, lifecycle.policy())
        if expiry is None:
            raise BookingError(MSG_LINK_TOO_LATE)
        lifecycle.abandon_checkout(visit, "payment link created", admin)
        q, _ = _fix_price(visit, 0)
        if q.amount_due == 0:
            raise BookingError(MSG_NOTHING_TO_PAY)
        payment = Payment(kind=LINK, amount=q.amount_due, status=PENDING, expires_at=expiry,
                          created_by_id=admin.id)
        visit.payments.append(payment)
        db.session.flush()
        patient = visit.patient
        customer = {"name": patient.name, "email": patient.email}
        if patient.phone:
            customer["contact"] = patient.phone
        try:
            link = get_payin().create_payment_link(
                q.amount_due, reference_id=f"{visit.number}-P{payment.id}", expire_by=expiry,
                description=f"Clinic visit {visit.number}", customer=customer,
                notify={"sms": bool(patient.phone), "email": True},
                notes={"visit": visit.number, "portal_payment": str(payment.id)})
        except GatewayError as exc:
            raise PaymentError(MSG_GATEWAY_DOWN) from exc
        payment.razorpay_link_id, payment.link_url = link["id"], link.get("short_url")
        lifecycle.add_attempt(payment, "link.created", PENDING,
                              detail={"link": link["id"], "expire_by": expiry.isoformat()})
        visit.hold_expires_at = expiry
        lifecycle.refresh_status(visit)
        record(admin, "payment.link_created", "visit", visit.id,
               after={"payment_id": payment.id, "amount": payment.amount,
                      "link": link["id"], "expires_at": expiry.isoformat()})
        db.session.commit()
    return payment


def resend_payment_link(admin, payment_id):
    _require_admin(admin)
    with _Transaction():
        payment = _get(Payment, payment_id, "payment")
        if payment.kind != LINK or payment.status != PENDING or not payment.razorpay_link_id:
            raise BookingError("Only a pending payment link can be sent again")
        payin = get_payin()
        sent = []
        try:
            for medium in ("sms", "email"):
                if medium == "sms" and not payment.visit.patient.phone:
                    continue
                payin.notify_payment_link(payment.razorpay_link_id, medium)
                sent.append(medium)
        except GatewayError as exc:
            raise PaymentError(MSG_GATEWAY_DOWN) from exc
        lifecycle.add_attempt(payment, "link.resent", PENDING, detail={"media": sent})
        record(admin, "payment.link_resent", "payment", payment.id, after={"media": sent})
        db.session.commit()
    return payment


def record_desk_payment(admin, visit_id, receipt_no):
    """Paid at the clinic's desk (cash/card machine): confirmed at once into ``cash_desk``."""
    _require_admin(admin)
    receipt_no = " ".join((receipt_no or "").split())
    if not receipt_no:
        raise BookingError(MSG_RECEIPT_NO, field="receipt_no")
    with _Transaction():
        visit = _visit_for(admin, visit_id)
        _ready_for_payment(visit)
        _expired_hold(visit, admin)
        lifecycle.abandon_checkout(visit, "paid at the desk", admin)
        q, _ = _fix_price(visit, 0)
        payment = None
        if q.amount_due:
            payment = Payment(kind=DESK, amount=q.amount_due, status=SUCCESSFUL,
                              receipt_no=receipt_no[:64], method="desk", paid_at=utcnow(),
                              created_by_id=admin.id)
            visit.payments.append(payment)
            db.session.flush()
            lifecycle.add_attempt(payment, "desk.paid", SUCCESSFUL,
                                  detail={"receipt_no": receipt_no})
        lifecycle.confirm(visit, gateway_amount=q.amount_due, money_account=chart.CASH_DESK,
                          actor=admin, source="desk")
        record(admin, "payment.desk", "visit", visit.id,
               after={"amount": q.amount_due, "receipt_no": receipt_no})
        db.session.commit()
    return payment


# --- reading ---------------------------------------------------------------------------------

def get_visit(visit_id):
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        raise NotFound("visit")
    return visit


def attempts(payment):
    return list(payment.attempts)


def _attention_clause(now, policy):
    first_start = (sa.select(sa.func.min(IndividualBooking.start_at))
                   .where(IndividualBooking.master_id == MasterBooking.id,
                          IndividualBooking.status == "SCHEDULED")
                   .scalar_subquery())
    return sa.or_(MasterBooking.attention.is_not(None),
                  sa.and_(MasterBooking.status == PENDING_PAYMENT,
                          first_start <= now + policy.attention_window))


def list_visits(patient_id=None, status=None, needs_attention=None, search=None, page=1,
                per_page=20):
    """Newest first. ``status``: one status or a list; ``search``: visit number, patient name
    or email (case-insensitive). Returns a Flask-SQLAlchemy ``Pagination``."""
    query = sa.select(MasterBooking).order_by(MasterBooking.created_at.desc(),
                                              MasterBooking.id.desc())
    if patient_id is not None:
        query = query.where(MasterBooking.patient_id == patient_id)
    if status:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(MasterBooking.status.in_(statuses))
    clause = _attention_clause(utcnow(), lifecycle.policy())
    if needs_attention is True:
        query = query.where(clause)
    elif needs_attention is False:
        query = query.where(sa.not_(clause))
    text = " ".join((search or "").split()).lower()
    if text:
        like = f"%{text}%"
        query = query.where(sa.or_(
            sa.func.lower(MasterBooking.number).like(like),
            MasterBooking.patient_id.in_(sa.select(User.id).where(sa.or_(
                sa.func.lower(User.name).like(like), sa.func.lower(User.email).like(like))))))
    return db.paginate(query, page=max(int(page or 1), 1), per_page=per_page, error_out=False)


def visit_needs_attention(visit, now=None):
    now = now or utcnow()
    if visit.attention:
        return True
    first = visit.first_start
    return visit.status == PENDING_PAYMENT and first is not None and \
        first <= now + lifecycle.policy().attention_window


# --- receipts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceiptLine:
    item_id: int
    description: str
    starts_at: object
    clinic_name: str
    clinic_gstin: str | None
    care_amount: int       # F: exempt health care unless the service is taxable
    care_taxed: bool
    platform_fee: int      # P: the platform's taxed fee
    gst: int
    total: int
    discount_share: int
    paid_amount: int
    status: str


@dataclass(frozen=True)
class Receipt:
    invoice_no: str
    visit_number: str
    issued_at: object
    patient_name: str
    for_name: str
    lines: list
    subtotal: int
    discount: int
    paid_wallet: int
    paid_gateway: int
    payments: list

    @property
    def total_paid(self):
        return self.paid_wallet + self.paid_gateway

    @property
    def exempt_care(self):
        return sum(line.care_amount for line in self.lines if not line.care_taxed)

    @property
    def taxed_value(self):
        return sum(line.platform_fee + (line.care_amount if line.care_taxed else 0)
                   for line in self.lines)

    @property
    def gst(self):
        return sum(line.gst for line in self.lines)


def receipt(visit):
    """The tax invoice of a paid visit (its number allocated at first confirmation)."""
    if visit.invoice_no is None:
        raise BookingError("This visit has not been paid yet")
    items = [i for i in visit.items if i.paid_amount or i.status in LIVE_ITEM_STATUSES
             or i.status == "COMPLETED"]
    lines = [ReceiptLine(
        item_id=i.id,
        description=f"{i.service.name} — {', '.join(p.display_name for p in i.providers)}",
        starts_at=i.start_at, clinic_name=i.clinic.name, clinic_gstin=i.clinic.gstin,
        care_amount=i.fee, care_taxed=i.fee_taxed, platform_fee=i.platform_fee, gst=i.gst,
        total=i.total, discount_share=i.discount_share, paid_amount=i.paid_amount,
        status=i.status) for i in items]
    paid = [p for p in visit.payments if p.status == SUCCESSFUL and not any(
        a.event in ("captured_unapplied", "captured_wrong_amount") for a in p.attempts)]
    return Receipt(
        invoice_no=visit.invoice_no, visit_number=visit.number, issued_at=visit.confirmed_at,
        patient_name=visit.patient.name, for_name=visit.for_name, lines=lines,
        subtotal=sum(line.total for line in lines),
        discount=sum(line.discount_share for line in lines),
        paid_wallet=sum(i.wallet_paid for i in items),
        paid_gateway=sum(i.gateway_paid for i in items),
        payments=[(p.kind, p.amount, p.method, p.receipt_no or p.razorpay_payment_id,
                   p.paid_at) for p in paid])
