"""Sending a payout to RazorpayX, with its attempt's idempotency key, and starting the
next attempt after RazorpayX said the last one FAILED."""

from __future__ import annotations

import sqlalchemy as sa

from portal.audit.service import record
from portal.db import unit_of_work, utcnow
from portal.domain.bank_details import masked_in_text
from portal.domain.rates import format_inr
from portal.domain.states import PAYOUT, PayoutAttemptStatus, PayoutStatus
from portal.extensions import db
from portal.gateway import errors as gw_errors
from portal.jobs import enqueue
from portal.payouts import models as m
from portal.payouts.alerts import HIGH, PAYOUT_UNCONFIRMED, raise_payout_alert
from portal.payouts.common import (
    SEND_JOB,
    current_attempt,
    lock_payout,
    new_key,
    resend_backoff,
    snapshot,
)
from portal.payouts.gateway import gateway
from portal.payouts.status import (
    apply_status,
    find_remote,
    link_remote_id,
    reference_for,
    remote_status,
    will_retry,
)


def _request_body(payout, attempt):
    # Identical on every request of one attempt (RazorpayX compares bodies per key).
    return dict(
        fund_account_id=payout.fund_account.razorpay_fund_account_id,
        amount=payout.net,
        mode=payout.mode,
        purpose="payout",
        reference_id=reference_for(payout, attempt),
        narration=f"Clinic Portal payout {payout.id}"[:30],
        notes={
            "payout_id": str(payout.id),
            "attempt": str(attempt.number),
            "provider_id": str(payout.provider_id),
        },
    )


def send_payout(payout_id, attempt_number=None):
    """Ask RazorpayX for the current attempt of a QUEUED payout, with its key.

    No answer or a 5xx: the same key is asked again later (it may have been created).
    A refusal (4xx) of the first request: the attempt failed — the automatic retry takes
    over. A refusal of a resend (an earlier request went unanswered, in an earlier job or
    in the adapter's own retry within this call) proves nothing: the
    payout is looked up at RazorpayX and adopted, else asked for again. The payout row
    and its key were committed before this job ran (the outbox hands jobs over after the
    commit), so whatever happens to this unit of work the key can be asked again."""
    with unit_of_work():
        payout = lock_payout(payout_id)
        if payout is None or payout.held or payout.status != PayoutStatus.QUEUED:
            return None
        attempt = current_attempt(payout)
        if attempt is None or attempt.status != PayoutAttemptStatus.SENDING:
            return None
        if attempt_number is not None and attempt.number != attempt_number:
            return None  # queued for an attempt since failed: the new one has its own job
        attempt.requests += 1
        attempt.last_request_at = utcnow()
        if attempt.first_request_at is None:
            attempt.first_request_at = attempt.last_request_at
        try:
            body = gateway().create_payout(
                attempt.idempotency_key, **_request_body(payout, attempt)
            )
        except gw_errors.GatewayUnavailable as exc:  # includes GatewayTimeout: unknown outcome
            payout.last_error = _said(exc)
            _ask_again(payout, attempt, "payout.send_unanswered")
            return None
        except gw_errors.GatewayError as exc:
            payout.last_error = _said(exc)
            if attempt.requests > 1 or exc.after_unanswered:
                # An earlier request under this key went unanswered (an earlier job's, or
                # the adapter's own try within this call) and RazorpayX may have made the
                # payout: a refusal of the resend is no proof the attempt failed.
                return _resend_refused(payout, attempt, exc)
            record(
                None,
                "payout.send_refused",
                "payout",
                payout.id,
                after={"attempt": attempt.number, "error": payout.last_error},
            )
            apply_status(
                payout,
                attempt,
                PayoutAttemptStatus.FAILED,
                {"failure_reason": exc.description or str(exc)},
            )
            return None
        payout.last_error = None
        link_remote_id(payout, attempt, body.get("id"))
        apply_status(payout, attempt, remote_status(body.get("status")), body)
        return body


def _said(exc):
    """RazorpayX's answer as the payout, the audit and alerts keep it: anything shaped like
    an account number or UPI id masked (docs/privacy.md; ``bank_details.masked_in_text``)."""
    return masked_in_text(str(exc))[:255]


def _ask_again(payout, attempt, action):
    """Queue the resend of the current attempt under its own key, after the backoff for
    its requests so far, and audit why (``action``); returns when it runs."""
    run_after = utcnow() + resend_backoff(attempt.requests)
    enqueue(
        SEND_JOB,
        payout_id=payout.id,
        attempt_number=attempt.number,
        run_after=run_after,
        dedupe_key=f"payout-send:{payout.id}:{attempt.number}:{attempt.requests}",
    )
    record(
        None,
        action,
        "payout",
        payout.id,
        after={
            "attempt": attempt.number,
            "requests": attempt.requests,
            "error": payout.last_error,
            "retry_at": run_after.isoformat(),
        },
    )
    return run_after


def _resend_refused(payout, attempt, exc):
    """A resend under the key of an unanswered request was refused (4xx). Look the payout
    up at RazorpayX by the attempt's reference and adopt it if it is there; otherwise the
    attempt stays SENDING (outcome unknown), the same key is asked again on the resend
    schedule and an admin is alerted. Never FAILED here, so never a new key: RazorpayX may
    be paying under this one (an admin may mark it failed a day later if RazorpayX still
    lists nothing: ``admin.mark_failed``)."""
    try:
        found = find_remote(payout, attempt)
    except gw_errors.GatewayError as lookup_error:
        found, looked = None, f"the look-up failed too: {_said(lookup_error)}"
    else:
        looked = "none is listed under its reference yet"
    if found is not None:
        payout.last_error = None
        record(
            None,
            "payout.send_adopted",
            "payout",
            payout.id,
            after={
                "attempt": attempt.number,
                "requests": attempt.requests,
                "refused": _said(exc),
                "razorpay_payout_id": found.get("id"),
            },
        )
        link_remote_id(payout, attempt, found.get("id"))
        apply_status(payout, attempt, remote_status(found.get("status")), found)
        return found
    run_after = _ask_again(payout, attempt, "payout.send_unconfirmed")
    raise_payout_alert(
        HIGH,
        f"Payout {payout.id}: outcome unknown at RazorpayX",
        f"A request for payout {payout.id} ({format_inr(payout.net)} to provider "
        f"{payout.provider_id}) went unanswered and RazorpayX refused the resend under the "
        f"same key ({payout.last_error}); {looked}. RazorpayX may already have made it, so "
        f"the portal keeps asking with the same key (next at {run_after:%Y-%m-%d %H:%M} "
        f"UTC) and never pays it under a new one. Check RazorpayX and the API keys; if "
        f"RazorpayX never made it, mark it as failed on the payout's page (a day after its "
        f"first request).",
        payout=payout,
        kind=PAYOUT_UNCONFIRMED,
        attempt=attempt.number,
    )
    return None


def retry_payout(payout_id, *, force=False, actor=None):
    """Start the next attempt of a FAILED payout (a new key: RazorpayX said the previous
    attempt failed, so nothing can still be processing under it)."""
    with unit_of_work():
        payout = lock_payout(payout_id)
        if payout is None or not will_retry(payout):
            return None
        if payout.held and not force:
            return None
        now = utcnow()
        if not force and payout.next_retry_at is not None and payout.next_retry_at > now:
            return None
        previous = current_attempt(payout)
        if previous is not None and previous.status != PayoutAttemptStatus.FAILED:
            return None
        before = snapshot(payout)
        number = payout.attempts + 1
        key = new_key()
        PAYOUT.move(payout, PayoutStatus.QUEUED)
        payout.attempts = number
        payout.idempotency_key = key
        payout.razorpay_payout_id = None
        payout.next_retry_at = None
        db.session.add(m.PayoutAttempt(payout_id=payout.id, number=number, idempotency_key=key))
        db.session.flush()
        record(
            actor,
            "payout.retry",
            "payout",
            payout.id,
            before=before,
            after=snapshot(payout) | {"attempt": number},
        )
        enqueue(
            SEND_JOB,
            payout_id=payout.id,
            attempt_number=number,
            dedupe_key=f"payout-send:{payout.id}:{number}:0",
        )
        return payout


def due_retries(now=None, limit=500):
    now = now or utcnow()
    return db.session.scalars(
        sa.select(m.Payout.id)
        .where(
            m.Payout.status == PayoutStatus.FAILED,
            m.Payout.returned.is_(False),
            m.Payout.held.is_(False),
            m.Payout.next_retry_at <= now,
        )
        .order_by(m.Payout.next_retry_at)
        .limit(limit)
    ).all()
