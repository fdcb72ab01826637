"""Moving a confirmed booking to another slot, and rebooking an expired or cancelled one
(POLICY.md "Reschedule"; docs/refunds.md "Reschedule").

* ``quote(actor, item_id, admin_override=False)`` — the fee for this notice: penalty
  (0 / 10 / 20 % of F by tier, +5 points for a team), platform fee and GST on it.
* ``free_slots(item, from_date)`` — start times the booking could move to (its own time
  does not block it).
* ``reschedule(actor, item_id, new_start, pay_with=None, callback_url=None,
  admin_override=False, receipt_no=None, *, expected_fee, shown_start)`` —
  ``expected_fee`` is required: the fee (paise) the person was shown
  (``quote(...).total``; the web's ``MoveForm.confirmed_fee``). Every caller shows or
  computes one, so there is no way to move without the check: another fee now (a tier's
  boundary passed) is refused (``MSG_FEE_CHANGED``), ``None`` or a non-integer too
  (``MSG_FEE_UNSHOWN``), nothing charged, held or moved. ``shown_start`` is required too:
  the start the page showed (the web's ``MoveForm.confirmed_start``); a booking moved
  since (another tab, the desk) refuses (``MSG_MOVED``, naming where it is now), an
  unreadable one too (``MSG_START_UNSHOWN``): a page's move is never made twice. A zero
  fee moves at once; a fee is paid from the wallet or, by an admin, at the desk (moved
  at once, one transaction), or through a Razorpay checkout: the new time is then
  **held** (claims marked with the reschedule) until the order expires, and the booking
  moves when the payment is captured (callback or webhook, whichever is first). The old
  slot is released and the new one taken in one transaction; a slot taken meanwhile
  raises ``SlotUnavailable``. A newer request replaces a pending one (its hold is
  released; a payment for it arriving later goes to the wallet), and a payment arriving
  for a booking no longer at the start its move was asked from moves nothing either
  (``reschedule_payment``).
* ``reschedule_payment.complete_callback(params)`` / ``payment_captured(...)`` — the
  checkout came back (``portal.booking.reschedule_payment``).
* ``rebook(actor, item_id, new_start)`` — an expired or cancelled item again, at today's
  price: a new item in a new visit through ``service.add_item`` (then the usual checkout).

Ledger (docs/ledger.md "reschedule fee"): ``gateway_clearing`` / ``patient_wallet`` N + Pn
+ Gn against ``provider_payable`` N − cn (split over a team), ``commission_revenue`` cn,
``platform_revenue`` Pn, ``gst_payable`` Gn; key ``reschedule:<id>``.

Over 400 lines: quote, move and rebook share the slot checks; paying the fee is in
reschedule_payment.py."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal import events
from portal.accounts.models import ADMIN, PATIENT
from portal.audit.service import record
from portal.booking import claims, holds, invoices, lifecycle, visits
from portal.booking.errors import (
    BookingError,
    NotFound,
    PaymentError,
    PermissionDenied,
    SlotUnavailable,
)
from portal.booking.models import (
    LIVE_ITEM_STATUSES,
    PAY_DESK,
    PAY_GATEWAY,
    PAY_NONE,
    PAY_WALLET,
    IndividualBooking,
    Reschedule,
    SlotClaim,
    patient_subject,
    provider_subject,
)
from portal.booking.shown import start_text
from portal.catalog.slots import check_booking_slot, team_next_free_slots
from portal.db import unit_of_work, utcnow
from portal.domain import pricing
from portal.domain import reschedule as rules
from portal.domain.rates import apply_bps, format_inr
from portal.domain.slots import MSG_TAKEN
from portal.domain.states import RESCHEDULE, BookingStatus, RescheduleStatus
from portal.domain.text import Text
from portal.extensions import db
from portal.gateway import GatewayError, get_payin
from portal.i18n import N_
from portal.ledger import accounts as chart
from portal.ledger.service import InsufficientBalance, credit, debit, post
from portal.policies import store as policy_store

MSG_NOT_CONFIRMED = N_("Only confirmed appointments can be rescheduled")
MSG_SAME_SLOT = N_("Choose a different time")
MSG_PAY_WITH = N_("Choose how to pay the reschedule fee")
MSG_WALLET_LOW = N_("Insufficient wallet balance")
MSG_RECEIPT = N_("Enter the desk receipt number")
MSG_DESK_ADMIN = N_("Only the clinic's desk can take the fee in person")
MSG_ONLINE_PATIENT = N_(
    "Only the patient can pay online; take the fee from the wallet or at the desk"
)
# Razorpay's smallest order is ₹1: a fee under it is refused online, saying how else to
# pay it (before: Razorpay refused the order and the patient read MSG_GATEWAY_DOWN, for
# ever; review finding). The page does not offer online for it.
MSG_ONLINE_MINIMUM_FEE = N_(
    "Online payments start at %(minimum)s, so this fee of %(fee)s cannot be paid online: pay it"
    " from your wallet, or at the clinic's desk."
)
MSG_REPLACED = N_("Replaced by a newer reschedule request")
MSG_REBOOK_ONLY = N_("Only expired or cancelled appointments can be booked again")
MSG_GATEWAY_DOWN = N_("Payments are unavailable right now; please try again in a few minutes")
# The fee shown when the person chose is no longer the one due (a tier's boundary passed
# while the page was open): nothing is charged or moved until they confirm the new one.
# A move asked without the fee its page showed (or with it unreadable) is asked again:
# a move is charged only against a figure the person saw (the web's ``confirmed_fee``,
# and ``reschedule`` itself for any caller).
MSG_FEE_UNSHOWN = N_("Check the reschedule fee shown, then confirm the move again.")
MSG_FEE_CHANGED = N_(
    "The reschedule fee is now %(now)s, not the %(was)s shown: the appointment is closer to "
    "its start. Check the new fee and confirm again."
)
# The booking is no longer at the start the move page showed: another tab, the desk or
# the patient moved it meanwhile (review finding: both pages' moves were made, each
# charged). Nothing is moved or charged; the page is shown again as the booking is now.
MSG_MOVED = N_(
    "This appointment was moved to %(when)s after the page was shown, so nothing was moved "
    "or charged. Check the new time, then choose a time again."
)
MSG_START_UNSHOWN = N_("Check the appointment's time shown, then confirm the move again.")


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
    commission: [(provider id, share − commission)], total commission. The odd paisa goes
    to the lowest provider id first, as a completion's does (``domain.pricing.team_shares``;
    ``item.providers`` is in display-name order)."""
    out, commission = [], 0
    for provider, share in pricing.team_shares(penalty, list(item.providers)):
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
    return rules.reschedule_quote(
        item.fee,
        item.start_at - now,
        item.is_team,
        policy_store.for_booking(item),
        admin_override=admin_override,
        commission_bps=rate,
    )


# --- the new slot --------------------------------------------------------------------------


def _subjects(item):
    return [provider_subject(p.id) for p in item.providers] + [
        patient_subject(item.visit.patient_id, item.visit.dependent_id)
    ]


def _own_busy(item):
    """The booking's own busy intervals (its time, and a time it holds for a pending move),
    which must not block its own move."""
    spans = {(item.start_at, item.end_at)} | {
        (c.start_at, c.end_at) for c in item.claims if c.live and c.reschedule_id
    }
    return [(p.id, s, e) for p in item.providers for s, e in spans]


def check_slot(item, new_start, on_grid=False):
    """Every booking rule for the new start (the booking service's checks), ignoring the
    booking's own time. The booking keeps its own length (the service's may have changed
    since it was paid for). Returns the new end; raises BookingError / SlotUnavailable
    (the booking horizon too: a move, the patient's or an admin's, override or not, goes
    no further ahead than a hold). ``on_grid``: only a start the move page's list shows
    (the patient's move; a move whose fee came late was checked when asked). Another
    person's stale hold in the way stops :func:`reschedule` (its first run), to be cleared
    in a unit of work of its own before it runs again (``holds.in_the_way``); elsewhere
    it is in the way."""
    if getattr(new_start, "tzinfo", None) is None:
        raise BookingError("Choose a time", field="start_at")
    if new_start == item.start_at:
        raise BookingError(MSG_SAME_SLOT, field="start_at")
    length = item.end_at - item.start_at
    end = new_start + length
    subjects = _subjects(item)
    holds.in_the_way(subjects, new_start, end, keep_visit_id=item.master_id)
    messages = check_booking_slot(
        list(item.providers),
        item.service,
        item.clinic,
        new_start,
        exclude=_own_busy(item),
        duration=length,
        on_grid=on_grid,
    )
    if messages:
        if messages[0] == MSG_TAKEN:
            raise SlotUnavailable()
        raise BookingError(messages[0], field="start_at")
    taken = claims.conflicts(subjects, new_start, end, exclude_booking_ids=[item.id])
    if any(c.subject.startswith("provider:") for c in taken):
        raise SlotUnavailable()
    if taken:
        raise SlotUnavailable(Text(visits.MSG_PATIENT_BUSY, name=item.visit.for_name))
    return end


def free_slots(item, from_date, days=7, limit=12, now=None):
    """Start times (aware UTC) the booking could move to, from the local date ``from_date``
    (not its own current time)."""
    # Only a live booking's own time is its own to leave (and not a time to move to): an
    # expired or cancelled one's may be another booking's now, which must stay busy, or
    # free, to be booked again.
    live = item.status in LIVE_ITEM_STATUSES
    own = _own_busy(item) if live else ()
    slots = team_next_free_slots(
        list(item.providers),
        item.service,
        item.clinic,
        from_date,
        days=days,
        limit=limit + 1,
        now=now,
        exclude=own,
        # A live booking moves with its own length; a lapsed one is booked again as the
        # service is now (a new visit at today's price and length).
        duration=(item.end_at - item.start_at) if live else None,
    )
    return [s for s in slots if not live or s != item.start_at][:limit]


def move(item, new_start, new_end, resched=None):
    """Release the old claims and take the new ones (flushed by the caller): the claims
    held for ``resched`` become the booking's, else new claims are added."""
    held = [
        c for c in item.claims if resched is not None and c.reschedule_id == resched.id and c.live
    ]
    for claim in item.claims:
        if claim not in held:
            claim.live = False
    for claim in held:  # the booking's own claims from now on, no longer a hold
        claim.reschedule_id = None
    item.start_at, item.end_at = new_start, new_end
    if not held:
        subjects = _subjects(item)
        claims.lock_subjects(subjects)  # in a hold's order (the claims' trigger takes them too)
        for subject in subjects:
            item.claims.append(
                SlotClaim(subject=subject, start_at=new_start, end_at=new_end, live=True)
            )


# --- holding the new time while the fee is paid online --------------------------------------


def move_holds(item, resched):
    """Whether the booking is still where the move ``resched`` put it: confirmed, at the
    move's new start (a move since cancelled or superseded by one to another time does
    not; a notice of it would tell a time the booking no longer has). Without the move's
    row (a job queued before moves were keyed) the booking's time is the move's."""
    if item.status != BookingStatus.CONFIRMED:
        return False
    if resched is None or resched.booking_id != item.id:
        return True
    return resched.new_start == item.start_at


def _hold(item, resched):
    """Live claims on the new time, marked with the reschedule (flushed: a lost race
    raises SlotUnavailable). They become the booking's claims when the fee is captured."""
    subjects = _subjects(item)
    claims.lock_subjects(subjects)  # in a hold's order (the claims' trigger takes them too)
    for subject in subjects:
        item.claims.append(
            SlotClaim(
                subject=subject,
                start_at=resched.new_start,
                end_at=resched.new_end,
                live=True,
                reschedule_id=resched.id,
            )
        )
    claims.flush_claims()


def _supersede_pending(item):
    """Earlier unpaid requests for this booking give way to the new one."""
    holds.close_pending_moves(item, RescheduleStatus.EXPIRED, MSG_REPLACED)


def after_move(resched, item, actor):
    RESCHEDULE.move(resched, RescheduleStatus.DONE)
    resched.done_at = utcnow()
    record(
        actor,
        "booking.reschedule",
        "booking",
        item.id,
        before={"start_at": resched.old_start.isoformat()},
        after={
            "start_at": resched.new_start.isoformat(),
            "fee": resched.total,
            "pay_with": resched.pay_with,
            "reschedule_id": resched.id,
            "overridden": resched.overridden,
        },
    )
    events.booking_rescheduled.send(
        "booking", booking_id=item.id, reschedule_id=resched.id, old_start=resched.old_start
    )


def post_fee(resched, item, money_account, require_non_negative=()):
    """Post the fee, then number its document. Called after the move's lock on the time
    (the lock order, docs/booking.md): the number last, as a visit's invoice number is
    (``lifecycle.confirm``), so the clinic-wide counter row is never held while another
    lock is awaited."""
    if resched.total == 0:
        return None
    shares, commission = _commission_lines(item, resched.penalty)
    lines = [debit(money_account, resched.total)]
    lines += [credit(chart.provider_payable(pid), amount) for pid, amount in shares]
    lines += [
        credit(chart.COMMISSION_REVENUE, commission),
        credit(chart.PLATFORM_REVENUE, resched.platform_fee),
        credit(chart.GST_PAYABLE, resched.gst),
    ]
    txn = post(
        "reschedule_fee",
        lines,
        reference=("reschedule", resched.id),
        idempotency_key=f"reschedule:{resched.id}",
        memo=f"reschedule fee, booking {item.id}",
        require_non_negative=require_non_negative,
    )
    invoices.issue_fee(resched, item)
    return txn


# --- the use cases -------------------------------------------------------------------------


@dataclass
class RescheduleResult:
    reschedule: Reschedule
    redirect_url: str | None = None  # the checkout to pay the fee; None when moved
    form_action: str | None = None
    form_fields: dict | None = None

    @property
    def moved(self):
        return self.reschedule.status == RescheduleStatus.DONE


def lock(item):
    lifecycle.lock_visit(item.master_id)
    query = (
        sa.select(IndividualBooking)
        .where(IndividualBooking.id == item.id)
        .execution_options(populate_existing=True)
    )
    if claims.is_postgres():
        query = query.with_for_update()
    return db.session.scalar(query)


@holds.clears_stale_holds
def reschedule(
    actor,
    item_id,
    new_start,
    pay_with=None,
    callback_url=None,
    admin_override=False,
    receipt_no=None,
    now=None,
    *,
    expected_fee,
    shown_start,
):
    """Move a confirmed booking to ``new_start`` (see the module docstring).
    ``expected_fee`` (required): the fee (paise) the person was shown, from ``quote``;
    another one now (a tier's boundary passed meanwhile) refuses, and so does none
    (``None`` or not a whole number of paise): nothing charged, held or moved.
    ``shown_start`` (required): the booking's start the page showed (an aware datetime);
    the booking at another start now (moved meanwhile) refuses, and so does none.
    Another person's stale hold at the new time is cleared first, in a unit of work of its
    own, and the move asked again (``holds.clears_stale_holds``): never under this move's
    locks (docs/booking.md, lock order)."""
    # Required, never defaulted: a caller without a shown fee would otherwise skip the
    # check and charge whatever is due now (review finding: only the web forms checked).
    if isinstance(expected_fee, bool) or not isinstance(expected_fee, int):
        raise BookingError(MSG_FEE_UNSHOWN)
    if not isinstance(shown_start, datetime) or shown_start.tzinfo is None:
        raise BookingError(MSG_START_UNSHOWN)
    pay_with = (pay_with or "").upper() or None
    receipt_no = (receipt_no or "").strip()[:64] or None
    with claims.claiming(), unit_of_work():
        item = _item_for(actor, item_id)
        if admin_override and _role(actor) != ADMIN:
            raise PermissionDenied("Only administrators can override the reschedule rules.")
        item = lock(item)
        if item.status != BookingStatus.CONFIRMED:
            raise BookingError(MSG_NOT_CONFIRMED)
        # Under the visit's lock: of two moves from one page state, the second sees the
        # first's start (on PostgreSQL it waited for the first to commit).
        if item.start_at != shown_start:
            raise BookingError(Text(MSG_MOVED, when=start_text(item)))
        now = now or utcnow()
        q = _quote(item, admin_override, now)
        if not q.allowed:
            raise BookingError(q.message, field="start_at")
        if q.total != expected_fee:
            raise BookingError(
                Text(MSG_FEE_CHANGED, now=format_inr(q.total), was=format_inr(expected_fee))
            )
        _supersede_pending(item)  # rolled back with the rest if this request fails
        # The desk may move to a time off the list's grid, as it may book one (decision).
        new_end = check_slot(item, new_start, on_grid=_role(actor) != ADMIN)
        if q.total and pay_with not in (PAY_WALLET, PAY_GATEWAY, PAY_DESK):
            raise BookingError(MSG_PAY_WITH, field="pay_with")
        if q.total and pay_with == PAY_GATEWAY and _role(actor) != PATIENT:
            raise BookingError(MSG_ONLINE_PATIENT, field="pay_with")
        if q.total and pay_with == PAY_GATEWAY and not q.payable_online:
            raise BookingError(_online_minimum_refusal(q.total), field="pay_with")
        if q.total and pay_with == PAY_DESK:
            if _role(actor) != ADMIN:
                raise BookingError(MSG_DESK_ADMIN, field="pay_with")
            if not receipt_no:
                raise BookingError(MSG_RECEIPT, field="receipt_no")
        _, commission = _commission_lines(item, q.penalty)
        resched = Reschedule(
            booking_id=item.id,
            visit_id=item.master_id,
            requested_by_id=getattr(actor, "id", None),
            old_start=item.start_at,
            old_end=item.end_at,
            new_start=new_start,
            new_end=new_end,
            notice_minutes=int((item.start_at - now).total_seconds() // 60),
            penalty_bps=q.penalty_bps,
            penalty=q.penalty,
            platform_fee=q.platform_fee,
            gst=q.gst,
            total=q.total,
            commission=commission,
            overridden=q.overridden,
            pay_with=PAY_NONE if q.total == 0 else pay_with,
            status=RescheduleStatus.PENDING_PAYMENT,
            receipt_no=receipt_no if q.total and pay_with == PAY_DESK else None,
            created_at=now,
        )
        db.session.add(resched)
        db.session.flush()
        if q.total and pay_with == PAY_GATEWAY:
            _hold(item, resched)
            return _start_checkout(resched, item, callback_url, now)
        # The time first, then the money (lock order, docs/booking.md): the lock on the
        # people's time before the wallet's row and the fee's number, as every claim
        # writer takes them (a late payment's revival, a fee applied online).
        move(item, new_start, new_end)
        claims.flush_claims()
        if q.total and pay_with == PAY_DESK:
            post_fee(resched, item, chart.CASH_DESK)
        elif q.total:
            wallet = chart.patient_wallet(item.visit.patient_id)
            try:
                post_fee(resched, item, wallet, require_non_negative=[wallet])
            except InsufficientBalance:
                raise BookingError(MSG_WALLET_LOW, field="pay_with") from None
        after_move(resched, item, actor)
        return RescheduleResult(resched)


def _online_minimum_refusal(fee):
    minimum = format_inr(pricing.MIN_ONLINE_PAYMENT)  # "₹1", as the visit's notice says it
    return Text(MSG_ONLINE_MINIMUM_FEE, minimum=minimum, fee=format_inr(fee))


def _start_checkout(resched, item, callback_url, now):
    if not callback_url:
        raise ValueError("a checkout needs the callback_url")
    resched.expires_at = now + lifecycle.order_lifetime()
    payin = get_payin()
    try:
        order = payin.create_order(
            resched.total,
            receipt=f"R{resched.id}",
            notes={"portal_reschedule": str(resched.id), "booking": str(item.id)},
        )
    except GatewayError as exc:
        raise PaymentError(MSG_GATEWAY_DOWN) from exc
    resched.razorpay_order_id = order["id"]
    record(
        resched.requested_by_id,
        "booking.reschedule_checkout",
        "booking",
        item.id,
        after={
            "reschedule_id": resched.id,
            "order": order["id"],
            "fee": resched.total,
            "new_start": resched.new_start.isoformat(),
        },
    )
    url = callback_url.replace("__ID__", str(resched.id))
    if payin.is_sandbox:
        return RescheduleResult(resched, payin.checkout_url(order["id"], url))
    patient = item.visit.patient
    action, fields = payin.hosted_checkout(
        order["id"],
        url,
        description=f"Reschedule, visit {item.visit.number}",
        prefill={"name": patient.name, "email": patient.email, "contact": patient.phone or ""},
    )
    return RescheduleResult(resched, action, action, fields)


@holds.clears_stale_holds
def rebook(actor, item_id, new_start):
    """An expired or cancelled booking again, at a new time and today's price: a new
    item in a new visit (``service.add_item``); the patient then checks out as usual.
    Another person's stale hold in the way is cleared outside this unit of work (the hold
    inside it stops this one: ``holds.clears_stale_holds``)."""
    with claims.claiming(), unit_of_work():
        item = _item_for(actor, item_id)
        if item.status not in (BookingStatus.EXPIRED, BookingStatus.CANCELLED):
            raise BookingError(MSG_REBOOK_ONLY)
        visit = item.visit
        new = visits.add_item(
            actor,
            patient_id=visit.patient_id,
            dependent_id=visit.dependent_id,
            service_id=item.service_id,
            provider_ids=[p.id for p in item.providers],
            clinic_id=item.clinic_id,
            start_at=new_start,
        )
        record(actor, "booking.rebook", "booking", new.id, after={"from_booking": item.id})
    return new
