"""Moving a confirmed booking to another slot, and rebooking an expired or cancelled one
(POLICY.md "Reschedule"; docs/refunds.md "Reschedule").

* ``quote(actor, item_id, admin_override=False)`` — the fee for this notice: penalty
  (0 / 10 / 20 % of F by tier, +5 points for a team), platform fee and GST on it.
* ``free_slots(item, from_date)`` — start times the booking could move to (its own time
  does not block it).
* ``reschedule(actor, item_id, new_start, pay_with=None, callback_url=None,
  admin_override=False, receipt_no=None)`` — a zero fee moves at once; a fee is paid from
  the wallet or, by an admin, at the desk (moved at once, one transaction), or through a
  Razorpay checkout: the new time is then **held** (claims marked with the reschedule)
  until the order expires, and the booking moves when the payment is captured (callback
  or webhook, whichever is first). The old slot is released and the new one taken in one
  transaction; a slot taken meanwhile raises ``SlotUnavailable``. A newer request replaces
  a pending one (its hold is released; a payment for it arriving later goes to the wallet).
* ``complete_callback(params)`` / ``payment_captured(...)`` — the checkout came back.
* ``rebook(actor, item_id, new_start)`` — an expired or cancelled item again, at today's
  price: a new item in a new visit through ``service.add_item`` (then the usual checkout).

Ledger (docs/ledger.md "reschedule fee"): ``gateway_clearing`` / ``patient_wallet`` N + Pn
+ Gn against ``provider_payable`` N − cn (split over a team), ``commission_revenue`` cn,
``platform_revenue`` Pn, ``gst_payable`` Gn; key ``reschedule:<id>``.
"""
import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import jobs
from portal.accounts.models import ADMIN, PATIENT
from portal.audit.service import record
from portal.booking import claims, lifecycle
from portal.booking import service as booking_service
from portal.booking.errors import (BookingError, NotFound, PaymentError, PermissionDenied,
                                   SlotUnavailable)
from portal.booking.models import (IndividualBooking, SlotClaim, booking_providers,
                                   patient_subject, provider_subject)
from portal.db import UTCDateTime, utcnow
from portal.domain import reschedule as rules
from portal.domain.rates import allocate_pro_rata, apply_bps, format_inr
from portal.domain.slots import MSG_TAKEN
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import InsufficientBalance, credit, debit, post

log = logging.getLogger("portal.booking.reschedule")

PENDING_PAYMENT, DONE, FAILED, EXPIRED = "PENDING_PAYMENT", "DONE", "FAILED", "EXPIRED"
STATUSES = (PENDING_PAYMENT, DONE, FAILED, EXPIRED)
PAY_NONE, PAY_WALLET, PAY_GATEWAY, PAY_DESK = "NONE", "WALLET", "GATEWAY", "DESK"
PAY_WITH = (PAY_NONE, PAY_WALLET, PAY_GATEWAY, PAY_DESK)

MSG_NOT_CONFIRMED = "Only confirmed appointments can be rescheduled"
MSG_SAME_SLOT = "Choose a different time"
MSG_PAY_WITH = "Choose how to pay the reschedule fee"
MSG_WALLET_LOW = "Insufficient wallet balance"
MSG_RECEIPT = "Enter the desk receipt number"
MSG_DESK_ADMIN = "Only the clinic's desk can take the fee in person"
MSG_ONLINE_PATIENT = "Only the patient can pay online; take the fee from the wallet or at the desk"
MSG_REPLACED = "Replaced by a newer reschedule request"
MSG_HOLD_EXPIRED = "The checkout expired before the fee was paid"
MSG_REBOOK_ONLY = "Only expired or cancelled appointments can be booked again"
MSG_SLOT_GONE = ("The new time was taken before your payment arrived; the fee is in your "
                 "wallet")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Reschedule(db.Model):
    """One move of an individual booking (or an attempt awaiting its fee)."""

    __tablename__ = "reschedules"
    __table_args__ = (
        sa.CheckConstraint(_in("status", STATUSES), name="status_known"),
        sa.CheckConstraint(_in("pay_with", PAY_WITH), name="pay_with_known"),
        sa.CheckConstraint("penalty >= 0 AND platform_fee >= 0 AND gst >= 0 AND commission >= 0",
                           name="amounts_non_negative"),
        sa.CheckConstraint("total = penalty + platform_fee + gst", name="total_adds_up"),
        sa.CheckConstraint("new_start < new_end AND old_start < old_end", name="slots_valid"),
        sa.Index("ix_reschedules_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id", ondelete="CASCADE"),
                                            index=True)
    visit_id: Mapped[int] = mapped_column(sa.ForeignKey("visits.id", ondelete="CASCADE"),
                                          index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    old_start: Mapped[object] = mapped_column(UTCDateTime)
    old_end: Mapped[object] = mapped_column(UTCDateTime)
    new_start: Mapped[object] = mapped_column(UTCDateTime)
    new_end: Mapped[object] = mapped_column(UTCDateTime)
    notice_minutes: Mapped[int] = mapped_column()
    penalty_bps: Mapped[int] = mapped_column()
    penalty: Mapped[int] = mapped_column(sa.BigInteger)
    platform_fee: Mapped[int] = mapped_column(sa.BigInteger)
    gst: Mapped[int] = mapped_column(sa.BigInteger)
    total: Mapped[int] = mapped_column(sa.BigInteger)
    commission: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    overridden: Mapped[bool] = mapped_column(default=False)
    pay_with: Mapped[str] = mapped_column(sa.String(8), default=PAY_NONE)
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING_PAYMENT, index=True)
    razorpay_order_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    razorpay_payment_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    receipt_no: Mapped[str | None] = mapped_column(sa.String(64))  # paid at the desk
    expires_at: Mapped[object | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[object | None] = mapped_column(UTCDateTime)

    booking = relationship("IndividualBooking")
    visit = relationship("MasterBooking")

    def owner_ids(self):
        return {self.visit.patient_id}


# --- who may act, what it costs ------------------------------------------------------------

def _role(actor):
    return getattr(actor, "role", None)


def _item_for(actor, item_id):
    item = db.session.get(IndividualBooking, item_id) if item_id is not None else None
    if item is None:
        raise NotFound("booking")
    if _role(actor) == ADMIN or (_role(actor) == PATIENT and item.visit.patient_id == actor.id):
        return item
    raise NotFound("booking")


def _commission_lines(item, penalty):
    """Provider shares (N split equally over a team, half-up, exact) less each one's
    commission: [(provider id, share − commission)], total commission."""
    providers = list(item.providers)
    shares = allocate_pro_rata(penalty, [1] * len(providers)) if penalty else [0] * len(providers)
    out, commission = [], 0
    for provider, share in zip(providers, shares):
        c = apply_bps(share, provider.commission_bps)
        out.append((provider.id, share - c))
        commission += c
    return out, commission


def quote(actor, item_id, admin_override=False, now=None):
    """(item, RescheduleQuote) for moving this booking now."""
    item = _item_for(actor, item_id)
    if admin_override and _role(actor) != ADMIN:
        raise PermissionDenied("Only administrators can override the reschedule rules.")
    return item, _quote(item, admin_override, now or utcnow())


def _quote(item, admin_override, now):
    rate = item.providers[0].commission_bps if len(item.providers) == 1 else None
    return rules.reschedule_quote(item.fee, item.start_at - now, item.is_team,
                                  lifecycle.policy(), admin_override=admin_override,
                                  commission_bps=rate)


# --- the new slot --------------------------------------------------------------------------

def _subjects(item):
    return [provider_subject(p.id) for p in item.providers] + \
        [patient_subject(item.visit.patient_id, item.visit.dependent_id)]


def _own_busy(item):
    """The booking's own busy intervals (its time, and a time it holds for a pending move),
    which must not block its own move."""
    spans = {(item.start_at, item.end_at)} | {
        (c.start_at, c.end_at) for c in item.claims if c.live and c.reschedule_id}
    return [(p.id, s, e) for p in item.providers for s, e in spans]


def check_slot(item, new_start):
    """Every booking rule for the new start (the booking service's checks), ignoring the
    booking's own time. Returns the new end; raises BookingError / SlotUnavailable."""
    from portal.catalog.slots import check_booking_slot
    if getattr(new_start, "tzinfo", None) is None:
        raise BookingError("Choose a time", field="start_at")
    if new_start == item.start_at:
        raise BookingError(MSG_SAME_SLOT, field="start_at")
    end = new_start + timedelta(minutes=item.service.duration_minutes)
    subjects = _subjects(item)
    booking_service._clear_stale_holds(subjects, new_start, end, keep_visit_id=item.master_id)
    messages = check_booking_slot(list(item.providers), item.service, item.clinic, new_start,
                                  exclude=_own_busy(item))
    if messages:
        if messages[0] == MSG_TAKEN:
            raise SlotUnavailable()
        raise BookingError(messages[0], field="start_at")
    taken = claims.conflicts(subjects, new_start, end, exclude_booking_ids=[item.id])
    if any(c.subject.startswith("provider:") for c in taken):
        raise SlotUnavailable()
    if taken:
        raise SlotUnavailable(booking_service.MSG_PATIENT_BUSY.format(name=item.visit.for_name))
    return end


def free_slots(item, from_date, days=7, limit=12, now=None):
    """Start times (aware UTC) the booking could move to, from the local date ``from_date``
    (not its own current time)."""
    from portal.catalog.slots import team_next_free_slots
    slots = team_next_free_slots(list(item.providers), item.service, item.clinic, from_date,
                                 days=days, limit=limit + 1, now=now, exclude=_own_busy(item))
    return [s for s in slots if s != item.start_at][:limit]


def _move(item, new_start, new_end, resched=None):
    """Release the old claims and take the new ones (flushed by the caller): the claims
    held for ``resched`` become the booking's, else new claims are added."""
    held = [c for c in item.claims
            if resched is not None and c.reschedule_id == resched.id and c.live]
    for claim in item.claims:
        if claim not in held:
            claim.live = False
    for claim in held:  # the booking's own claims from now on, no longer a hold
        claim.reschedule_id = None
    item.start_at, item.end_at = new_start, new_end
    if not held:
        for subject in _subjects(item):
            item.claims.append(SlotClaim(subject=subject, start_at=new_start, end_at=new_end,
                                         live=True))


# --- holding the new time while the fee is paid online --------------------------------------

def _hold(item, resched):
    """Live claims on the new time, marked with the reschedule (flushed: a lost race
    raises SlotUnavailable). They become the booking's claims when the fee is captured."""
    for subject in _subjects(item):
        item.claims.append(SlotClaim(subject=subject, start_at=resched.new_start,
                                     end_at=resched.new_end, live=True,
                                     reschedule_id=resched.id))
    claims.flush_claims()


def _release_hold(resched):
    for claim in db.session.scalars(sa.select(SlotClaim).where(
            SlotClaim.reschedule_id == resched.id, SlotClaim.live.is_(True))):
        claim.live = False


def _close_pending(resched, status, reason):
    """A fee checkout that will not move the booking: its hold is released; a payment
    arriving for it later goes to the wallet (``payment_captured``)."""
    resched.status, resched.failure_reason = status, reason
    _release_hold(resched)


def _supersede_pending(item):
    """Earlier unpaid requests for this booking give way to the new one."""
    for old in db.session.scalars(sa.select(Reschedule).where(
            Reschedule.booking_id == item.id, Reschedule.status == PENDING_PAYMENT)):
        _close_pending(old, EXPIRED, MSG_REPLACED)
    db.session.flush()


def release_stale_hold(claim, now=None):
    """A held time whose checkout ran out but the sweep has not reached yet must not block
    anyone (called by the booking service's slot check). True if released."""
    if claim.reschedule_id is None:
        return False
    resched = _lock_reschedule(claim.reschedule_id)
    now = now or utcnow()
    if resched.status == PENDING_PAYMENT:
        if resched.expires_at is None or resched.expires_at > now:
            return False
        _close_pending(resched, EXPIRED, MSG_HOLD_EXPIRED)
    elif resched.status in (EXPIRED, FAILED):  # closed, its hold somehow still live
        _release_hold(resched)
    else:
        return False
    db.session.flush()
    return True


def _lock_reschedule(reschedule_id):
    """The reschedule row, freshly read and (PostgreSQL) locked: a capture, the sweep and a
    stale-hold release decide one after the other. Lock order: visit, then reschedule."""
    query = sa.select(Reschedule).where(Reschedule.id == reschedule_id) \
        .execution_options(populate_existing=True)
    if claims.is_postgres():
        query = query.with_for_update()
    return db.session.scalar(query)


def _after_move(resched, item, actor):
    from portal.notify import retime_reminders
    retime_reminders(item.id)
    resched.status, resched.done_at = DONE, utcnow()
    record(actor, "booking.reschedule", "booking", item.id,
           before={"start_at": resched.old_start.isoformat()},
           after={"start_at": resched.new_start.isoformat(), "fee": resched.total,
                  "pay_with": resched.pay_with, "reschedule_id": resched.id,
                  "overridden": resched.overridden})
    jobs.enqueue("booking.rescheduled", booking_id=item.id,
                 old_start=resched.old_start.isoformat(),
                 dedupe_key=f"rescheduled:{resched.id}")


def _post_fee(resched, item, money_account, require_non_negative=()):
    if resched.total == 0:
        return None
    shares, commission = _commission_lines(item, resched.penalty)
    lines = [debit(money_account, resched.total)]
    lines += [credit(chart.provider_payable(pid), amount) for pid, amount in shares]
    lines += [credit(chart.COMMISSION_REVENUE, commission),
              credit(chart.PLATFORM_REVENUE, resched.platform_fee),
              credit(chart.GST_PAYABLE, resched.gst)]
    return post("reschedule_fee", lines, reference=("reschedule", resched.id),
                idempotency_key=f"reschedule:{resched.id}",
                memo=f"reschedule fee, booking {item.id}",
                require_non_negative=require_non_negative)


# --- the use cases -------------------------------------------------------------------------

@dataclass
class RescheduleResult:
    reschedule: Reschedule
    redirect_url: str | None = None  # the checkout to pay the fee; None when moved
    form_action: str | None = None
    form_fields: dict | None = None

    @property
    def moved(self):
        return self.reschedule.status == DONE


def _lock(item):
    lifecycle.lock_visit(item.master_id)
    query = sa.select(IndividualBooking).where(IndividualBooking.id == item.id) \
        .execution_options(populate_existing=True)
    if claims.is_postgres():
        query = query.with_for_update()
    return db.session.scalar(query)


def reschedule(actor, item_id, new_start, pay_with=None, callback_url=None,
               admin_override=False, receipt_no=None, now=None):
    """Move a confirmed booking to ``new_start`` (see the module docstring)."""
    pay_with = (pay_with or "").upper() or None
    receipt_no = (receipt_no or "").strip()[:64] or None
    try:
        with claims.serialized():
            item = _item_for(actor, item_id)
            if admin_override and _role(actor) != ADMIN:
                raise PermissionDenied("Only administrators can override the reschedule rules.")
            item = _lock(item)
            if item.status != BookingStatus.CONFIRMED:
                raise BookingError(MSG_NOT_CONFIRMED)
            now = now or utcnow()
            q = _quote(item, admin_override, now)
            if not q.allowed:
                raise BookingError(q.message, field="start_at")
            _supersede_pending(item)  # rolled back with the rest if this request fails
            new_end = check_slot(item, new_start)
            if q.total and pay_with not in (PAY_WALLET, PAY_GATEWAY, PAY_DESK):
                raise BookingError(MSG_PAY_WITH, field="pay_with")
            if q.total and pay_with == PAY_GATEWAY and _role(actor) != PATIENT:
                raise BookingError(MSG_ONLINE_PATIENT, field="pay_with")
            if q.total and pay_with == PAY_DESK:
                if _role(actor) != ADMIN:
                    raise BookingError(MSG_DESK_ADMIN, field="pay_with")
                if not receipt_no:
                    raise BookingError(MSG_RECEIPT, field="receipt_no")
            _, commission = _commission_lines(item, q.penalty)
            resched = Reschedule(
                booking_id=item.id, visit_id=item.master_id,
                requested_by_id=getattr(actor, "id", None), old_start=item.start_at,
                old_end=item.end_at, new_start=new_start, new_end=new_end,
                notice_minutes=int((item.start_at - now).total_seconds() // 60),
                penalty_bps=q.penalty_bps, penalty=q.penalty, platform_fee=q.platform_fee,
                gst=q.gst, total=q.total, commission=commission, overridden=q.overridden,
                pay_with=PAY_NONE if q.total == 0 else pay_with, status=PENDING_PAYMENT,
                receipt_no=receipt_no if q.total and pay_with == PAY_DESK else None,
                created_at=now)
            db.session.add(resched)
            db.session.flush()
            if q.total and pay_with == PAY_GATEWAY:
                _hold(item, resched)
                return _start_checkout(resched, item, callback_url, now)
            if q.total and pay_with == PAY_DESK:
                _post_fee(resched, item, chart.CASH_DESK)
            elif q.total:
                wallet = chart.patient_wallet(item.visit.patient_id)
                try:
                    _post_fee(resched, item, wallet, require_non_negative=[wallet])
                except InsufficientBalance:
                    raise BookingError(MSG_WALLET_LOW, field="pay_with") from None
            _move(item, new_start, new_end)
            claims.flush_claims()
            _after_move(resched, item, actor)
            claims.commit_claims()
            return RescheduleResult(resched)
    except Exception:
        db.session.rollback()
        raise


def _start_checkout(resched, item, callback_url, now):
    from portal.gateway import GatewayError, get_payin
    if not callback_url:
        raise ValueError("a checkout needs the callback_url")
    resched.expires_at = now + lifecycle.order_lifetime()
    payin = get_payin()
    try:
        order = payin.create_order(resched.total, receipt=f"R{resched.id}",
                                   notes={"portal_reschedule": str(resched.id),
                                          "booking": str(item.id)})
    except GatewayError as exc:
        raise PaymentError(booking_service.MSG_GATEWAY_DOWN) from exc
    resched.razorpay_order_id = order["id"]
    record(resched.requested_by_id, "booking.reschedule_checkout", "booking", item.id,
           after={"reschedule_id": resched.id, "order": order["id"], "fee": resched.total,
                  "new_start": resched.new_start.isoformat()})
    db.session.commit()
    url = callback_url.replace("__ID__", str(resched.id))
    if payin.is_sandbox:
        return RescheduleResult(resched, payin.checkout_url(order["id"], url))
    patient = item.visit.patient
    action, fields = payin.hosted_checkout(
        order["id"], url, description=f"Reschedule, visit {item.visit.number}",
        prefill={"name": patient.name, "email": patient.email, "contact": patient.phone or ""})
    return RescheduleResult(resched, action, action, fields)


def find_by_order(order_id):
    if not order_id:
        return None
    return db.session.scalar(sa.select(Reschedule).where(Reschedule.razorpay_order_id == order_id))


def complete_callback(params):
    """The checkout came back: verify the signature with the SDK, then apply the payment
    (idempotent with the webhook). Returns the Reschedule; raises PaymentError."""
    from portal.gateway import GatewayError, get_payin
    order_id = (params.get("razorpay_order_id") or "").strip()
    payment_id = (params.get("razorpay_payment_id") or "").strip()
    signature = (params.get("razorpay_signature") or "").strip()
    if not (order_id and payment_id and signature):
        raise PaymentError(params.get("error[description]") or "The payment did not go through")
    try:
        resched = find_by_order(order_id)
        payin = get_payin()
        if resched is None or not payin.verify_payment_signature(order_id, payment_id, signature):
            raise PaymentError(booking_service.MSG_BAD_SIGNATURE)
        amount = resched.total
        try:
            amount = int(payin.fetch_payment(payment_id)["amount"])
        except GatewayError:
            pass
        payment_captured(resched.id, payment_id, amount)
        db.session.commit()
        return db.session.get(Reschedule, resched.id)
    except Exception:
        db.session.rollback()
        raise


def payment_captured(reschedule_id, razorpay_payment_id, amount):
    """The fee was captured (callback or webhook; any order, any repetition): move the
    booking, or — slot gone, wrong amount, too late — put the money in the wallet.
    Runs in the caller's transaction; does not commit."""
    with claims.serialized():
        resched = db.session.get(Reschedule, reschedule_id)
        if resched is None:
            return None
        lifecycle.lock_visit(resched.visit_id)  # visit first, as reschedule() does
        resched = _lock_reschedule(reschedule_id)
        if resched.razorpay_payment_id == razorpay_payment_id:
            return resched
        item = _lock(resched.booking)
        wallet = chart.patient_wallet(resched.visit.patient_id)
        if resched.status != PENDING_PAYMENT or resched.razorpay_payment_id or \
                amount != resched.total:
            return _unapplied(resched, razorpay_payment_id, amount, wallet,
                              "late, repeated or different payment")
        resched.razorpay_payment_id = razorpay_payment_id
        reason = None
        if item.status != BookingStatus.CONFIRMED:
            reason = MSG_NOT_CONFIRMED
        elif _holds(resched):  # the new time was held for this payment: it is ours
            _move(item, resched.new_start, resched.new_end, resched)
            db.session.flush()
        else:
            try:
                if claims.is_postgres():  # the exclusion constraint decides, in a SAVEPOINT
                    with db.session.begin_nested():
                        end = check_slot(item, resched.new_start)
                        _move(item, resched.new_start, end)
                        db.session.flush()
                else:  # serialized: the check is authoritative and writes nothing first
                    end = check_slot(item, resched.new_start)
                    _move(item, resched.new_start, end)
                    db.session.flush()
            except (BookingError, IntegrityError, OperationalError) as exc:
                if not isinstance(exc, BookingError) and not claims.is_lost_race(exc):
                    raise
                db.session.expire(item)
                reason = MSG_SLOT_GONE
        if reason:
            _close_pending(resched, FAILED, reason)
            post("reschedule_unapplied", [debit(chart.GATEWAY_CLEARING, amount),
                                          credit(wallet, amount)],
                 reference=("reschedule", resched.id),
                 idempotency_key=f"reschedule_unapplied:{resched.id}:{razorpay_payment_id}")
            record(None, "booking.reschedule_failed", "booking", item.id,
                   after={"reschedule_id": resched.id, "reason": reason, "to_wallet": amount})
            jobs.enqueue("booking.reschedule_failed", reschedule_id=resched.id,
                         dedupe_key=f"reschedule-failed:{resched.id}")
            return resched
        _post_fee(resched, item, chart.GATEWAY_CLEARING)
        _after_move(resched, item, None)
        return resched


def _holds(resched):
    return db.session.scalar(sa.select(sa.func.count(SlotClaim.id)).where(
        SlotClaim.reschedule_id == resched.id, SlotClaim.live.is_(True))) > 0


def _unapplied(resched, razorpay_payment_id, amount, wallet, why):
    post("reschedule_unapplied", [debit(chart.GATEWAY_CLEARING, amount), credit(wallet, amount)],
         reference=("reschedule", resched.id),
         idempotency_key=f"reschedule_unapplied:{resched.id}:{razorpay_payment_id}")
    record(None, "booking.reschedule_payment_unapplied", "reschedule", resched.id,
           after={"razorpay_payment_id": razorpay_payment_id, "amount": amount, "why": why})
    return resched


def rebook(actor, item_id, new_start):
    """An expired or cancelled booking again, at a new time and today's price: a new
    item in a new visit (``service.add_item``); the patient then checks out as usual."""
    item = _item_for(actor, item_id)
    if item.status not in (BookingStatus.EXPIRED, BookingStatus.CANCELLED):
        raise BookingError(MSG_REBOOK_ONLY)
    visit = item.visit
    new = booking_service.add_item(
        actor, patient_id=visit.patient_id, dependent_id=visit.dependent_id,
        service_id=item.service_id, provider_ids=[p.id for p in item.providers],
        clinic_id=item.clinic_id, start_at=new_start)
    record(actor, "booking.rebook", "booking", new.id, after={"from_booking": item.id})
    db.session.commit()
    return new


# --- jobs and webhooks ---------------------------------------------------------------------

@jobs.job("booking.rescheduled")
def rescheduled_notice(booking_id, old_start=None):
    from datetime import datetime

    from portal.notify.tasks import on_booking_rescheduled
    on_booking_rescheduled(booking_id,
                           old_start=datetime.fromisoformat(old_start) if old_start else None)


@jobs.job("booking.reschedule_failed")
def reschedule_failed_notice(reschedule_id):
    from portal.notify import notify_user
    from portal.notify.links import visit_path
    resched = db.session.get(Reschedule, reschedule_id)
    if resched is None:
        return
    notify_user(resched.visit.patient_id, "booking.reschedule_failed",
                "Reschedule not completed",
                f"{resched.failure_reason}. {format_inr(resched.total)} is in your wallet.",
                link=visit_path("patient", visit_id=resched.visit_id),
                dedupe_key=f"reschedule-failed:{resched.id}")


@jobs.periodic("booking.expire_reschedules", every=300)
def expire_reschedules(now=None):
    """Checkouts for a reschedule fee that were never paid: EXPIRED and the held time
    released (a payment arriving later goes to the wallet)."""
    now = now or utcnow()
    ids = db.session.scalars(sa.select(Reschedule.id).where(
        Reschedule.status == PENDING_PAYMENT, Reschedule.expires_at <= now)).all()
    expired = 0
    for reschedule_id in ids:
        row = _lock_reschedule(reschedule_id)  # a capture may have won meanwhile
        if row.status == PENDING_PAYMENT and row.expires_at <= now:
            _close_pending(row, EXPIRED, MSG_HOLD_EXPIRED)
            expired += 1
    db.session.commit()
    return expired


def held_intervals_query(provider_ids, start, end, now):
    """(provider id, start, end) of new times held for moves whose fee is being paid: a
    SELECT the bookings' busy source unions with its own (one query for find-a-doctor)."""
    return (sa.select(booking_providers.c.provider_id, SlotClaim.start_at, SlotClaim.end_at)
            .join(Reschedule, Reschedule.id == SlotClaim.reschedule_id)
            .join(booking_providers, booking_providers.c.booking_id == SlotClaim.booking_id)
            .where(booking_providers.c.provider_id.in_(list(provider_ids)),
                   SlotClaim.subject == sa.literal("provider:") +
                   sa.cast(booking_providers.c.provider_id, sa.String),
                   SlotClaim.live.is_(True), SlotClaim.start_at < end, SlotClaim.end_at > start,
                   Reschedule.status == PENDING_PAYMENT, Reschedule.expires_at > now))


def _register_webhooks():
    from portal.gateway.webhook_processing import on_event

    @on_event("payment.captured", "order.paid")
    def reschedule_fee_captured(event):
        entity = event.entity("payment") or {}
        resched = find_by_order(entity.get("order_id"))
        if resched is None or not entity.get("id"):
            return
        if event.event_type == "payment.captured" and entity.get("status") not in (None, "captured"):
            return
        payment_captured(resched.id, entity["id"], int(entity.get("amount") or 0))


_register_webhooks()
