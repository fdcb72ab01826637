"""The payout engine: create a payout from a provider's payable, send it to RazorpayX,
follow its status, retry a failed one, hold, release, return money on a final failure or
reversal. Every step posts a balanced ledger transaction with an idempotency key and
writes an audit row. See docs/payouts.md for the rules and the ledger lines.

Transactions: these functions flush but do not commit (the calling job or view commits,
so the effects, the outbox items and the audit rows commit together), except the
admin-facing ``hold_payout`` / ``release_payout`` / ``retry_payout_now`` / ``pay_now``
which commit unless ``commit=False``.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from portal.audit.service import record
from portal.catalog.models import Provider
from portal.config import policy, setting
from portal.db import utcnow
from portal.domain.payouts import cycle_payable, payout_mode, tds_for_payout
from portal.domain.rates import financial_year, format_inr
from portal.domain.states import PAYOUT, PayoutStatus
from portal.extensions import db
from portal.gateway import errors as gw_errors
from portal.jobs import enqueue
from portal.ledger import accounts as chart
from portal.ledger.service import InsufficientBalance, balance, credit, debit, post
from portal.payouts import models as m
from portal.payouts.alerts import HIGH, MEDIUM, raise_payout_alert
from portal.payouts.gateway import gateway

log = logging.getLogger("portal.payouts")

SEND_JOB = "payouts.send"
RETRY_JOB = "payouts.retry"
INSTANT_JOB = "payouts.instant"

MSG_NO_ACCOUNT = "No validated bank account or UPI id: payouts wait until one is validated."
MSG_NOTHING = "Nothing to pay: the payable balance is {balance}."
MSG_TDS_EATS_ALL = ("TDS due ({tds}) takes the whole payable ({gross}); the balance carries "
                    "forward until it covers the TDS.")


class PayoutError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Skipped:
    """No payout was made; ``reason`` says why (shown to admins and the provider)."""
    provider_id: int
    reason: str
    balance: int = 0


# --- settings -----------------------------------------------------------------------------

def retry_backoff(attempt_number):
    """Wait before the automatic retry after attempt ``n`` failed: base × 4^(n−1)
    (default base 5 minutes: 5 min, 20 min)."""
    base = float(setting("PAYOUT_RETRY_BACKOFF_SECONDS"))
    return timedelta(seconds=base * 4 ** max(attempt_number - 1, 0))


def resend_backoff(requests_made):
    """Wait before asking RazorpayX again with the same key after no/5xx answer."""
    base = float(setting("PAYOUT_RESEND_BACKOFF_SECONDS"))
    return timedelta(seconds=min(base * 2 ** max(requests_made - 1, 0), 3600))


# --- reading ------------------------------------------------------------------------------

def payable_balance(provider_id):
    return balance(chart.provider_payable(provider_id))


def current_fund_account(provider_id):
    return db.session.scalar(
        sa.select(m.FundAccount).where(m.FundAccount.provider_id == provider_id,
                                       m.FundAccount.current.is_(True))
        .order_by(m.FundAccount.id.desc()).limit(1))


def _lock_provider(provider_id):
    query = sa.select(Provider).where(Provider.id == provider_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _lock_payout(payout_id):
    query = sa.select(m.Payout).where(m.Payout.id == payout_id) \
        .execution_options(populate_existing=True)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _new_key():
    return str(uuid.uuid4())  # 36 characters: RazorpayX accepts 4–36


def _snapshot(payout):
    return {"status": payout.status, "attempts": payout.attempts, "gross": payout.gross,
            "tds": payout.tds, "net": payout.net, "held": payout.held,
            "razorpay_payout_id": payout.razorpay_payout_id, "returned": payout.returned}


# --- TDS ------------------------------------------------------------------------------------

def tds_for_next(provider_id, fy, gross, pol=None):
    """TDS on a new payout of ``gross`` in financial year ``fy``.

    The year's state (gross paid, untaxed gross, shortfall) is rebuilt by replaying the
    provider's payouts of that year that still count (not returned to the payable)
    through ``tds_for_payout``; the difference between what the replay says was due and
    what was actually deducted is settled on this payout (so a reversed payout's TDS is
    recomputed, never lost), clamped to 0 … gross."""
    pol = pol or policy()
    rule = pol.tds_rule_for(fy)
    rows = db.session.execute(
        sa.select(m.Payout.gross, m.Payout.tds)
        .where(m.Payout.provider_id == provider_id, m.Payout.financial_year == fy,
               m.Payout.returned.is_(False))
        .order_by(m.Payout.id)).all()
    paid = untaxed = shortfall = due_so_far = deducted = 0
    for gross_before, tds_before in rows:
        step = tds_for_payout(gross_before, paid, untaxed, rule,
                              fy_tds_shortfall_before=shortfall)
        paid += gross_before
        untaxed, shortfall = step.untaxed_after, step.shortfall_after
        due_so_far += step.tds
        deducted += tds_before
    result = tds_for_payout(gross, paid, untaxed, rule, fy_tds_shortfall_before=shortfall)
    tds = min(max(result.tds + (due_so_far - deducted), 0), gross)
    return tds, rule.section, result


# --- creating a payout ------------------------------------------------------------------------

def create_payout(provider_id, *, kind, run=None, booking_id=None, actor=None,
                  apply_minimum=None, max_gross=None):
    """Pay out the provider's payable balance (all of it, or at most ``max_gross``).

    Returns the new :class:`Payout` (QUEUED, a send job enqueued) or :class:`Skipped`.
    Cycles apply the ₹500 minimum (``cycle_payable``); INSTANT payouts do not. The
    payable is debited at once (``require_non_negative``: two concurrent payouts can never
    take it below zero)."""
    pol = policy()
    provider = _lock_provider(provider_id)
    if provider is None:
        return Skipped(provider_id, "unknown provider")
    fund_account = current_fund_account(provider_id)
    available = payable_balance(provider_id)
    if fund_account is None or not fund_account.can_pay:
        return Skipped(provider_id, MSG_NO_ACCOUNT, available)
    if apply_minimum is None:
        apply_minimum = kind == m.CYCLE_KIND
    if apply_minimum:
        decision = cycle_payable(available, policy=pol)
        if not decision.pay:
            return Skipped(provider_id, decision.message, available)
    gross = available if max_gross is None else min(available, max_gross)
    if gross <= 0:
        return Skipped(provider_id, MSG_NOTHING.format(balance=format_inr(available)), available)
    fy = financial_year(utcnow())
    tds, section, _result = tds_for_next(provider_id, fy, gross, pol)
    net = gross - tds
    if net <= 0:
        return Skipped(provider_id, MSG_TDS_EATS_ALL.format(tds=format_inr(tds),
                                                            gross=format_inr(gross)), available)
    key = _new_key()
    payout = m.Payout(provider_id=provider_id, fund_account_id=fund_account.id,
                      run_id=run.id if run is not None else None, booking_id=booking_id,
                      kind=kind, financial_year=fy, gross=gross, tds=tds, net=net,
                      tds_section=section if tds else None,
                      mode=payout_mode(net, pol, fund_account_type=fund_account.kind),
                      idempotency_key=key, status=m.QUEUED, attempts=1)
    db.session.add(payout)
    db.session.flush()
    db.session.add(m.PayoutAttempt(payout_id=payout.id, number=1, idempotency_key=key))
    payable = chart.provider_payable(provider_id)
    try:
        post("payout_initiated",
             [debit(payable, gross), credit(chart.TDS_PAYABLE, tds),
              credit(chart.PAYOUTS_IN_TRANSIT, net)],
             reference=("payout", payout.id), idempotency_key=f"payout:{payout.id}:initiated",
             memo=f"payout {payout.id} to provider {provider_id}",
             require_non_negative=[payable])
    except InsufficientBalance:
        db.session.expunge(payout)
        raise PayoutError("The payable changed while the payout was being made; try again.")
    record(actor, "payout.created", "payout", payout.id, after=_snapshot(payout) | {
        "kind": kind, "run_id": payout.run_id, "booking_id": booking_id, "mode": payout.mode,
        "financial_year": fy})
    enqueue(SEND_JOB, payout_id=payout.id, dedupe_key=f"payout-send:{payout.id}:1:0")
    return payout


# --- sending ------------------------------------------------------------------------------

def _current_attempt(payout):
    return db.session.scalar(
        sa.select(m.PayoutAttempt).where(m.PayoutAttempt.payout_id == payout.id)
        .order_by(m.PayoutAttempt.number.desc()).limit(1)
        .execution_options(populate_existing=True))


def _request_body(payout, attempt):
    # Identical on every request of one attempt (RazorpayX compares bodies per key).
    return dict(fund_account_id=payout.fund_account.razorpay_fund_account_id,
                amount=payout.net, mode=payout.mode, purpose="payout",
                reference_id=f"payout-{payout.id}-{attempt.number}",
                narration=f"Clinic Portal payout {payout.id}"[:30],
                notes={"payout_id": str(payout.id), "attempt": str(attempt.number),
                       "provider_id": str(payout.provider_id)})


def send_payout(payout_id):
    """Ask RazorpayX for the current attempt of a QUEUED payout, with its key.

    No answer or a 5xx: the same key is asked again later (it may have been created).
    A refusal (4xx): the attempt failed — the automatic retry takes over."""
    payout = _lock_payout(payout_id)
    if payout is None or payout.held or payout.status != m.QUEUED:
        return None
    attempt = _current_attempt(payout)
    if attempt is None or attempt.status != m.A_SENDING:
        return None
    attempt.requests += 1
    try:
        body = gateway().create_payout(attempt.idempotency_key, **_request_body(payout, attempt))
    except gw_errors.GatewayUnavailable as exc:  # includes GatewayTimeout: outcome unknown
        payout.last_error = str(exc)[:255]
        run_after = utcnow() + resend_backoff(attempt.requests)
        enqueue(SEND_JOB, payout_id=payout.id, run_after=run_after,
                dedupe_key=f"payout-send:{payout.id}:{attempt.number}:{attempt.requests}")
        record(None, "payout.send_unanswered", "payout", payout.id,
               after={"attempt": attempt.number, "requests": attempt.requests,
                      "error": payout.last_error, "retry_at": run_after.isoformat()})
        return None
    except gw_errors.GatewayError as exc:
        payout.last_error = str(exc)[:255]
        record(None, "payout.send_refused", "payout", payout.id,
               after={"attempt": attempt.number, "error": payout.last_error})
        _apply(payout, attempt, m.A_FAILED, {"failure_reason": exc.description or str(exc)})
        return None
    payout.last_error = None
    _link_remote_id(payout, attempt, body.get("id"))
    _apply(payout, attempt, _remote_status(body.get("status")), body)
    return body


def _link_remote_id(payout, attempt, remote_id):
    if remote_id and attempt.razorpay_payout_id is None:
        attempt.razorpay_payout_id = remote_id
        if attempt.number == payout.attempts:
            payout.razorpay_payout_id = remote_id


_REMOTE = {"queued": m.A_QUEUED, "pending": m.A_QUEUED, "scheduled": m.A_QUEUED,
           "processing": m.A_PROCESSING, "processed": m.A_PROCESSED,
           "failed": m.A_FAILED, "rejected": m.A_FAILED, "cancelled": m.A_FAILED,
           "reversed": m.A_REVERSED}


def _remote_status(status):
    return _REMOTE.get(str(status or "").lower())


# --- status changes ---------------------------------------------------------------------------

# Attempt statuses as the payout machine's states (SENDING is the machine's QUEUED).
_AS_PAYOUT = {m.A_SENDING: PayoutStatus.QUEUED, m.A_QUEUED: PayoutStatus.QUEUED,
              m.A_PROCESSING: PayoutStatus.PROCESSING, m.A_PROCESSED: PayoutStatus.PROCESSED,
              m.A_FAILED: PayoutStatus.FAILED, m.A_REVERSED: PayoutStatus.REVERSED}


def _apply(payout, attempt, target, entity=None):
    """Move one attempt (and its payout) to ``target`` if the payout state machine allows
    it from where the attempt is; a repeated or stale status changes nothing. Returns
    True when something changed."""
    if target is None:
        return False
    entity = entity or {}
    current = attempt.status
    if current == target:
        return False
    if current == m.A_SENDING and target == m.A_QUEUED:
        attempt.status = target
        return True
    if not PAYOUT.can(_AS_PAYOUT[current], _AS_PAYOUT[target]):
        log.info("payout %s attempt %s: stale %s after %s ignored", payout.id,
                 attempt.number, target, current)
        return False
    before = _snapshot(payout)
    attempt.status = target
    if entity.get("failure_reason"):
        attempt.failure_reason = str(entity["failure_reason"])[:255]
    if attempt.number != payout.attempts:
        # An older attempt (already final) cannot move the payout any more.
        return True
    new_status = PAYOUT.transition(payout.status, _AS_PAYOUT[target], allow_same=True)
    payout.status = str(new_status)
    if entity.get("utr"):
        payout.utr = str(entity["utr"])[:40]
    if target == m.A_PROCESSED:
        _on_processed(payout)
    elif target == m.A_FAILED:
        _on_failed(payout, attempt)
    elif target == m.A_REVERSED:
        _on_reversed(payout, entity)
    record(None, f"payout.{payout.status.lower()}", "payout", payout.id, before=before,
           after=_snapshot(payout) | {"attempt": attempt.number,
                                      "failure_reason": attempt.failure_reason})
    return True


def _processed_posted(payout):
    from portal.ledger.models import LedgerTransaction
    return db.session.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction).where(
        LedgerTransaction.idempotency_key == f"payout:{payout.id}:processed")) > 0


def _on_processed(payout):
    payout.processed_at = utcnow()
    payout.failure_reason = None
    payout.next_retry_at = None
    post("payout_processed",
         [debit(chart.PAYOUTS_IN_TRANSIT, payout.net), credit(chart.BANK, payout.net)],
         reference=("payout", payout.id), idempotency_key=f"payout:{payout.id}:processed",
         memo=f"payout {payout.id} processed")


def _return_to_payable(payout, kind, source_account):
    """The money goes back on the provider's payable, TDS un-deducted."""
    if payout.returned:
        return
    post(kind,
         [debit(source_account, payout.net), debit(chart.TDS_PAYABLE, payout.tds),
          credit(chart.provider_payable(payout.provider_id), payout.gross)],
         reference=("payout", payout.id),
         idempotency_key=f"payout:{payout.id}:{'reversed' if kind == 'payout_reversed' else 'failed'}",
         memo=f"payout {payout.id} {kind.split('_')[1]}: back to the payable")
    payout.returned = True


def _on_failed(payout, attempt):
    payout.failure_reason = attempt.failure_reason or "Payout failed"
    max_attempts = policy().payout_max_attempts
    if payout.attempts < max_attempts:
        payout.next_retry_at = utcnow() + retry_backoff(payout.attempts)
        enqueue(RETRY_JOB, payout_id=payout.id, run_after=payout.next_retry_at,
                dedupe_key=f"payout-retry:{payout.id}:{payout.attempts}")
        return
    # Given up: the money goes back to the payable and an admin must look.
    payout.next_retry_at = None
    _return_to_payable(payout, "payout_failed", chart.PAYOUTS_IN_TRANSIT)
    if not payout.alerted:
        payout.alerted = True
        raise_payout_alert(
            HIGH, f"Payout {payout.id} failed {payout.attempts} times",
            f"Payout of {format_inr(payout.net)} to provider {payout.provider_id} failed "
            f"after {payout.attempts} attempts: {payout.failure_reason}. The amount is back "
            f"on the provider's payable.", payout=payout)


def _on_reversed(payout, entity):
    payout.failure_reason = str(entity.get("failure_reason") or "Payout reversed")[:255]
    payout.next_retry_at = None
    source = chart.BANK if _processed_posted(payout) else chart.PAYOUTS_IN_TRANSIT
    _return_to_payable(payout, "payout_reversed", source)
    raise_payout_alert(MEDIUM, f"Payout {payout.id} reversed",
                       f"Payout of {format_inr(payout.net)} to provider {payout.provider_id} "
                       f"was reversed by the bank ({payout.failure_reason}); the amount is "
                       f"back on the provider's payable.", payout=payout,
                       kind="PAYOUT_REVERSED")


def apply_remote(entity):
    """Apply a RazorpayX payout entity (from a webhook or a fetch). Finds the attempt by
    the payout id, or by the notes we sent (when the creating request went unanswered).
    Returns True when something changed."""
    if not isinstance(entity, dict):
        return False
    remote_id = entity.get("id")
    attempt = None
    if remote_id:
        attempt = db.session.scalar(sa.select(m.PayoutAttempt).where(
            m.PayoutAttempt.razorpay_payout_id == remote_id))
    if attempt is None:
        notes = entity.get("notes") or {}
        try:
            payout_id, number = int(notes.get("payout_id")), int(notes.get("attempt"))
        except (TypeError, ValueError):
            return False
        attempt = db.session.scalar(sa.select(m.PayoutAttempt).where(
            m.PayoutAttempt.payout_id == payout_id, m.PayoutAttempt.number == number))
        if attempt is None:
            return False
    payout = _lock_payout(attempt.payout_id)
    attempt = db.session.get(m.PayoutAttempt, attempt.id, populate_existing=True)
    _link_remote_id(payout, attempt, remote_id)
    return _apply(payout, attempt, _remote_status(entity.get("status")), entity)


def refresh_payout(payout_id):
    """Poll RazorpayX for the current attempt (a lost webhook, an admin's "sync")."""
    payout = _lock_payout(payout_id)
    if payout is None:
        return False
    attempt = _current_attempt(payout)
    if attempt is None or not attempt.razorpay_payout_id:
        return False
    entity = gateway().fetch_payout(attempt.razorpay_payout_id)
    return _apply(payout, attempt, _remote_status(entity.get("status")), entity)


# --- retries ------------------------------------------------------------------------------

def retry_payout(payout_id, *, force=False, actor=None):
    """Start the next attempt of a FAILED payout (a new key: RazorpayX said the previous
    attempt failed, so nothing can still be processing under it)."""
    payout = _lock_payout(payout_id)
    if payout is None or payout.status != m.FAILED or payout.returned:
        return None
    if payout.held and not force:
        return None
    now = utcnow()
    if not force and payout.next_retry_at is not None and payout.next_retry_at > now:
        return None
    previous = _current_attempt(payout)
    if previous is not None and previous.status != m.A_FAILED:
        return None
    before = _snapshot(payout)
    number = payout.attempts + 1
    key = _new_key()
    payout.status = str(PAYOUT.transition(payout.status, PayoutStatus.QUEUED))
    payout.attempts = number
    payout.idempotency_key = key
    payout.razorpay_payout_id = None
    payout.next_retry_at = None
    db.session.add(m.PayoutAttempt(payout_id=payout.id, number=number, idempotency_key=key))
    db.session.flush()
    record(actor, "payout.retry", "payout", payout.id, before=before,
           after=_snapshot(payout) | {"attempt": number})
    enqueue(SEND_JOB, payout_id=payout.id, dedupe_key=f"payout-send:{payout.id}:{number}:0")
    return payout


def due_retries(now=None, limit=500):
    now = now or utcnow()
    return db.session.scalars(
        sa.select(m.Payout.id).where(m.Payout.status == m.FAILED,
                                     m.Payout.returned.is_(False), m.Payout.held.is_(False),
                                     m.Payout.next_retry_at <= now)
        .order_by(m.Payout.next_retry_at).limit(limit)).all()


# --- admin actions ------------------------------------------------------------------------

MSG_REASON = "Give a reason (at least 10 characters) for the audit trail."


def _require_admin(actor):
    if not getattr(actor, "is_admin", False):
        raise PayoutError("Only administrators can do this.")


def _reason(reason):
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise PayoutError(MSG_REASON)
    return reason


def hold_payout(actor, payout_id, reason, *, commit=True):
    """Stop a payout that has not left yet (or is waiting for a retry)."""
    _require_admin(actor)
    reason = _reason(reason)
    payout = _lock_payout(payout_id)
    if payout is None:
        raise PayoutError("No such payout.")
    if payout.returned or payout.status not in (m.QUEUED, m.FAILED):
        raise PayoutError("Only a queued or failed payout can be held.")
    attempt = _current_attempt(payout)
    if payout.status == m.QUEUED and attempt is not None and attempt.status != m.A_SENDING:
        raise PayoutError("This payout is already at RazorpayX and cannot be held.")
    before = _snapshot(payout)
    payout.held, payout.hold_reason = True, reason[:255]
    record(actor, "payout.hold", "payout", payout.id, before=before,
           after=_snapshot(payout) | {"reason": reason})
    if commit:
        db.session.commit()
    return payout


def release_payout(actor, payout_id, reason, *, commit=True):
    """Lift a hold: a queued payout is sent, a failed one retried at once."""
    _require_admin(actor)
    reason = _reason(reason)
    payout = _lock_payout(payout_id)
    if payout is None or not payout.held:
        raise PayoutError("This payout is not held.")
    before = _snapshot(payout)
    payout.held, payout.hold_reason = False, None
    record(actor, "payout.release", "payout", payout.id, before=before,
           after=_snapshot(payout) | {"reason": reason})
    if payout.status == m.QUEUED:
        enqueue(SEND_JOB, payout_id=payout.id,
                dedupe_key=f"payout-send:{payout.id}:release:{uuid.uuid4().hex[:12]}")
    elif payout.status == m.FAILED and not payout.returned:
        retry_payout(payout.id, force=True, actor=actor)
    if commit:
        db.session.commit()
    return payout


def retry_payout_now(actor, payout_id, reason, *, commit=True):
    """An admin's retry: a failed payout waiting for its automatic retry starts its next
    attempt now (even past the automatic limit); a payout given up on (money back on the
    payable) is paid again as a new MANUAL payout of at most the same gross."""
    _require_admin(actor)
    reason = _reason(reason)
    payout = _lock_payout(payout_id)
    if payout is None:
        raise PayoutError("No such payout.")
    record(actor, "payout.admin_retry", "payout", payout.id, after={"reason": reason})
    if payout.status == m.FAILED and not payout.returned:
        payout.held, payout.hold_reason = False, None
        result = retry_payout(payout.id, force=True, actor=actor)
    elif payout.returned:
        result = create_payout(payout.provider_id, kind=m.MANUAL_KIND, actor=actor,
                               apply_minimum=False, max_gross=payout.gross)
        if isinstance(result, Skipped):
            raise PayoutError(result.reason)
    else:
        raise PayoutError("Only a failed or reversed payout can be retried.")
    if commit:
        db.session.commit()
    return result


def pay_now(actor, provider_id, *, commit=True):
    """An admin pays a provider's whole payable now (no minimum)."""
    _require_admin(actor)
    result = create_payout(provider_id, kind=m.MANUAL_KIND, actor=actor, apply_minimum=False)
    if isinstance(result, Skipped):
        raise PayoutError(result.reason)
    if commit:
        db.session.commit()
    return result
