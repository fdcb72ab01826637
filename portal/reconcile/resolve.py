"""Resolving a case: sync from the gateway, or accept it with a note. Both are audited.

**Sync** applies the gateway's truth through the same idempotent use cases its webhooks
call, after fetching the record by id (``gateway.confirm``), so a sync and a late webhook
together still move money once: a capture we missed confirms the visit (or, when its slot
is gone, puts the money in the patient's wallet and flags the visit, as a late capture
does), or moves the booking its reschedule fee was for (or puts the fee in the wallet,
as ``reschedule_payment.payment_captured`` decides); a refund or payout final at the
gateway is applied to ours. Then the case is compared again: MATCHED when both sides now
agree (our time is the sync's, so a time difference is not held against it), else it
stays open with what still differs. A case the handlers cannot change (an amount altered
at the gateway, a payment or refund we never made, a record the gateway does not have, a
record it lists twice) is refused with a message: accept it instead. A sync that changed
nothing is audited as ``reconcile.case_sync_unchanged``, not as a change.

**Accept** closes the case as RESOLVED with the admin's note (at least the policy's
``note_min_length`` characters, as every audit note; POLICY.md's 10 is its floor), and
posts the money the two records disagree on between gateway clearing and suspense
(``suspense.py``).

Either way, when the visit has no other open discrepancy, the reconciliation flag the run
raised on it is cleared (audited ``attention.clear``); a flag raised since for another
reason stays for an admin.

A resolved case stays as it is on later runs until the gateway's record changes again (an
accepted one also when our side changes: ``matching.next_status``)."""

import logging
from typing import NamedTuple

import sqlalchemy as sa

from portal.accounts.models import User
from portal.accounts.service import PermissionDenied
from portal.audit.service import record
from portal.booking import attention, lifecycle, payment_events, reschedule_payment
from portal.booking.models import ATTENTION_RECONCILIATION
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain.states import RECON_CASE, ReconCaseStatus
from portal.extensions import db
from portal.gateway import get_payin
from portal.gateway.confirm import (
    Unconfirmed,
    confirmed_payment,
    confirmed_payout,
    confirmed_refund,
    was_captured,
)
from portal.gateway.errors import GatewayError
from portal.payments import records
from portal.payments.models import Payment
from portal.payouts import status as payout_status
from portal.payouts.gateway import gateway as payouts_gateway
from portal.reconcile import cases, ours, recheck, suspense
from portal.reconcile import source as gateway_source
from portal.reconcile.matching import TIME_DIFFERS, compare, gateway_side, what_changed
from portal.reconcile.models import OPEN_CASE, Reason, ReconCase
from portal.refunds import execute as refunds

log = logging.getLogger("portal.reconcile")

MSG_NOTE = "Detailed note required for audit trail (at least {n} characters)."
SYNCED, ACCEPTED = "synced", suspense.ACCEPTED
SYNCED_ACTION, SYNC_UNCHANGED = "reconcile.case_synced", "reconcile.case_sync_unchanged"


class ResolveError(ValueError):
    """Why a case cannot be resolved that way (shown to the admin)."""


def _require_admin(actor):
    if not getattr(actor, "is_admin", False):
        raise PermissionDenied("Only administrators resolve reconciliation cases.")


def _open_case(case_id, closed_ok=False):
    case = recheck.lock_case(case_id)
    if case is None:
        raise ResolveError("No such case.")
    # closed_ok: the use case a sync called may have closed it already (a late-webhook event)
    if case.status not in OPEN_CASE and not (closed_ok and case.status == ReconCaseStatus.MATCHED):
        raise ResolveError(f"This case is {case.status} already.")
    return case


def _lock_visit_of(case_id):
    """The case's visit locked before the case, in the order a run takes them (visits,
    then cases): the flag a resolution may clear is the visit's."""
    visit_id = db.session.scalar(sa.select(ReconCase.visit_id).where(ReconCase.id == case_id))
    return lifecycle.lock_visit(visit_id) if visit_id is not None else None


CLEARED_NOTE = "Cleared: the visit's reconciliation discrepancies are resolved."


def _clear_flag(actor, case, visit):
    """The visit's reconciliation flag goes with its last open discrepancy (review
    finding: resolved cases left their visits "Needs attention", resolved a second time)."""
    if visit is None or case.status == ReconCaseStatus.DISCREPANCY:
        return
    if not cases.has_open_discrepancy(visit.id, besides=case.id):
        attention.clear_visit_reason(actor, visit, ATTENTION_RECONCILIATION, CLEARED_NOTE)


def _snapshot(case):
    # The note too: the case page's history reads it from the log (``history``), as a run
    # that reopens the case clears it from the row.
    return {
        "status": case.status,
        "reason": case.reason,
        "resolution": case.resolution,
        "note": case.note,
    }


def checked_note(note):
    """The accepting note, stripped, or ResolveError saying the length asked: the policy's
    ``note_min_length``, as a payout's reason or a wallet adjustment's note (the forms ask
    this too, so the number is never typed twice)."""
    note = (note or "").strip()
    minimum = policy().note_min_length
    if len(note) < minimum:
        raise ResolveError(MSG_NOTE.format(n=minimum))
    return note


def accept(actor, case_id, note):
    """Close an open case as RESOLVED with a note (audited). A case whose our side changed
    since it was written is rewritten as it stands instead, and the accept refused with
    what changed (``_refresh``)."""
    _require_admin(actor)
    note = checked_note(note)
    with unit_of_work():
        visit = _lock_visit_of(case_id)
        case = _open_case(case_id)
        refused = _refresh(actor, case, visit)
        if refused is None:
            before = _snapshot(case)
            if case.status == ReconCaseStatus.PENDING:
                RECON_CASE.move(case, ReconCaseStatus.DISCREPANCY)  # accepted as it stands
            RECON_CASE.move(case, ReconCaseStatus.RESOLVED)
            _close(case, actor, ACCEPTED, note)
            # The gateway's record stands: clearing follows it, the difference in suspense.
            suspense.on_accept(case)
            record(actor, "reconcile.case_accepted", "recon_case", case.id, before, _snapshot(case))
            _clear_flag(actor, case, visit)
    if refused is not None:
        raise ResolveError(refused)
    return case


REFRESHED = "reconcile.case_refreshed"


def _refresh(actor, case, visit):
    """Our side of ``case`` read again; when it changed since the case was written (a
    refund found ours and processed, a capture recorded, and the event's comparison did
    not match it), the case is rewritten as it stands (matched when the two agree now),
    audited, and the refusal's message returned; None when it did not change. An accept
    posts from the case's sides: from stale ones it counted money twice until the next
    run (review finding: a refund accepted as one we never made after "send to wallet"
    had found it ours), and the admin would accept what the page no longer says."""
    try:
        theirs = recheck.stored_theirs(case)
    except recheck.Unreadable:
        return None
    fresh = recheck.ours_now(case, theirs)
    if not recheck.changed(case, fresh):
        return None
    before, ours_before = _snapshot(case), case.ours_key
    outcome = recheck.judge(case, fresh, theirs, int(utcnow().timestamp()))
    if outcome.status == ReconCaseStatus.MATCHED:
        recheck.match(case, fresh, theirs)
    else:
        RECON_CASE.move(case, outcome.status, allow_same=True)
        case.reason = outcome.reason
        cases.show_sides(case, fresh, theirs)
        suspense.take_back([case.id])
    because = what_changed(case.theirs_key, case.theirs_key, ours_before, case.ours_key)
    record(actor, REFRESHED, "recon_case", case.id, before, {**_snapshot(case), "because": because})
    _clear_flag(actor, case, visit)
    if case.status == ReconCaseStatus.MATCHED:
        return (
            f"Our record changed since the run ({because}) and agrees with the gateway's "
            "now: the case is matched, nothing to accept."
        )
    now = (case.reason or str(case.status)).replace("_", " ")
    return (
        f"Our record changed since the run ({because}): the case shows it as it is now "
        f"({now}). Look at it again, then accept."
    )


def _close(case, actor, resolution, note=None):
    case.resolution = resolution
    case.resolved_at = utcnow()
    case.resolved_by_id = actor.id
    case.note = note


# --- sync ---------------------------------------------------------------------------------


def sync(actor, case_id):
    """Apply the gateway's record of the case through the webhook use cases, then compare
    again. Returns ``Synced`` (the case MATCHED); ResolveError when the records still
    differ (the case left open with what differs) or it cannot be synced."""
    _require_admin(actor)
    with unit_of_work():
        case = _open_case(case_id)
        kind, reference, ours_key = case.kind, case.reference, case.ours_key
        if case.reason == Reason.MISSING_GATEWAY:
            raise ResolveError("The gateway has no such record: nothing to sync. Accept it.")
        if case.reason == Reason.DUPLICATE:
            other = ours.paid_by_another(case.our_type, case.our_id, reference)
            if kind == "payment" and other:
                raise ResolveError(
                    f"The order was paid twice: our payment is {other}, and this is a "
                    "second payment of it, which no visit of ours owns. Nothing to sync. "
                    "Accept it: its amount goes to suspense, owed back to the payer."
                )
            # A fetch by id returns one record: it cannot tell a listing twice is gone.
            raise ResolveError("The gateway lists this record twice: nothing to sync. Accept it.")
    # The gateway is asked outside any transaction; the use cases lock what they change.
    try:
        found, order_notes = _apply(kind, reference)
    except Unconfirmed as exc:
        raise ResolveError(f"The gateway's record does not confirm it: {exc}") from None
    except GatewayError as exc:
        raise ResolveError(f"The gateway could not be asked: {exc}") from None
    with unit_of_work():
        visit = _lock_visit_of(case_id)
        case = _open_case(case_id, closed_ok=True)
        meanwhile_by = _synced_meanwhile(actor, case)
        unchanged = meanwhile_by is None and _compare_again(
            actor, case, visit, found, order_notes, ours_key
        )
    if unchanged:
        raise ResolveError(
            "Synced from the gateway, but the records still differ "
            f"({(case.reason or 'pending').replace('_', ' ')}): accept it with a note."
        )
    return Synced(case, meanwhile_by)


class Synced(NamedTuple):
    """A sync that left its case matched: ``meanwhile_by``, the name of the admin whose
    sync matched it while this one asked the gateway (None: this one did)."""

    case: ReconCase
    meanwhile_by: str | None = None

    @property
    def message(self):
        if self.meanwhile_by:
            return f"Synced meanwhile by {self.meanwhile_by}: the case is matched."
        return "Synced from the gateway: the case is matched."


def _synced_meanwhile(actor, case):
    """The name of the admin whose sync matched the case while this one asked the
    gateway, or None. That sync's resolver and time stand, and this attempt is audited as
    changing nothing (review finding: it wrote its own admin over them, so the row named
    one admin and the audit log another). A case a late webhook matched (no resolution:
    maybe this sync's own doing) is this sync's to close."""
    if case.status != ReconCaseStatus.MATCHED or case.resolution is None:
        return None
    after = {**_snapshot(case), "changed": False}
    record(actor, SYNC_UNCHANGED, "recon_case", case.id, after=after)
    who = db.session.scalar(sa.select(User.name).where(User.id == case.resolved_by_id))
    return who or "another administrator"


def _compare_again(actor, case, visit, found, order_notes, ours_key):
    """The sync's second half, in its unit of work: the case compared with the gateway's
    record as applied, closed as synced when they agree, audited. Returns whether the
    records still differ."""
    kind, reference = case.kind, case.reference
    before, sides_before = _snapshot(case), (case.ours_key, case.theirs_key)
    theirs = gateway_side(kind, found)
    fresh = ours.by_reference(kind, [reference]).get(reference)
    if fresh is None:
        fresh = ours.without_id(kind, [theirs], order_notes).get(reference)
    outcome = compare(fresh, theirs, now=int(utcnow().timestamp()), grace=0)
    cases.show_sides(case, fresh, theirs)
    # A time difference is the sync's own doing only when the sync changed our side
    # (a capture applied now); ours final already, the gateway's time still differs.
    ours_changed = fresh is not None and fresh.key() != ours_key
    if outcome.status == ReconCaseStatus.MATCHED or (
        outcome.reason == TIME_DIFFERS and ours_changed
    ):
        RECON_CASE.move(case, ReconCaseStatus.MATCHED, allow_same=True)
        case.reason = None
        _close(case, actor, SYNCED)
    elif outcome.status == ReconCaseStatus.DISCREPANCY:
        RECON_CASE.move(case, ReconCaseStatus.DISCREPANCY, allow_same=True)
        case.reason = outcome.reason
    # Only an accepted case holds suspense postings (one a race reopened may have some).
    suspense.take_back([case.id])
    after = _snapshot(case)
    if after != before or (case.ours_key, case.theirs_key) != sides_before:
        record(actor, SYNCED_ACTION, "recon_case", case.id, before, after)
    else:
        # Nothing to apply and nothing new: the attempt is audited, not as a change
        # (review finding: it was "case_synced" with before = after).
        record(actor, SYNC_UNCHANGED, "recon_case", case.id, after={**after, "changed": False})
    _clear_flag(actor, case, visit)
    return case.status != ReconCaseStatus.MATCHED


def _apply(kind, reference):
    """The gateway's record, fetched and applied through the webhook use cases; and, for
    a payment, the notes of its order when they were read (``_link_payment``)."""
    if kind == "payment":
        found = confirmed_payment(get_payin(), {"id": reference}, captured=False)
        notes = {}
        if was_captured(found):
            fee = reschedule_payment.find_by_order(found.get("order_id"))
            payment = records.find_payment(
                order_id=found.get("order_id"), razorpay_payment_id=found["id"]
            )
            if payment is None and fee is not None:
                # A reschedule fee: moves the booking, or puts the fee in the wallet.
                reschedule_payment.payment_captured(fee.id, found["id"], int(found["amount"]))
                return found, notes
            if payment is None:
                payment, notes = _link_payment(found)
            if payment is None:
                raise ResolveError("Not a payment of ours: nothing to apply. Accept it.")
            payment_events.capture(
                payment,
                razorpay_payment_id=found["id"],
                amount=int(found["amount"]),
                method=found.get("method"),
                source="reconcile",
            )
        return found, notes
    if kind == "refund":
        found = confirmed_refund(get_payin(), {"id": reference})
        if refunds.find_refund_for(found) is None:
            raise ResolveError("Not a refund of ours: nothing to apply. Accept it.")
        refunds.refund_event(found)
        return found, {}
    if kind == "payout":
        found = confirmed_payout(payouts_gateway(), {"id": reference})
        if payout_status.find_attempt(found) is None:
            raise ResolveError("Not a payout of ours: nothing to apply. Accept it.")
        payout_status.apply_remote(found, confirm=True)
        return found, {}
    raise ResolveError(f"A {kind} case cannot be synced.")


def _link_payment(found):
    """Our payment link's row a captured gateway payment was made through, as a run finds
    it (``ours.links_by_notes``): by the link's notes, the payment's own or else its
    order's (Razorpay gives a link's order the link's notes; the payment may carry none).
    Returns (the row or None, {order id: notes} read)."""
    order_id = found.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        return None, {}
    theirs = gateway_side("payment", found)
    notes = {order_id: found.get("notes")}
    side = ours.links_by_notes([theirs], notes)[0].get(theirs.reference)
    if side is None:
        source = gateway_source.AdapterSource(get_payin(), payouts_gateway())
        notes = gateway_source.order_notes(source, [order_id])
        side = ours.links_by_notes([theirs], notes)[0].get(theirs.reference)
    return (db.session.get(Payment, side.our_id) if side else None), notes


def resolve_many(actor, case_ids, action, note=None):
    """Bulk: each case in a unit of work of its own; returns (done, [(id, message)])."""
    done, refused = 0, []
    for case_id in case_ids:
        try:
            if action == "sync":
                sync(actor, case_id)
            else:
                accept(actor, case_id, note)
            done += 1
        except ResolveError as exc:
            refused.append((case_id, str(exc)))
    return done, refused
