"""What an administrator does to payouts: hold, release, retry now, pay now, and ask
RazorpayX for the status. Each is one unit of work; a refusal raises ``PayoutError``
with the message to show, and nothing changes."""

from __future__ import annotations

import uuid

from portal.audit.service import record
from portal.db import unit_of_work
from portal.domain.rates import format_inr
from portal.domain.states import PayoutAttemptStatus, PayoutStatus
from portal.gateway import errors as gw_errors
from portal.jobs import enqueue
from portal.payouts import models as m
from portal.payouts.common import (
    SEND_JOB,
    PayoutError,
    Skipped,
    current_attempt,
    lock_payout,
    lock_provider,
    payable_balance,
    snapshot,
)
from portal.payouts.create import create_payout
from portal.payouts.sending import retry_payout
from portal.payouts.status import refresh_payout

MSG_REASON = "Give a reason (at least 10 characters) for the audit trail."
MSG_UNREACHABLE = "Could not reach RazorpayX: {error}"
MSG_HOLD_UNANSWERED = (
    "This payout was sent to RazorpayX and no final answer came, so it may already be at "
    'RazorpayX and cannot be held. Use "Sync status from RazorpayX" to ask it.'
)


def _require_admin(actor):
    if not getattr(actor, "is_admin", False):
        raise PayoutError("Only administrators can do this.")


def _reason(reason):
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise PayoutError(MSG_REASON)
    return reason


def hold_refusal(payout):
    """Why ``payout`` cannot be held now, or None (the rule the page's Hold button follows
    too). Refused once a request for its current attempt went to RazorpayX unanswered: it
    may be there, and a hold would not stop it (yet tell the admin it had)."""
    if payout.held:
        return "This payout is already held."
    if payout.returned or payout.status not in (PayoutStatus.QUEUED, PayoutStatus.FAILED):
        return "Only a queued or failed payout can be held."
    attempt = current_attempt(payout)
    if payout.status == PayoutStatus.QUEUED and attempt is not None:
        if attempt.status != PayoutAttemptStatus.SENDING:
            return "This payout is already at RazorpayX and cannot be held."
        if attempt.requests > 0:
            return MSG_HOLD_UNANSWERED
    return None


def hold_payout(actor, payout_id, reason):
    """Stop a payout that has not left yet (or is waiting for a retry): ``hold_refusal``."""
    _require_admin(actor)
    reason = _reason(reason)
    with unit_of_work():
        payout = lock_payout(payout_id)
        if payout is None:
            raise PayoutError("No such payout.")
        refusal = hold_refusal(payout)
        if refusal:
            raise PayoutError(refusal)
        before = snapshot(payout)
        payout.held, payout.hold_reason = True, reason[:255]
        record(
            actor,
            "payout.hold",
            "payout",
            payout.id,
            before=before,
            after=snapshot(payout) | {"reason": reason},
        )
        return payout


def release_payout(actor, payout_id, reason):
    """Lift a hold: a queued payout is sent, a failed one retried at once."""
    _require_admin(actor)
    reason = _reason(reason)
    with unit_of_work():
        payout = lock_payout(payout_id)
        if payout is None or not payout.held:
            raise PayoutError("This payout is not held.")
        before = snapshot(payout)
        payout.held, payout.hold_reason = False, None
        record(
            actor,
            "payout.release",
            "payout",
            payout.id,
            before=before,
            after=snapshot(payout) | {"reason": reason},
        )
        if payout.status == PayoutStatus.QUEUED:
            enqueue(
                SEND_JOB,
                payout_id=payout.id,
                dedupe_key=f"payout-send:{payout.id}:release:{uuid.uuid4().hex[:12]}",
            )
        elif payout.status == PayoutStatus.FAILED and not payout.returned:
            retry_payout(payout.id, force=True, actor=actor)
        return payout


def retry_payout_now(actor, payout_id, reason):
    """An admin's retry: a failed payout waiting for its automatic retry starts its next
    attempt now (even past the automatic limit); a payout given up on (money back on the
    payable) is paid again as a new MANUAL payout of at most the same gross."""
    _require_admin(actor)
    reason = _reason(reason)
    with unit_of_work():
        payout = lock_payout(payout_id)
        if payout is None:
            raise PayoutError("No such payout.")
        record(actor, "payout.admin_retry", "payout", payout.id, after={"reason": reason})
        if payout.status == PayoutStatus.FAILED and not payout.returned:
            payout.held, payout.hold_reason = False, None
            return retry_payout(payout.id, force=True, actor=actor)
        if payout.returned:
            result = create_payout(
                payout.provider_id,
                kind=m.MANUAL_KIND,
                actor=actor,
                apply_minimum=False,
                max_gross=payout.gross,
            )
            if isinstance(result, Skipped):
                raise PayoutError(result.reason)
            return result
        raise PayoutError("Only a failed or reversed payout can be retried.")


MSG_BALANCE_MOVED = "The payable balance is now {amount}: check it and confirm again."


def pay_now(actor, provider_id, confirmed_amount=None):
    """An admin pays a provider's whole payable now (no minimum). ``confirmed_amount``:
    the payable the admin was shown and confirmed (paise); a balance that moved meanwhile
    is refused, so the admin never pays an amount they did not see."""
    _require_admin(actor)
    with unit_of_work():
        if confirmed_amount is not None:
            lock_provider(provider_id)
            payable = payable_balance(provider_id)
            if payable != confirmed_amount:
                raise PayoutError(MSG_BALANCE_MOVED.format(amount=format_inr(payable)))
        result = create_payout(provider_id, kind=m.MANUAL_KIND, actor=actor, apply_minimum=False)
        if isinstance(result, Skipped):
            raise PayoutError(result.reason)
        return result


def sync_payout(actor, payout_id):
    """An admin asks RazorpayX for the current attempt's status; True when it changed."""
    _require_admin(actor)
    try:
        return refresh_payout(payout_id)
    except gw_errors.GatewayError as exc:
        raise PayoutError(MSG_UNREACHABLE.format(error=exc)) from None
