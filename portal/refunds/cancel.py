"""Cancelling confirmed bookings (POLICY.md "Cancellation and refunds"; docs/refunds.md):
by the patient (one or several items of a visit, all or nothing), by the provider (a
full refund and a penalty), by an administrator (for the patient, the clinic or the
provider; an override above the calculated refund waits for a second administrator).

Each use case is one unit of work. Never twice: the visit and item rows are locked
(``FOR UPDATE`` on PostgreSQL; the claim lock on SQLite), the booking machine refuses
CANCELLED → CANCELLED, ``cancellations.booking_id`` is unique, every posting has an
idempotency key."""

from portal import events, jobs
from portal.accounts.models import PROVIDER
from portal.audit.service import record
from portal.booking import claims, holds, lifecycle
from portal.booking.errors import NotFound, PermissionDenied
from portal.catalog.providers import provider_for_user
from portal.db import unit_of_work, utcnow
from portal.domain import cancellation as rules
from portal.domain.rates import format_inr
from portal.domain.states import BookingStatus, InvalidTransition, RescheduleStatus
from portal.domain.text import Text
from portal.extensions import db
from portal.policies import store as policy_store
from portal.refunds.approvals import request_approval
from portal.refunds.common import (
    ADMIN_MODES,
    MSG_ADMIN_REFUND_UNSHOWN,
    MSG_ALREADY,
    MSG_MODE,
    MSG_NO_ITEMS,
    MSG_PENALTY_PROVIDER,
    MSG_REASON,
    MSG_REFUND_CHANGED,
    MSG_REFUND_UNSHOWN,
    CancellationError,
    hours,
    item_for_admin_or_provider,
    lock_items,
    require_admin,
    role,
    whole_paise,
)
from portal.refunds.models import GATEWAY, Cancellation
from portal.refunds.money import (
    make_refunds,
    post_cancellation,
    post_penalty,
    refund_reschedule_fees,
)
from portal.refunds.previews import patient_visit, state_refusal
from portal.refunds.shown import MSG_UNSHOWN, changed_since, stated


def _cancel_locked(
    actor,
    item,
    kind,
    *,
    reason,
    prefer_wallet,
    now,
    override=None,
    override_reason=None,
    penalty_provider_id=None,
):
    """Cancel one locked item inside the caller's unit of work. Returns the Cancellation."""
    refusal = state_refusal(item)
    if refusal:
        raise CancellationError(refusal, field="items")
    result = rules.refund_for_cancellation(
        kind,
        hours(item, now),
        item.paid_amount,
        item.refunded_amount,
        item.is_team,
        policy_store.for_booking(item),
        override,
        override_reason=override_reason,
    )
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
    # A move still waiting for its fee ends with the booking: nothing is held for it, the
    # patient is not told to choose its time again, and a fee paid for it later goes to
    # the wallet (review finding: it stayed open until the sweep).
    holds.close_pending_moves(item, RescheduleStatus.EXPIRED, holds.MSG_BOOKING_CANCELLED)
    cancellation = Cancellation(
        booking_id=item.id,
        visit_id=item.master_id,
        actor_kind=kind,
        rule=result.rule,
        requested_by_id=getattr(actor, "id", None),
        reason=(reason or "").strip()[:2000],
        notice_minutes=int(hours(item, now).total_seconds() // 60),
        paid=item.paid_amount,
        calculated=result.calculated,
        refund=refund_now,
        penalty=result.provider_penalty,
        # Whom a provider's cancellation was for, whatever the penalty: at ₹0 (a policy
        # without one) it was dropped, and the team's notices and the audit lost the name.
        penalty_provider_id=penalty_provider_id if kind == "provider" else None,
        prefer_wallet=bool(prefer_wallet),
        created_at=now,
    )
    db.session.add(cancellation)
    db.session.flush()
    rows = (
        make_refunds(
            item, refund_now, prefer_wallet, actor=actor, cancellation=cancellation, now=now
        )
        if refund_now
        else []
    )
    item.refunded_amount += refund_now
    post_cancellation(item, cancellation, rows)
    if result.provider_penalty:
        post_penalty(cancellation, penalty_provider_id, result.provider_penalty)
    fee_rows = (
        refund_reschedule_fees(item, cancellation, actor, prefer_wallet, now)
        if rules.gives_back_reschedule_fees(kind)
        else []
    )
    record(
        actor,
        "booking.cancel",
        "booking",
        item.id,
        before={"status": before},
        after={
            "status": item.status,
            "by": kind,
            "rule": result.rule,
            "refund": refund_now,
            "penalty": result.provider_penalty,
            "for_provider": cancellation.penalty_provider_id,
            "refunds": [(r.id, r.destination, r.amount) for r in rows],
            "reschedule_fee_refunds": [(r.id, r.destination, r.amount) for r in fee_rows],
            "reason": cancellation.reason,
        },
    )
    for row in rows + fee_rows:
        if row.destination == GATEWAY:
            jobs.enqueue("refunds.execute", refund_id=row.id, dedupe_key=f"refund-exec:{row.id}")
    events.booking_cancelled.send(
        "refunds",
        booking_id=item.id,
        by=_by_word(kind),
        refund=refund_now + sum(r.amount for r in fee_rows),
        reason=cancellation.reason or None,
    )
    if approval_amount is not None:
        request_approval(
            actor, item, cancellation, approval_amount, result.calculated, override_reason
        )
    return cancellation


def _by_word(kind):
    return {"patient": "patient", "provider": "provider"}.get(kind, "clinic")


def cancel_items_as_patient(
    patient, visit_id, item_ids, prefer_wallet=False, reason="", now=None, *, expected_refund
):
    """The patient cancels one or several confirmed items of their visit. All or nothing:
    one refused item (within 24 h, a team appointment, already cancelled) refuses the
    request with the policy's message. ``expected_refund`` (required): the total (paise)
    the patient was shown (``previews.preview_cancellation(...).total_refund``); another
    total (a tier's boundary passed meanwhile) refuses, and so does none (``None`` or not
    a whole number of paise): nothing cancelled, refunded or written."""
    ids = sorted({int(i) for i in (item_ids or [])})
    if not ids:
        raise CancellationError(MSG_NO_ITEMS, field="items")
    with claims.serialized(), unit_of_work():
        visit = patient_visit(patient, visit_id)
        visit = lifecycle.lock_visit(visit.id)
        items = lock_items(visit.id)
        if any(i not in items for i in ids):
            raise NotFound("booking")
        now = now or utcnow()
        done = [
            _cancel_locked(
                patient, items[i], "patient", reason=reason, prefer_wallet=prefer_wallet, now=now
            )
            for i in ids
        ]
        # Required, never defaulted: a caller without the refund shown would otherwise
        # skip the check and refund whatever is due now (review finding: only the web
        # form asked). Checked after each item's own refusal (within 24 h, a team
        # appointment), which tells the patient more; the unit of work rolls back.
        if not whole_paise(expected_refund):
            raise CancellationError(MSG_REFUND_UNSHOWN, field="items")
        refuse_if_changed(sum(c.refund for c in done), expected_refund, field="items")
        lifecycle.refresh_status(visit)
    return done


def refuse_if_changed(refund, expected_refund, field=None):
    """The refund the person was shown (``expected_refund``, whole paise: the caller has
    refused none) is the one about to be applied, or the use case is refused (its unit of
    work rolls back, nothing written): a tier's boundary passed while the page was open,
    so they confirm the new amount. The patient's and the administrator's cancellations
    alike."""
    if refund != expected_refund:
        raise CancellationError(
            Text(MSG_REFUND_CHANGED, now=format_inr(refund), was=format_inr(expected_refund)),
            field=field,
        )


def cancel_as_provider(provider_user, item_id, reason, now=None, *, shown):
    """The provider cancels their own booking before the start: a full refund and the
    policy's penalty on their payable. ``shown`` (required): what the cancel page stated
    (``refunds.shown.Shown``: start, refund, penalty; ``shown_for(item, preview)``); an
    appointment moved, or a refund or penalty changed, since is refused under the visit's
    lock, and so is none (``None``, or a figure missing or not a whole number): nothing
    cancelled, refunded or penalised."""
    if role(provider_user) != PROVIDER:
        raise PermissionDenied("Only providers can do this.")
    if not (reason or "").strip():
        raise CancellationError(MSG_REASON, field="reason")
    with claims.serialized(), unit_of_work():
        provider = provider_for_user(provider_user)
        item = item_for_admin_or_provider(item_id)
        if provider is None or provider.id not in {p.id for p in item.providers}:
            raise NotFound("booking")
        visit = lifecycle.lock_visit(item.master_id)
        item = lock_items(visit.id)[item.id]
        now = now or utcnow()
        shown = stated(shown)
        refusal = changed_since(item, shown, now) if shown is not None else None
        if refusal is not None:
            raise CancellationError(refusal, field="shown")
        done = _cancel_locked(
            provider_user,
            item,
            "provider",
            reason=reason,
            prefer_wallet=False,
            now=now,
            penalty_provider_id=provider.id,
        )
        # Required, never defaulted: without the terms shown the check above was skipped
        # and the appointment cancelled as it is now (a post without the hidden fields).
        # Refused after the item's own refusal (after the start), which tells the doctor
        # more; the unit of work rolls back.
        if shown is None:
            raise CancellationError(MSG_UNSHOWN, field="shown")
        lifecycle.refresh_status(visit)
    return done


def cancel_as_admin(
    admin,
    item_id,
    reason,
    mode="patient",
    override=None,
    prefer_wallet=False,
    penalty_provider_id=None,
    now=None,
    *,
    expected_refund,
):
    """An administrator cancels: for the patient (the patient's tier, or 50 % − ₹250 within
    24 h), for the clinic (100 %), or for the provider (100 % and the penalty). ``override``
    (paise, with a reason of at least the policy's note length) sets the refund; above
    the calculated amount the item is cancelled with the calculated refund now and the
    rest waits for a second administrator. ``expected_refund`` (required): the refund now
    (paise) the page showed for this mode and override (``previews.preview_admin(...)
    .refund``); another one (a tier's boundary passed meanwhile) refuses, and so does none
    (``None`` or not a whole number of paise): nothing cancelled, refunded or written."""
    require_admin(admin)
    kind = ADMIN_MODES.get(mode)
    if kind is None:
        raise CancellationError(MSG_MODE, field="mode")
    if not (reason or "").strip():
        raise CancellationError(MSG_REASON, field="reason")
    with claims.serialized(), unit_of_work():
        item = item_for_admin_or_provider(item_id)
        if kind == "provider":
            ids = [p.id for p in item.providers]
            if penalty_provider_id is None and len(ids) == 1:
                penalty_provider_id = ids[0]
            if penalty_provider_id not in ids:
                raise CancellationError(MSG_PENALTY_PROVIDER, field="penalty_provider")
        visit = lifecycle.lock_visit(item.master_id)
        item = lock_items(visit.id)[item.id]
        done = _cancel_locked(
            admin,
            item,
            kind,
            reason=reason,
            prefer_wallet=prefer_wallet,
            now=now or utcnow(),
            override=override,
            override_reason=reason if override is not None else None,
            penalty_provider_id=penalty_provider_id,
        )
        # Required, never defaulted: a post without ``shown_refund`` (or with one shown for
        # another mode) skipped the check and refunded whatever was due. Checked after the
        # item's own refusal (an override's note, already cancelled), which says more.
        if not whole_paise(expected_refund):
            raise CancellationError(MSG_ADMIN_REFUND_UNSHOWN)
        refuse_if_changed(done.refund, expected_refund)
        lifecycle.refresh_status(visit)
    return done
