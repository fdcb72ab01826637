"""What an administrator does to payouts: hold, release, retry now, pay now, ask
RazorpayX for the status, and mark an attempt RazorpayX never made as failed. Each is one
unit of work; a refusal raises ``PayoutError`` with the message to show, and nothing
changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from portal.audit.service import record
from portal.config import policy
from portal.db import serialized, unit_of_work, utcnow
from portal.domain.rates import INDIA_TZ, financial_year, format_inr
from portal.domain.states import PayoutAttemptStatus, PayoutStatus
from portal.gateway import errors as gw_errors
from portal.jobs import enqueue
from portal.payouts import models as m
from portal.payouts.alerts import tell_hold
from portal.payouts.common import (
    SEND_JOB,
    PayoutError,
    Skipped,
    current_attempt,
    lock_payee,
    lock_payout,
    lock_provider,
    payable_balance,
    snapshot,
)
from portal.payouts.create import create_payout, next_payout
from portal.payouts.returned import still_owed
from portal.payouts.sending import retry_payout
from portal.payouts.status import (
    apply_status,
    find_remote,
    next_step,
    refresh_payout,
    will_retry,
)

MSG_REASON = "Give a reason (at least {n} characters) for the audit trail."
# The longest reason: the hold form's limit and the ``payouts.hold_reason`` column's, so the
# payout's page shows the whole reason the audit row keeps (it was cut to 255).
MAX_REASON = 2000
MSG_REASON_LONG = f"Keep the reason to at most {MAX_REASON} characters."
MSG_RETRIED = "This payout was already retried: payout #{id}."
MSG_PAID_AGAIN = (
    "The provider's payouts since this one came back have paid its money out again: "
    "nothing of it is left to retry (the payable holds only what was earned since, for "
    "its own payout)."
)
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
    minimum = policy().note_min_length  # the audit note's length, as every audit note
    if len(reason) < minimum:
        raise PayoutError(MSG_REASON.format(n=minimum))
    if len(reason) > MAX_REASON:
        raise PayoutError(MSG_REASON_LONG)
    return reason


def hold_refusal(payout):
    """Why ``payout`` cannot be held now, or None (part of ``actions``). Refused once a
    request for its current attempt went to RazorpayX unanswered: it may be there, and a
    hold would not stop it (yet tell the admin it had)."""
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


HOLD, RELEASE, RETRY, MARK_FAILED = "hold", "release", "retry", "mark_failed"
MSG_NOT_HELD = "This payout is not held."
MSG_RETRY_HELD = 'This payout is held. Release the hold first ("Lift hold").'
MSG_RETRY_ONLY = "Only a failed or reversed payout can be retried."


@dataclass(frozen=True)
class Actions:
    """What an administrator may do with a payout now, each as the message refusing it
    ("": allowed). The payout's page offers the allowed ones (``allows``) and the posts
    refuse the others (``refusal``), so the two cannot disagree."""

    hold: str
    release: str
    retry: str
    mark_failed: str

    def allows(self, action):
        return not getattr(self, action)

    def refusal(self, action):
        """The message refusing ``action`` (``HOLD``, ``RELEASE``, ``RETRY``,
        ``MARK_FAILED``), or None: allowed."""
        return getattr(self, action) or None

    @property
    def paid_again(self):
        """A returned payout whose money later payouts paid out again (nothing to retry)."""
        return self.retry == MSG_PAID_AGAIN


def actions(payout, now=None):
    """What an admin may do with ``payout``: hold (``hold_refusal``), lift a hold, retry
    now, mark its attempt failed (``mark_failed_refusal``). Retry: a failed or returned
    payout, not retried already and not held: a hold means "do not send", so it is lifted
    first (lifting it retries a failed payout at once); a returned one only while some of
    its money is still owed (``returned.still_owed``: later payouts may have paid it out
    again). Pay now is the provider's, not a payout's (``pay_now_preview``)."""
    if payout.retried_by_payout_id is not None:
        retry = MSG_RETRIED.format(id=payout.retried_by_payout_id)
    elif payout.held:
        retry = MSG_RETRY_HELD
    elif payout.status != PayoutStatus.FAILED and not payout.returned:
        retry = MSG_RETRY_ONLY
    elif payout.returned and not still_owed(payout):
        retry = MSG_PAID_AGAIN
    else:
        retry = ""
    return Actions(
        hold=hold_refusal(payout) or "",
        release="" if payout.held else MSG_NOT_HELD,
        retry=retry,
        mark_failed=mark_failed_refusal(payout, now) or "",
    )


def _refuse(payout, action):
    if payout is None:
        raise PayoutError("No such payout.")
    refusal = actions(payout).refusal(action)
    if refusal:
        raise PayoutError(refusal)


def hold_payout(actor, payout_id, reason):
    """Stop a payout that has not left yet (or is waiting for a retry): ``hold_refusal``."""
    _require_admin(actor)
    reason = _reason(reason)
    with unit_of_work():
        payout = lock_payout(payout_id)
        _refuse(payout, HOLD)
        before = snapshot(payout)
        payout.held, payout.hold_reason = True, reason
        record(
            actor,
            "payout.hold",
            "payout",
            payout.id,
            before=before,
            after=snapshot(payout) | {"reason": reason},
        )
        # The provider is told it waits for the clinic (not the reason: the admins' note).
        tell_hold(payout, held=True, step=next_step(payout))
        return payout


def release_payout(actor, payout_id, reason):
    """Lift a hold: a queued payout is sent, a failed one retried at once."""
    _require_admin(actor)
    reason = _reason(reason)
    with unit_of_work():
        payout = lock_payout(payout_id)
        _refuse(payout, RELEASE)
        before, step = snapshot(payout), next_step(payout)
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
        elif will_retry(payout):
            retry_payout(payout.id, force=True, actor=actor)
        tell_hold(payout, held=False, step=step)
        return payout


def retry_payout_now(actor, payout_id, reason):
    """An admin's retry: a failed payout waiting for its automatic retry starts its next
    attempt now (even past the automatic limit); a payout given up on (money back on the
    payable) is paid again as a new MANUAL payout of what of it is still owed
    (``returned.still_owed``: at most its gross, less what the payouts made since its
    return paid out again), once: the payout records it (``retried_by_payout_id``) and a
    second retry is refused. Either way a retry never pays what was earned since early
    (without the cycle's minimum): a double click did, and so did a first click after the
    next run had paid the returned money with the rest."""
    _require_admin(actor)
    reason = _reason(reason)
    # SQLite (no row locks): the process lock keeps a retry at the same moment out.
    with serialized(), unit_of_work():
        payout = lock_payout(payout_id)  # a retry at the same moment commits first
        if payout is not None and payout.returned:
            # What is still owed is read under the provider's payout lock: a run paying the
            # payable meanwhile commits first (and is seen), or waits for this payout.
            lock_provider(payout.provider_id)
        _refuse(payout, RETRY)
        if not payout.returned:
            record(actor, "payout.admin_retry", "payout", payout.id, after={"reason": reason})
            return retry_payout(payout.id, force=True, actor=actor)
        owed = still_owed(payout)
        record(
            actor,
            "payout.admin_retry",
            "payout",
            payout.id,
            after={"reason": reason, "still_owed": owed},
        )
        result = create_payout(
            payout.provider_id,
            kind=m.MANUAL_KIND,
            actor=actor,
            apply_minimum=False,
            max_gross=owed,
        )
        if isinstance(result, Skipped):
            raise PayoutError(result.reason)
        payout.retried_by_payout_id = result.id
        return result


MSG_BALANCE_MOVED = "The payable balance is now {amount}: check it and confirm again."
MSG_NET_MOVED = (
    "The payout would now send {net} to the bank ({tds} TDS on {gross}), not the {was} "
    "shown: check the figures and confirm again."
)


@dataclass(frozen=True)
class PayNowPreview:
    """What "Pay now" would do at this moment: the payable (``gross``), the TDS deducted
    (``section``: the policy's, e.g. 194J) and the ``net`` sent to the bank; ``message``:
    why no payout would be made (a net under RazorpayX's ₹1), "" when one would."""

    gross: int
    tds: int
    net: int
    section: str
    message: str
    rate_bps: int = 0  # the rate applied past the threshold
    higher_section: str | None = None  # "206AA": no PAN on file (the higher rate)


def pay_now_preview(provider_id):
    """The payout "Pay now" would make, by the rules the payout follows: the payable
    balance, and ``create.next_payout`` on it (the year's TDS replayed, the threshold, the
    gateway's minimum, the PAN on file now) for this financial year. Read only."""
    gross = payable_balance(provider_id)
    if gross <= 0:
        return PayNowPreview(gross, 0, gross, "", "")
    decision, rule, result = next_payout(provider_id, financial_year(utcnow()), gross)
    return PayNowPreview(
        gross,
        decision.tds,
        decision.net,
        rule.section,
        decision.message,
        result.rate_bps,
        result.higher_section,
    )


def pay_now(actor, provider_id, confirmed_amount=None, confirmed_net=None):
    """An admin pays a provider's whole payable now (no minimum). ``confirmed_amount``:
    the payable the admin was shown and confirmed (paise); ``confirmed_net``: what the page
    said would go to the bank (the payable less its TDS, ``pay_now_preview``). A balance
    or a TDS that moved meanwhile is refused, so the admin never pays an amount they did
    not see. None: not checked."""
    _require_admin(actor)
    with unit_of_work():
        if confirmed_amount is not None or confirmed_net is not None:
            # The payout made below reads what this reads (its TDS: the PAN's year too).
            lock_payee(lock_provider(provider_id))
            preview = pay_now_preview(provider_id)
            if confirmed_amount is not None and preview.gross != confirmed_amount:
                raise PayoutError(MSG_BALANCE_MOVED.format(amount=format_inr(preview.gross)))
            if confirmed_net is not None and preview.net != confirmed_net:
                raise PayoutError(
                    MSG_NET_MOVED.format(
                        net=format_inr(preview.net),
                        tds=format_inr(preview.tds),
                        gross=format_inr(preview.gross),
                        was=format_inr(confirmed_net),
                    )
                )
        result = create_payout(provider_id, kind=m.MANUAL_KIND, actor=actor, apply_minimum=False)
        if isinstance(result, Skipped):
            raise PayoutError(result.reason)
        return result


def sync_payout(actor, payout_id):
    """An admin asks RazorpayX for the current attempt's status; True when it changed.
    The rows the change writes (``payout.<status>``, ``payout.utr``…) name the admin."""
    _require_admin(actor)
    try:
        return refresh_payout(payout_id, actor=actor)
    except gw_errors.GatewayError as exc:
        raise PayoutError(MSG_UNREACHABLE.format(error=exc)) from None


# How long after an attempt's first request an admin may mark it failed: by then RazorpayX
# lists any payout it made under the attempt's reference (a payout it is still creating
# could be missing from the list for a moment, and the next attempt would pay twice).
MARK_FAILED_AFTER = timedelta(hours=24)
# ... and this long after its latest request: a resend under the same key, unanswered on
# our side, may still be creating the payout at RazorpayX (resends come hourly).
MARK_FAILED_QUIET = timedelta(minutes=30)
MSG_MARK_FAILED_QUIET = (
    "A request for it went to RazorpayX less than half an hour ago and may still be "
    "creating it. It can be marked as failed from {when} IST."
)
MSG_MARK_FAILED_ONLY = (
    "Only a payout sent to RazorpayX without a final answer (its current attempt still "
    "waiting) can be marked as failed."
)
MSG_MARK_FAILED_WAIT = (
    "Its first request went to RazorpayX less than 24 hours ago, so RazorpayX may not list "
    "it yet. It can be marked as failed from {when} IST."
)
MSG_MARK_FAILED_LOOKUP = (
    "Could not check RazorpayX for this payout ({error}), so it was not marked as failed. "
    "Try again later."
)
MSG_MARK_FAILED_FOUND = (
    "RazorpayX has made this payout ({remote_id}, {status}), so it cannot be marked as "
    'failed. Use "Sync status from RazorpayX" to take its status.'
)


def mark_failed_refusal(payout, now=None):
    """Why ``payout``'s current attempt cannot be marked failed now, or None (part of
    ``actions``). Only an attempt sent and never finally answered (SENDING,
    ``requests > 0``), a day after its first request and half an hour after its latest
    (every resend under the key may be the one that creates it). The action also asks
    RazorpayX, at the click: the page does not call RazorpayX on every view."""
    if payout.returned or payout.status != PayoutStatus.QUEUED:
        return MSG_MARK_FAILED_ONLY
    attempt = current_attempt(payout)
    if attempt is None or attempt.status != PayoutAttemptStatus.SENDING or attempt.requests < 1:
        return MSG_MARK_FAILED_ONLY
    first = attempt.first_request_at
    if first is None:  # sent before the time was recorded, and not backfilled: never
        return MSG_MARK_FAILED_ONLY
    now = now or utcnow()
    if now - first < MARK_FAILED_AFTER:
        when = (first + MARK_FAILED_AFTER).astimezone(INDIA_TZ)
        return MSG_MARK_FAILED_WAIT.format(when=f"{when:%d %b %Y, %H:%M}")
    latest = attempt.last_request_at or first
    if now - latest < MARK_FAILED_QUIET:
        when = (latest + MARK_FAILED_QUIET).astimezone(INDIA_TZ)
        return MSG_MARK_FAILED_QUIET.format(when=f"{when:%d %b %Y, %H:%M}")
    return None


def mark_failed(actor, payout_id, reason):
    """An admin marks the current attempt of a payout RazorpayX never made as FAILED: its
    requests went unanswered or were refused (e.g. a 500, then a deleted fund account), so
    it would be asked for hourly for ever. Allowed by ``mark_failed_refusal`` and only if a
    fresh look-up at RazorpayX by the attempt's reference finds nothing (a failed look-up
    refuses too). The attempt then fails as if RazorpayX had said so (``apply_status``): the
    automatic retry follows with a new key (the send jobs still queued for this attempt do
    nothing), or, past the policy's attempts, the money goes back to the payable with the
    HIGH alert; an admin may hold it or retry now meanwhile."""
    _require_admin(actor)
    reason = _reason(reason)
    with unit_of_work():
        payout = lock_payout(payout_id)  # a resend in flight finishes first
        _refuse(payout, MARK_FAILED)
        attempt = current_attempt(payout)
        try:
            found = find_remote(payout, attempt)
        except gw_errors.GatewayError as exc:
            raise PayoutError(MSG_MARK_FAILED_LOOKUP.format(error=exc)) from None
        if found is not None:
            raise PayoutError(
                MSG_MARK_FAILED_FOUND.format(
                    remote_id=found.get("id"), status=str(found.get("status") or "").lower()
                )
            )
        record(
            actor,
            "payout.mark_failed",
            "payout",
            payout.id,
            before=snapshot(payout),
            after={
                "attempt": attempt.number,
                "requests": attempt.requests,
                "first_request_at": attempt.first_request_at.isoformat(),
                "last_error": payout.last_error,
                "reason": reason,
            },
        )
        apply_status(
            payout,
            attempt,
            PayoutAttemptStatus.FAILED,
            {"failure_reason": f"Marked failed by an admin (not made at RazorpayX): {reason}"},
            actor=actor,
        )
        return payout
