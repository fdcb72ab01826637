"""Cancellation and refund use cases (POLICY.md "Cancellation and refunds"; docs/refunds.md).

Public use cases (each runs one transaction and commits it; a broken rule raises
``CancellationError(message, field)`` and nothing is committed; someone else's booking
raises ``NotFound``; a wrong role ``PermissionDenied``):

* ``preview_cancellation(actor, visit_id, item_ids=None, prefer_wallet=False)`` — read only:
  per item the refund under the policy tier, why, and where it would go.
* ``cancel_items_as_patient(patient, visit_id, item_ids, prefer_wallet=False, reason="")``
* ``cancel_as_provider(provider_user, item_id, reason)``
* ``cancel_as_admin(admin, item_id, reason, mode="patient"|"clinic"|"provider",
  override=None, prefer_wallet=False, penalty_provider_id=None)``
* ``request_further_refund(admin, item_id, amount, reason, prefer_wallet=None)`` — more
  money back for an item already cancelled; always waits for a second admin.
* ``approve_override(admin, approval_id, note=None)`` / ``reject_override(...)``
* ``retry_refund(admin, refund_id)`` / ``refund_to_wallet(admin, refund_id, note)``
* ``execute_refund(refund_id)`` / ``sync_refund(refund_id)`` / ``apply_gateway_refund(...)``
  — run by the jobs, the poll and the webhook handlers (no commit of their own except
  where noted).

Never twice: the visit and item rows are locked (``FOR UPDATE`` on PostgreSQL; the claim
lock on SQLite), the booking state machine refuses CANCELLED → CANCELLED,
``cancellations.booking_id`` is unique, every ledger posting has an idempotency key, and
each gateway refund carries one ``X-Refund-Idempotency`` key for all its retries.
"""
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from portal import jobs
from portal.accounts.models import ADMIN, PATIENT, PROVIDER
from portal.audit.service import record
from portal.booking import claims, lifecycle
from portal.booking.errors import BookingError, NotFound, PermissionDenied
from portal.booking.models import IndividualBooking, MasterBooking
from portal.config import setting
from portal.db import utcnow
from portal.domain import cancellation as rules
from portal.domain.rates import div_round_half_up, format_inr
from portal.domain.states import REFUND, BookingStatus, InvalidTransition, RefundStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.ledger.service import entries_for as ledger_entries_for
from portal.payments.models import LINK, ORDER, SUCCESSFUL
from portal.refunds.models import (APPROVAL_PENDING, APPROVED, FAILED, GATEWAY, PENDING,
                                   PROCESSED, REJECTED, WALLET, Cancellation, Refund,
                                   RefundApproval)

log = logging.getLogger("portal.refunds")

MSG_ALREADY = "This appointment is already cancelled"
MSG_NOT_CONFIRMED = "Only confirmed appointments can be cancelled"
MSG_STARTED = "This appointment has already started"
MSG_NO_ITEMS = "Choose at least one appointment to cancel"
MSG_REASON = "Give a reason for the cancellation"
MSG_SECOND_ADMIN = "A different administrator must approve this refund"
MSG_DECIDED = "This request has already been decided"
MSG_NOTHING_LEFT = "Nothing is left to refund for this appointment"
MSG_NOT_FAILED = "Only a failed refund can be retried or sent to the wallet"
MSG_MODE = "Choose who the cancellation is for"
MSG_PENALTY_PROVIDER = "Choose the provider who cancelled"
MSG_FURTHER_NOT_CANCELLED = "A further refund is only for a cancelled appointment"
MSG_FURTHER_AMOUNT = "Enter an amount above ₹0"
MSG_FURTHER_TOO_MUCH = "Refund amount cannot exceed what is left to refund: {left}"
MSG_FURTHER_PENDING = "A further refund for this appointment already awaits approval"

GATEWAY_MINIMUM = 100  # Razorpay refunds at least ₹1; a smaller gateway part goes to the wallet
ADMIN_MODES = {"patient": "admin", "clinic": "clinic", "provider": "provider"}
REFUND_FAILED_ALERT = "REFUND_FAILED"


class CancellationError(BookingError):
    """A cancellation or refund rule was broken; ``message`` for the person."""


# --- settings ------------------------------------------------------------------------------

def _config(name, default):
    return setting(name)  # the default lives in portal.config


def max_attempts():
    """Gateway attempts per refund (network errors) and refunds per chain (refund.failed)."""
    return int(_config("REFUND_MAX_ATTEMPTS", 3))


def retry_delay(attempt):
    """Back-off before the next attempt after ``attempt`` failed ones: 30 s, 2 min, 8 min…"""
    base = int(_config("REFUND_RETRY_SECONDS", 30))
    return timedelta(seconds=base * 4 ** max(attempt - 1, 0))


def straggler_age():
    """A gateway refund still pending after this long is fetched from Razorpay by the poll."""
    return timedelta(minutes=int(_config("REFUND_STRAGGLER_MINUTES", 10)))


# --- small helpers -------------------------------------------------------------------------

def _role(actor):
    return getattr(actor, "role", None)


def _require_admin(actor):
    if _role(actor) != ADMIN:
        raise PermissionDenied("Only administrators can do this.")


def _rollback_on_error():
    class _T:
        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc_type is not None:
                db.session.rollback()
            return False
    return _T()


def _lock_query(query):
    query = query.execution_options(populate_existing=True)
    if claims.is_postgres():
        query = query.with_for_update()
    return query


def _lock_items(visit_id):
    """Every item of the visit, row-locked (PostgreSQL) and freshly read, by id."""
    rows = db.session.scalars(_lock_query(
        sa.select(IndividualBooking).where(IndividualBooking.master_id == visit_id)
        .order_by(IndividualBooking.id))).all()
    return {item.id: item for item in rows}


def _lock_refund(refund_id):
    return db.session.scalar(_lock_query(sa.select(Refund).where(Refund.id == refund_id)))


def _item_for_admin_or_provider(item_id):
    item = db.session.get(IndividualBooking, item_id) if item_id is not None else None
    if item is None:
        raise NotFound("booking")
    return item


def new_idempotency_key():
    return f"rfnd-{uuid.uuid4().hex}"


def _hours(item, now):
    return item.start_at - now


def tier_text(rule, policy=None):
    """Why this amount, in words, from the policy's numbers (never literals)."""
    policy = policy or lifecycle.policy()

    def tier(t):
        pct = f"{t.refund_bps / 100:g}%"
        return pct + (f" − {format_inr(t.deduction)}" if t.deduction else "")

    full, partial = (policy.patient_cancellation_tiers + (None, None))[:2]
    texts = {
        "patient_full": f"{full.notice.total_seconds() / 3600:g} hours or more before the "
                        f"start: {tier(full)} refund" if full else "Full refund",
        "patient_partial": f"Between {partial.notice.total_seconds() / 3600:g} and "
                           f"{full.notice.total_seconds() / 3600:g} hours before the start: "
                           f"{tier(partial)}" if partial and full else "Partial refund",
        "admin_late": f"Cancelled by the clinic for you within "
                      f"{partial.notice.total_seconds() / 3600 if partial else 24:g} hours: "
                      f"{tier(policy.admin_late_cancellation)}",
        "provider": f"Cancelled by the provider: "
                    f"{policy.provider_cancellation_refund_bps / 100:g}% refund",
        "clinic": f"Cancelled by the clinic: {policy.clinic_cancellation_refund_bps / 100:g}% "
                  f"refund",
        "override": "Refund amount set by an administrator",
        "override_approved": "Refund amount set by an administrator (approved)",
        "override_needs_approval": "Calculated refund now; the rest awaits a second "
                                   "administrator's approval",
    }
    if rule == "admin_patient_tier":
        return "As if cancelled online by the patient"
    return texts.get(rule, "")


# --- where money goes ----------------------------------------------------------------------

def _open_refunds(item_id):
    """Refunds of the item's paid amount (not of reschedule fees), not replaced."""
    return db.session.scalars(sa.select(Refund).where(
        Refund.booking_id == item_id, Refund.reschedule_id.is_(None),
        Refund.superseded.is_(False))).all()


def _gateway_payments(visit):
    """The visit's captured Razorpay payments that paid for its items (not money kept in
    the wallet after a late or mismatched capture), oldest first."""
    out = []
    for p in visit.payments:
        if p.kind not in (ORDER, LINK) or p.status != SUCCESSFUL or not p.razorpay_payment_id:
            continue
        if any(a.event in ("captured_unapplied", "captured_wrong_amount") for a in p.attempts):
            continue
        out.append(p)
    return out


def _refunded_through(razorpay_payment_id):
    return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0))
                                 .where(Refund.razorpay_payment_id == razorpay_payment_id,
                                        Refund.destination == GATEWAY,
                                        Refund.superseded.is_(False))) or 0)


@dataclass(frozen=True)
class Split:
    to_wallet: int
    to_gateway: int


def plan_split(item, amount, prefer_wallet):
    """(to_wallet, to_gateway) for refunding ``amount`` more of ``item`` (domain rule:
    wallet-paid portions always go to the wallet; the rest goes back the way it came
    unless the patient chose the wallet)."""
    if amount <= 0:
        return Split(0, 0)
    refunds = _open_refunds(item.id)
    already_w = sum(r.amount for r in refunds if r.destination == WALLET)
    already_g = sum(r.amount for r in refunds if r.destination == GATEWAY)
    split = rules.split_refund(amount, item.wallet_paid, item.gateway_paid, already_w,
                               already_g, prefer_wallet=prefer_wallet)
    return Split(split.to_wallet, split.to_gateway)


def _make_refunds(item, amount, prefer_wallet, *, actor, cancellation=None, approval=None,
                  now=None):
    """Refund rows for ``amount`` of ``item``: the wallet part PROCESSED at once, the
    gateway part PENDING against the visit's Razorpay payment(s). Returns the rows."""
    now = now or utcnow()
    split = plan_split(item, amount, prefer_wallet)
    to_wallet, to_gateway = split.to_wallet, split.to_gateway
    rows = []
    visit = item.visit
    common = dict(booking_id=item.id, visit_id=visit.id, patient_id=visit.patient_id,
                  cancellation=cancellation, approval_id=approval.id if approval else None,
                  created_by_id=getattr(actor, "id", None))
    remaining = to_gateway
    if remaining:
        for payment in _gateway_payments(visit):
            room = (payment.captured_amount or payment.amount) - \
                _refunded_through(payment.razorpay_payment_id) - \
                sum(r.amount for r in rows if r.razorpay_payment_id == payment.razorpay_payment_id)
            part = min(room, remaining)
            if part < GATEWAY_MINIMUM:
                continue
            rows.append(Refund(amount=part, destination=GATEWAY, status=PENDING,
                               payment_id=payment.id,
                               razorpay_payment_id=payment.razorpay_payment_id,
                               idempotency_key=new_idempotency_key(), **common))
            remaining -= part
            if remaining == 0:
                break
    # Paid at the desk, or a part below Razorpay's minimum: it goes to the wallet.
    to_wallet += remaining
    if to_wallet:
        rows.insert(0, Refund(amount=to_wallet, destination=WALLET, status=PROCESSED,
                              processed_at=now, idempotency_key=new_idempotency_key(),
                              **common))
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
    wallet = sum(r.amount for r in rows if r.destination == WALLET)
    gateway = sum(r.amount for r in rows if r.destination == GATEWAY)
    return [credit(chart.patient_wallet(patient_id), wallet),
            credit(chart.REFUNDS_PAYABLE, gateway)]


def _post_cancellation(item, cancellation, rows):
    """docs/ledger.md "cancellation with refund R", GST reversed pro rata (docs/refunds.md):
    the item is unwound; what is kept is cancellation revenue net of its GST."""
    paid, refund = item.paid_amount, cancellation.refund
    kept = paid - refund
    gst_stays = gst_kept(item.gst, paid, kept)
    cancellation.gst_reversed = item.gst - gst_stays
    lines = [debit(chart.UNEARNED_FEES, item.fee), debit(chart.PLATFORM_REVENUE, item.platform_fee),
             debit(chart.GST_PAYABLE, item.gst - gst_stays),
             credit(chart.DISCOUNTS, item.discount_share),
             *_split_lines(rows, item.visit.patient_id),
             credit(chart.CANCELLATION_REVENUE, kept - gst_stays)]
    if item.total == 0:
        return None
    return post("booking_cancelled", lines, reference=("booking", item.id),
                idempotency_key=f"cancel:{item.id}",
                memo=f"cancellation of booking {item.id} ({cancellation.rule})")


def _post_penalty(cancellation, provider_id, amount):
    return post("provider_penalty",
                [debit(chart.provider_payable(provider_id), amount),
                 credit(chart.PENALTY_REVENUE, amount)],
                reference=("cancellation", cancellation.id),
                idempotency_key=f"penalty:{cancellation.id}",
                memo=f"provider cancellation penalty, booking {cancellation.booking_id}")


def _post_extra_refund(item, cancellation, approval, rows, extra):
    """A further refund after the cancellation (an approved override): taken back from
    cancellation revenue, with the GST that no longer stays payable."""
    paid = item.paid_amount
    kept_before = paid - (item.refunded_amount - extra)
    kept_after = kept_before - extra
    delta_gst = gst_kept(item.gst, paid, kept_before) - gst_kept(item.gst, paid, kept_after)
    cancellation.gst_reversed += delta_gst
    return post("refund_override",
                [debit(chart.GST_PAYABLE, delta_gst),
                 debit(chart.CANCELLATION_REVENUE, extra - delta_gst),
                 *_split_lines(rows, item.visit.patient_id)],
                reference=("booking", item.id), idempotency_key=f"refund_extra:{approval.id}",
                memo=f"approved refund override {approval.id}")


def _fee_refunds_due(item):
    """Reschedule fees the patient paid for this booking and has not had back."""
    from portal.booking.reschedule import DONE, Reschedule
    refunded = sa.select(Refund.reschedule_id).where(Refund.reschedule_id.is_not(None))
    return db.session.scalars(sa.select(Reschedule).where(
        Reschedule.booking_id == item.id, Reschedule.status == DONE, Reschedule.total > 0,
        Reschedule.id.not_in(refunded)).order_by(Reschedule.id)).all()


def reschedule_fees_refundable(item, kind):
    """Paise of reschedule fees a cancellation of this kind gives back."""
    return sum(r.total for r in _fee_refunds_due(item)) \
        if rules.gives_back_reschedule_fees(kind) else 0


def _refund_reschedule_fees(item, cancellation, actor, prefer_wallet, now):
    """Give back every paid reschedule fee of the item: the fee posting is unwound (the
    provider's share, commission, platform fee and GST) into the wallet — the way a
    wallet or desk fee came in, or by choice — or ``refunds_payable`` for a Razorpay
    refund of the fee's own payment. Returns the refund rows."""
    from portal.booking.reschedule import PAY_GATEWAY
    rows = []
    for resched in _fee_refunds_due(item):
        online = resched.pay_with == PAY_GATEWAY and resched.razorpay_payment_id and \
            not prefer_wallet and resched.total >= GATEWAY_MINIMUM
        row = Refund(booking_id=item.id, visit_id=item.master_id,
                     patient_id=item.visit.patient_id, cancellation=cancellation,
                     reschedule_id=resched.id, amount=resched.total,
                     destination=GATEWAY if online else WALLET,
                     status=PENDING if online else PROCESSED,
                     processed_at=None if online else now,
                     razorpay_payment_id=resched.razorpay_payment_id if online else None,
                     idempotency_key=new_idempotency_key(),
                     created_by_id=getattr(actor, "id", None))
        db.session.add(row)
        db.session.flush()
        fee_txn = next(t for t in ledger_entries_for("reschedule", resched.id)
                       if t.kind == "reschedule_fee")
        lines = [(e.account.code, -e.amount) for e in fee_txn.entries if e.amount < 0]
        lines.append(credit(chart.REFUNDS_PAYABLE if online
                            else chart.patient_wallet(item.visit.patient_id), resched.total))
        post("reschedule_fee_refund", lines, reference=("reschedule", resched.id),
             idempotency_key=f"reschedule_refund:{resched.id}",
             memo=f"reschedule fee given back, booking {item.id}")
        rows.append(row)
    return rows


# --- previews ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemPreview:
    item: IndividualBooking
    allowed: bool
    message: str
    refund: int
    calculated: int
    refundable: int
    to_wallet: int
    to_gateway: int
    penalty: int
    rule: str
    rule_text: str
    needs_second_admin: bool = False
    fee_refund: int = 0  # reschedule fees given back as well (provider / clinic)


@dataclass(frozen=True)
class Preview:
    items: list
    prefer_wallet: bool

    @property
    def selected_allowed(self):
        return [p for p in self.items if p.allowed]

    @property
    def total_refund(self):
        return sum(p.refund for p in self.items if p.allowed)

    @property
    def to_wallet(self):
        return sum(p.to_wallet for p in self.items if p.allowed)

    @property
    def to_gateway(self):
        return sum(p.to_gateway for p in self.items if p.allowed)

    @property
    def refused(self):
        return [p for p in self.items if not p.allowed]


def _state_refusal(item):
    if item.status == BookingStatus.CANCELLED:
        return MSG_ALREADY
    if item.status in (BookingStatus.STARTED, BookingStatus.COMPLETED):
        return MSG_STARTED
    if item.status != BookingStatus.CONFIRMED:
        return MSG_NOT_CONFIRMED
    return None


def _evaluate(item, kind, now, *, override=None, override_reason=None, prefer_wallet=False):
    refusal = _state_refusal(item)
    if refusal:
        return ItemPreview(item, False, refusal, 0, 0, 0, 0, 0, 0, "state", "")
    result = rules.refund_for_cancellation(
        kind, _hours(item, now), item.paid_amount, item.refunded_amount, item.is_team,
        lifecycle.policy(), override, override_reason=override_reason)
    refund_now = result.refund if result.allowed else (
        result.calculated if result.needs_second_admin else 0)
    split = plan_split(item, refund_now, prefer_wallet) if (
        result.allowed or result.needs_second_admin) else Split(0, 0)
    allowed = result.allowed or result.needs_second_admin
    message = result.message
    if result.needs_second_admin:
        message = (f"{format_inr(result.calculated)} now; {format_inr(override)} needs a "
                   f"second administrator's approval")
    return ItemPreview(item, allowed, message, refund_now, result.calculated,
                       result.refundable, split.to_wallet, split.to_gateway,
                       result.provider_penalty, result.rule, tier_text(result.rule),
                       result.needs_second_admin,
                       reschedule_fees_refundable(item, kind) if allowed else 0)


def _patient_visit(patient, visit_id):
    visit = db.session.get(MasterBooking, visit_id) if visit_id is not None else None
    if visit is None or _role(patient) != PATIENT or visit.patient_id != patient.id:
        raise NotFound("visit")
    return visit


def cancellable_items(visit):
    """Items the page offers (confirmed ones), in start order."""
    return [i for i in visit.items if i.status == BookingStatus.CONFIRMED]


def preview_cancellation(actor, visit_id, item_ids=None, prefer_wallet=False, now=None):
    """What cancelling these items (default: every confirmed item) would refund, item by
    item, under the patient's tier — read only."""
    visit = _patient_visit(actor, visit_id)
    now = now or utcnow()
    chosen = set(int(i) for i in item_ids) if item_ids is not None else None
    items = [i for i in visit.items if chosen is None and i.status == BookingStatus.CONFIRMED
             or chosen is not None and i.id in chosen]
    if chosen is not None and len(items) != len(chosen):
        raise NotFound("booking")
    return Preview([_evaluate(i, "patient", now, prefer_wallet=prefer_wallet) for i in items],
                   prefer_wallet)


def preview_admin(admin, item_id, mode="patient", override=None, override_reason=None,
                  prefer_wallet=False, now=None):
    _require_admin(admin)
    item = _item_for_admin_or_provider(item_id)
    kind = ADMIN_MODES.get(mode)
    if kind is None:
        raise CancellationError(MSG_MODE, field="mode")
    return _evaluate(item, kind, now or utcnow(), override=override,
                     override_reason=override_reason, prefer_wallet=prefer_wallet)


# --- cancelling ----------------------------------------------------------------------------

def _cancel_locked(actor, item, kind, *, reason, prefer_wallet, now, override=None,
                   override_reason=None, penalty_provider_id=None):
    """Cancel one locked item inside the caller's transaction. Returns the Cancellation."""
    refusal = _state_refusal(item)
    if refusal:
        raise CancellationError(refusal, field="items")
    result = rules.refund_for_cancellation(
        kind, _hours(item, now), item.paid_amount, item.refunded_amount, item.is_team,
        lifecycle.policy(), override, override_reason=override_reason)
    approval_amount = None
    if result.allowed:
        refund_now = result.refund
    elif result.needs_second_admin:
        refund_now, approval_amount = result.calculated, override
    else:
        field = "override" if result.rule == "override_refused" else "items"
        raise CancellationError(result.message, field=field)
    before = item.status
    try:
        lifecycle.move(item, BookingStatus.CANCELLED)
    except InvalidTransition:
        raise CancellationError(MSG_ALREADY, field="items") from None
    claims.release(item)
    cancellation = Cancellation(
        booking_id=item.id, visit_id=item.master_id, actor_kind=kind, rule=result.rule,
        requested_by_id=getattr(actor, "id", None), reason=(reason or "").strip()[:2000],
        notice_minutes=int(_hours(item, now).total_seconds() // 60), paid=item.paid_amount,
        calculated=result.calculated, refund=refund_now, penalty=result.provider_penalty,
        penalty_provider_id=penalty_provider_id if result.provider_penalty else None,
        prefer_wallet=bool(prefer_wallet), created_at=now)
    db.session.add(cancellation)
    db.session.flush()
    rows = _make_refunds(item, refund_now, prefer_wallet, actor=actor,
                         cancellation=cancellation, now=now) if refund_now else []
    item.refunded_amount += refund_now
    _post_cancellation(item, cancellation, rows)
    if result.provider_penalty:
        _post_penalty(cancellation, penalty_provider_id, result.provider_penalty)
    fee_rows = _refund_reschedule_fees(item, cancellation, actor, prefer_wallet, now) \
        if rules.gives_back_reschedule_fees(kind) else []
    _withdraw_reminders(item.id)
    record(actor, "booking.cancel", "booking", item.id, before={"status": before},
           after={"status": item.status, "by": kind, "rule": result.rule,
                  "refund": refund_now, "penalty": result.provider_penalty,
                  "refunds": [(r.id, r.destination, r.amount) for r in rows],
                  "reschedule_fee_refunds": [(r.id, r.destination, r.amount)
                                             for r in fee_rows],
                  "reason": cancellation.reason})
    for row in rows + fee_rows:
        if row.destination == GATEWAY:
            jobs.enqueue("refunds.execute", refund_id=row.id, dedupe_key=f"refund-exec:{row.id}")
    jobs.enqueue("refunds.booking_cancelled", booking_id=item.id, by=_by_word(kind),
                 refund=refund_now + sum(r.amount for r in fee_rows),
                 reason=cancellation.reason or None,
                 dedupe_key=f"booking-cancelled:{item.id}")
    if approval_amount is not None:
        _request_approval(actor, item, cancellation, approval_amount, result.calculated,
                          override_reason)
    return cancellation


def _by_word(kind):
    return {"patient": "patient", "provider": "provider"}.get(kind, "clinic")


def _withdraw_reminders(booking_id):
    """Reminders withdrawn in the cancelling transaction (the notify capability)."""
    from portal.notify import withdraw_reminders
    withdraw_reminders(booking_id, "booking cancelled")


def _request_approval(admin, item, cancellation, override, calculated, reason,
                      prefer_wallet=None):
    approval = RefundApproval(booking_id=item.id, cancellation_id=cancellation.id,
                              requested_by_id=admin.id, override_amount=override,
                              calculated=calculated, extra=override - calculated,
                              reason=(reason or "").strip(), prefer_wallet=prefer_wallet,
                              status=APPROVAL_PENDING)
    db.session.add(approval)
    db.session.flush()
    record(admin, "refund.override_requested", "booking", item.id,
           after={"approval_id": approval.id, "override": override, "calculated": calculated,
                  "reason": approval.reason})
    jobs.enqueue("refunds.approval_alert", approval_id=approval.id,
                 dedupe_key=f"refund-approval:{approval.id}")
    return approval


def _finish(visit):
    lifecycle.refresh_status(visit)


def cancel_items_as_patient(patient, visit_id, item_ids, prefer_wallet=False, reason="",
                            now=None):
    """The patient cancels one or several confirmed items of their visit. All or nothing:
    one refused item (within 24 h, a team appointment, already cancelled) refuses the
    request with the policy's message."""
    ids = sorted({int(i) for i in (item_ids or [])})
    if not ids:
        raise CancellationError(MSG_NO_ITEMS, field="items")
    with _rollback_on_error(), claims.serialized():
        visit = _patient_visit(patient, visit_id)
        visit = lifecycle.lock_visit(visit.id)
        items = _lock_items(visit.id)
        if any(i not in items for i in ids):
            raise NotFound("booking")
        now = now or utcnow()
        done = [_cancel_locked(patient, items[i], "patient", reason=reason,
                               prefer_wallet=prefer_wallet, now=now) for i in ids]
        _finish(visit)
        db.session.commit()
    return done


def cancel_as_provider(provider_user, item_id, reason, now=None):
    """The provider cancels their own booking before the start: a full refund and the
    policy's penalty on their payable."""
    from portal.catalog.service import provider_for_user
    if _role(provider_user) != PROVIDER:
        raise PermissionDenied("Only providers can do this.")
    if not (reason or "").strip():
        raise CancellationError(MSG_REASON, field="reason")
    with _rollback_on_error(), claims.serialized():
        provider = provider_for_user(provider_user)
        item = _item_for_admin_or_provider(item_id)
        if provider is None or provider.id not in {p.id for p in item.providers}:
            raise NotFound("booking")
        visit = lifecycle.lock_visit(item.master_id)
        item = _lock_items(visit.id)[item.id]
        done = _cancel_locked(provider_user, item, "provider", reason=reason,
                              prefer_wallet=False, now=now or utcnow(),
                              penalty_provider_id=provider.id)
        _finish(visit)
        db.session.commit()
    return done


def cancel_as_admin(admin, item_id, reason, mode="patient", override=None, prefer_wallet=False,
                    penalty_provider_id=None, now=None):
    """An administrator cancels: for the patient (the patient's tier, or 50 % − ₹250 within
    24 h), for the clinic (100 %), or for the provider (100 % and the penalty). ``override``
    (paise, with a reason of at least the policy's note length) sets the refund; above
    the calculated amount the item is cancelled with the calculated refund now and the
    rest waits for a second administrator."""
    _require_admin(admin)
    kind = ADMIN_MODES.get(mode)
    if kind is None:
        raise CancellationError(MSG_MODE, field="mode")
    if not (reason or "").strip():
        raise CancellationError(MSG_REASON, field="reason")
    with _rollback_on_error(), claims.serialized():
        item = _item_for_admin_or_provider(item_id)
        if kind == "provider":
            ids = [p.id for p in item.providers]
            if penalty_provider_id is None and len(ids) == 1:
                penalty_provider_id = ids[0]
            if penalty_provider_id not in ids:
                raise CancellationError(MSG_PENALTY_PROVIDER, field="penalty_provider")
        visit = lifecycle.lock_visit(item.master_id)
        item = _lock_items(visit.id)[item.id]
        done = _cancel_locked(admin, item, kind, reason=reason, prefer_wallet=prefer_wallet,
                              now=now or utcnow(), override=override,
                              override_reason=reason if override is not None else None,
                              penalty_provider_id=penalty_provider_id)
        _finish(visit)
        db.session.commit()
    return done


# --- second-admin approval -----------------------------------------------------------------

def pending_approvals():
    return db.session.scalars(sa.select(RefundApproval)
                              .where(RefundApproval.status == APPROVAL_PENDING)
                              .order_by(RefundApproval.created_at, RefundApproval.id)).all()


def _decide(admin, approval_id):
    _require_admin(admin)
    approval = db.session.scalar(_lock_query(
        sa.select(RefundApproval).where(RefundApproval.id == approval_id)))
    if approval is None:
        raise NotFound("approval")
    if approval.status != APPROVAL_PENDING:
        raise CancellationError(MSG_DECIDED)
    if approval.requested_by_id == admin.id:
        raise PermissionDenied(MSG_SECOND_ADMIN)
    return approval


def request_further_refund(admin, item_id, amount, reason, prefer_wallet=None, now=None):
    """More money back for an item already cancelled (goodwill, a mistake corrected): up
    to paid − already refunded, with a reason of the policy's note length. It is above the
    amount the cancellation calculated, so it always waits for a second administrator
    (``approve_override`` pays it). ``prefer_wallet`` None: the cancellation's choice."""
    _require_admin(admin)
    reason = (reason or "").strip()
    if len(reason) < lifecycle.policy().note_min_length:
        raise CancellationError(rules.MSG_OVERRIDE_NOTE, field="reason")
    if amount is None or amount <= 0:
        raise CancellationError(MSG_FURTHER_AMOUNT, field="amount")
    with _rollback_on_error(), claims.serialized():
        item = _item_for_admin_or_provider(item_id)
        lifecycle.lock_visit(item.master_id)
        item = _lock_items(item.master_id)[item.id]
        cancellation = cancellation_for(item.id)
        if item.status != BookingStatus.CANCELLED or cancellation is None:
            raise CancellationError(MSG_FURTHER_NOT_CANCELLED, field="amount")
        if amount > item.refundable:
            raise CancellationError(MSG_FURTHER_TOO_MUCH.format(left=format_inr(item.refundable)),
                                    field="amount")
        if any(a.booking_id == item.id for a in pending_approvals()):
            raise CancellationError(MSG_FURTHER_PENDING, field="amount")
        approval = _request_approval(admin, item, cancellation,
                                     item.refunded_amount + amount, item.refunded_amount,
                                     reason, prefer_wallet=prefer_wallet)
        db.session.commit()
    return approval


def approve_override(admin, approval_id, note=None, now=None):
    """A second administrator approves: the extra amount is refunded now (never beyond
    paid − already refunded)."""
    with _rollback_on_error(), claims.serialized():
        approval = _decide(admin, approval_id)
        item = approval.booking
        lifecycle.lock_visit(item.master_id)
        item = _lock_items(item.master_id)[item.id]
        cancellation = approval.cancellation
        extra = min(approval.extra, item.refundable)
        if extra <= 0:
            raise CancellationError(MSG_NOTHING_LEFT)
        now = now or utcnow()
        prefer_wallet = cancellation.prefer_wallet if approval.prefer_wallet is None \
            else approval.prefer_wallet
        rows = _make_refunds(item, extra, prefer_wallet, actor=admin,
                             cancellation=cancellation, approval=approval, now=now)
        item.refunded_amount += extra
        _post_extra_refund(item, cancellation, approval, rows, extra)
        approval.status, approval.decided_by_id, approval.decided_at = APPROVED, admin.id, now
        approval.decision_note = (note or "").strip() or None
        record(admin, "refund.override_approved", "booking", item.id,
               after={"approval_id": approval.id, "extra": extra,
                      "refunds": [(r.id, r.destination, r.amount) for r in rows]})
        for row in rows:
            if row.destination == GATEWAY:
                jobs.enqueue("refunds.execute", refund_id=row.id,
                             dedupe_key=f"refund-exec:{row.id}")
        jobs.enqueue("refunds.refund_notice", booking_id=item.id, amount=extra,
                     dedupe_key=f"refund-extra-notice:{approval.id}")
        db.session.commit()
    return approval


def reject_override(admin, approval_id, note=None, now=None):
    with _rollback_on_error():
        approval = _decide(admin, approval_id)
        approval.status, approval.decided_by_id = REJECTED, admin.id
        approval.decided_at = now or utcnow()
        approval.decision_note = (note or "").strip() or None
        record(admin, "refund.override_rejected", "booking", approval.booking_id,
               after={"approval_id": approval.id, "note": approval.decision_note})
        db.session.commit()
    return approval


# --- executing gateway refunds -------------------------------------------------------------

def _notes(refund):
    return {"portal_refund": str(refund.id), "booking": str(refund.booking_id)}


def execute_refund(refund_id, now=None):
    """Ask Razorpay for one PENDING gateway refund (the refund's own idempotency key on
    every attempt). Network trouble: try again later (same key), then FAILED and an
    alert after ``max_attempts()``; a refusal: FAILED and an alert at once. Runs in the
    caller's transaction (a job's); does not commit."""
    from portal.gateway import BadRequest, GatewayUnavailable, get_payin
    refund = _lock_refund(refund_id)
    if refund is None or refund.destination != GATEWAY or refund.status != PENDING or \
            refund.superseded or refund.razorpay_refund_id:
        return refund
    now = now or utcnow()
    refund.attempts += 1
    try:
        answer = get_payin().create_refund(refund.razorpay_payment_id, refund.amount,
                                           refund.idempotency_key, notes=_notes(refund))
    except GatewayUnavailable as exc:
        refund.failure_reason = str(exc)[:500]
        if refund.attempts >= max_attempts():
            _fail(refund, f"Razorpay could not be reached: {exc}"[:500], now)
        else:
            refund.next_retry_at = now + retry_delay(refund.attempts)
        record(None, "refund.attempt_failed", "refund", refund.id,
               after={"attempt": refund.attempts, "error": str(exc)[:200],
                      "retryable": True})
        return refund
    except BadRequest as exc:
        record(None, "refund.refused", "refund", refund.id, after={"error": str(exc)[:200]})
        _fail(refund, f"Razorpay refused the refund: {exc.description or exc}"[:500], now)
        return refund
    refund.next_retry_at = None
    refund.failure_reason = None
    apply_gateway_refund(refund, answer, now=now)
    return refund


def apply_gateway_refund(refund, entity, now=None):
    """Razorpay's view of a refund (create answer, fetch, webhook) applied to our row;
    any order, any repetition. Does not commit."""
    rid = entity.get("id")
    if rid and refund.razorpay_refund_id is None:
        refund.razorpay_refund_id = rid
    elif rid and refund.razorpay_refund_id != rid:
        log.warning("refund %s: Razorpay refund %s is not ours (%s)", refund.id, rid,
                    refund.razorpay_refund_id)
        return refund
    status = entity.get("status")
    if status == "processed":
        mark_processed(refund, now)
    elif status == "failed":
        _failed_at_gateway(refund, now)
    else:
        refund.updated_at = now or utcnow()
    return refund


def mark_processed(refund, now=None):
    if refund.status == PROCESSED:
        return refund
    if refund.superseded:  # replaced by a retry or the wallet: never pay twice
        log.error("refund %s processed after it was replaced; check with Razorpay", refund.id)
        record(None, "refund.processed_after_replaced", "refund", refund.id)
        return refund
    if refund.status == FAILED:  # e.g. an admin retried before the late success arrived
        log.warning("refund %s processed after being marked failed", refund.id)
        refund.status = str(RefundStatus.PENDING)
    refund.status = str(REFUND.transition(refund.status, RefundStatus.PROCESSED))
    refund.processed_at = now or utcnow()
    refund.failure_reason = None
    post("refund_processed",
         [debit(chart.REFUNDS_PAYABLE, refund.amount), credit(chart.GATEWAY_CLEARING, refund.amount)],
         reference=("refund", refund.id), idempotency_key=f"refund:{refund.id}:processed")
    record(None, "refund.processed", "refund", refund.id,
           after={"razorpay_refund_id": refund.razorpay_refund_id, "amount": refund.amount})
    jobs.enqueue("refunds.refund_processed_notice", refund_id=refund.id,
                 dedupe_key=f"refund-processed:{refund.id}")
    return refund


def _fail(refund, reason, now=None):
    """PENDING → FAILED (our side gave up, or Razorpay said no): admins are alerted."""
    if refund.status == FAILED:
        return refund
    refund.status = str(REFUND.transition(refund.status, RefundStatus.FAILED))
    refund.failure_reason = reason[:500]
    refund.next_retry_at = None
    record(None, "refund.failed", "refund", refund.id, after={"reason": refund.failure_reason})
    if not refund.alerted:
        refund.alerted = True
        jobs.enqueue("refunds.failed_alert", refund_id=refund.id,
                     dedupe_key=f"refund-failed-alert:{refund.id}")
    return refund


def _chain_length(refund):
    n, current = 1, refund
    while current.retry_of_id is not None:
        current = db.session.get(Refund, current.retry_of_id)
        n += 1
    return n


def _successor(refund, actor=None):
    """A new refund (new idempotency key) for a refund Razorpay marked failed; the old
    row stays FAILED and superseded. The ledger is untouched (refunds_payable holds it)."""
    refund.superseded = True
    db.session.flush()  # the old row leaves the totals before the new one is counted
    new = Refund(booking_id=refund.booking_id, visit_id=refund.visit_id,
                 patient_id=refund.patient_id, cancellation_id=refund.cancellation_id,
                 approval_id=refund.approval_id, reschedule_id=refund.reschedule_id,
                 amount=refund.amount, destination=GATEWAY,
                 status=PENDING, payment_id=refund.payment_id,
                 razorpay_payment_id=refund.razorpay_payment_id,
                 idempotency_key=new_idempotency_key(), retry_of_id=refund.id,
                 created_by_id=getattr(actor, "id", None))
    db.session.add(new)
    db.session.flush()
    jobs.enqueue("refunds.execute", refund_id=new.id, dedupe_key=f"refund-exec:{new.id}")
    return new


def _failed_at_gateway(refund, now=None):
    """``refund.failed``: retried automatically as a new refund while the chain is
    shorter than ``max_attempts()``, then FAILED for an admin (alerted)."""
    if refund.status != PENDING:
        return refund
    record(None, "refund.failed_at_gateway", "refund", refund.id,
           after={"razorpay_refund_id": refund.razorpay_refund_id})
    attempts = _chain_length(refund)
    if attempts < max_attempts():
        refund.status = str(REFUND.transition(refund.status, RefundStatus.FAILED))
        refund.failure_reason = "Razorpay reported the refund as failed; retried"
        _successor(refund)
        return refund
    return _fail(refund, f"Razorpay reported the refund as failed ({attempts} attempts)", now)


def sync_refund(refund_id, now=None):
    """Fetch a straggler (PENDING with a Razorpay id) and apply its status. No commit."""
    from portal.gateway import GatewayError, get_payin
    refund = _lock_refund(refund_id)
    if refund is None or refund.status != PENDING or not refund.razorpay_refund_id:
        return refund
    try:
        entity = get_payin().fetch_refund(refund.razorpay_refund_id)
    except GatewayError as exc:
        log.info("refund %s not fetched: %s", refund.id, exc)
        return refund
    return apply_gateway_refund(refund, entity, now=now)


def find_refund_for(entity):
    """Our row for a Razorpay refund entity: by its id, else by our id in its notes."""
    rid = entity.get("id")
    if rid:
        found = db.session.scalar(sa.select(Refund.id).where(Refund.razorpay_refund_id == rid))
        if found is not None:
            return _lock_refund(found)
    ref = (entity.get("notes") or {}).get("portal_refund") if isinstance(
        entity.get("notes"), dict) else None
    if ref and str(ref).isdigit():
        refund = _lock_refund(int(ref))
        if refund is not None and refund.razorpay_payment_id == entity.get("payment_id"):
            return refund
    return None


# --- admin actions on failed refunds -------------------------------------------------------

def list_refunds(status=None, page=1, per_page=30):
    query = sa.select(Refund).order_by(Refund.created_at.desc(), Refund.id.desc())
    if status:
        query = query.where(Refund.status == status)
    return db.paginate(query, page=max(int(page or 1), 1), per_page=per_page, error_out=False)


def _failed_refund(admin, refund_id):
    _require_admin(admin)
    refund = _lock_refund(refund_id)
    if refund is None:
        raise NotFound("refund")
    if refund.status != FAILED or refund.superseded or refund.destination != GATEWAY:
        raise CancellationError(MSG_NOT_FAILED)
    return refund


def retry_refund(admin, refund_id):
    """Try a failed gateway refund again: the same key when Razorpay never gave it an id
    (it may exist there: the key finds it), a new refund when Razorpay failed it."""
    with _rollback_on_error():
        refund = _failed_refund(admin, refund_id)
        if refund.razorpay_refund_id:
            target = _successor(refund, admin)
        else:
            refund.status = str(REFUND.transition(refund.status, RefundStatus.PENDING))
            refund.attempts, refund.failure_reason, refund.alerted = 0, None, False
            refund.next_retry_at = None
            target = refund
            jobs.enqueue("refunds.execute", refund_id=refund.id)
        record(admin, "refund.retry", "refund", refund.id, after={"refund_id": target.id})
        db.session.commit()
    return target


def refund_to_wallet(admin, refund_id, note=""):
    """Give up on the gateway for a failed refund: the amount goes to the wallet now."""
    with _rollback_on_error():
        refund = _failed_refund(admin, refund_id)
        refund.superseded = True
        db.session.flush()
        wallet = Refund(booking_id=refund.booking_id, visit_id=refund.visit_id,
                        patient_id=refund.patient_id, cancellation_id=refund.cancellation_id,
                        approval_id=refund.approval_id, reschedule_id=refund.reschedule_id,
                        amount=refund.amount,
                        destination=WALLET, status=PROCESSED, processed_at=utcnow(),
                        idempotency_key=new_idempotency_key(), retry_of_id=refund.id,
                        created_by_id=admin.id)
        db.session.add(wallet)
        db.session.flush()
        post("refund_to_wallet",
             [debit(chart.REFUNDS_PAYABLE, refund.amount),
              credit(chart.patient_wallet(refund.patient_id), refund.amount)],
             reference=("refund", refund.id), idempotency_key=f"refund:{refund.id}:to_wallet")
        record(admin, "refund.to_wallet", "refund", refund.id,
               after={"wallet_refund_id": wallet.id, "note": (note or "").strip()})
        jobs.enqueue("refunds.refund_processed_notice", refund_id=wallet.id,
                     dedupe_key=f"refund-processed:{wallet.id}")
        db.session.commit()
    return wallet


# --- reading -------------------------------------------------------------------------------

def refunds_for_visit(visit_id):
    return db.session.scalars(sa.select(Refund).where(Refund.visit_id == visit_id)
                              .order_by(Refund.id)).all()


def cancellation_for(item_id):
    return db.session.scalar(sa.select(Cancellation).where(Cancellation.booking_id == item_id))


__all__ = ["CancellationError", "preview_cancellation", "preview_admin",
           "cancel_items_as_patient", "cancel_as_provider", "cancel_as_admin",
           "request_further_refund", "approve_override", "reject_override", "execute_refund", "sync_refund",
           "apply_gateway_refund", "retry_refund", "refund_to_wallet", "list_refunds",
           "pending_approvals", "refunds_for_visit", "Refund", "Cancellation",
           "RefundApproval", "WALLET", "GATEWAY", "PENDING", "PROCESSED", "FAILED",
           "APPROVED", "REJECTED"]


# The capability's jobs and webhook handlers register on import (until create_app lists
# portal.refunds.tasks in CAPABILITIES): the use cases above enqueue them.
from portal.refunds import tasks as _tasks  # noqa: E402,F401
