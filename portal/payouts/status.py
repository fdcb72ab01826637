"""A payout's status as RazorpayX reports it (webhooks, fetches, create answers): the
attempt and the payout move through their machines (``PAYOUT_ATTEMPT``, ``PAYOUT``), and
each move posts its ledger lines. Repeated and stale statuses change nothing."""

from __future__ import annotations

import logging
from enum import StrEnum

import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.audit.service import record
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain.bank_details import masked_in_text
from portal.domain.rates import format_inr
from portal.domain.states import (
    ATTEMPT_TO_PAYOUT,
    PAYOUT,
    PAYOUT_ATTEMPT,
    PayoutAttemptStatus,
    PayoutStatus,
)
from portal.extensions import db
from portal.gateway.confirm import Unconfirmed
from portal.jobs import enqueue
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import credit, debit, post, reverse
from portal.payouts import models as m
from portal.payouts.alerts import (
    HIGH,
    MEDIUM,
    PAYOUT_FAILED_ATTEMPT_MADE,
    PAYOUT_HOLD_OVERTAKEN,
    PAYOUT_REVERSED,
    PAYOUT_STOPPED,
    raise_payout_alert,
    tell_hold,
    tell_payout_status,
)
from portal.payouts.common import RETRY_JOB, current_attempt, lock_payout, retry_backoff, snapshot
from portal.payouts.gateway import gateway

log = logging.getLogger("portal.payouts")

_AS = PayoutAttemptStatus
_REMOTE = {
    "queued": _AS.QUEUED,
    "pending": _AS.QUEUED,
    "scheduled": _AS.QUEUED,
    "processing": _AS.PROCESSING,
    "processed": _AS.PROCESSED,
    "failed": _AS.FAILED,
    "rejected": _AS.FAILED,
    "cancelled": _AS.FAILED,
    "reversed": _AS.REVERSED,
}


# A person stopped the payout at RazorpayX (an approver rejected it, or it was cancelled
# while queued): FAILED, but final for the payout, never retried under a new key.
STOPPED_AT_RAZORPAYX = frozenset({"rejected", "cancelled"})


def _stopped_words(stopped):
    """How a stopped payout's ``failure_reason`` begins ("Rejected at RazorpayX")."""
    return f"{stopped.capitalize()} at RazorpayX"


_STOPPED_PREFIXES = tuple(_stopped_words(s) for s in sorted(STOPPED_AT_RAZORPAYX))


def remote_status(status):
    """RazorpayX's payout status as an attempt status (None when unknown)."""
    return _REMOTE.get(str(status or "").lower())


def remote_reason(entity):
    """Why RazorpayX failed, reversed or stopped a payout: ``status_details.description``
    (RazorpayX's current field), else the deprecated ``failure_reason``; None if neither.
    Masked (``bank_details.masked_in_text``): it is kept on the attempt and the payout and
    said in the audit, alerts and the provider's notice, and a bank's words may name the
    account in full."""
    details = entity.get("status_details")
    reason = details.get("description") if isinstance(details, dict) else None
    reason = reason or entity.get("failure_reason")
    return masked_in_text(reason)[:255] if reason else None


def went_to_the_bank(payout, attempt):
    """Whether RazorpayX made ``attempt`` and sent it on towards the provider's bank: it
    has RazorpayX's payout id (a request RazorpayX refused, and an attempt an admin marked
    failed, have none: nothing was made) and no person stopped it there (rejected by an
    approver of the clinic's RazorpayX account, or cancelled while queued)."""
    if attempt is None or not attempt.razorpay_payout_id:
        return False
    stopped = (
        attempt.number == payout.attempts
        and payout.returned
        and (payout.failure_reason or "").startswith(_STOPPED_PREFIXES)
    )
    return not stopped


def reason_for_provider(payout, attempt):
    """Why ``attempt`` failed or was reversed, as the provider may be told it, or None
    (decision, docs/payouts.md "What the provider is told of a failure"): RazorpayX's own
    reason for a payout that went to the bank (``went_to_the_bank``): it is about the
    provider's bank or account ("Beneficiary bank is down"). Nothing else is: a refused
    request's error is about the clinic's setup (an API key, the balance), an admin's
    "mark failed" note is the admins' audit note (as a hold's reason), a person's
    rejection at RazorpayX is the clinic's. Those stay on the admins' pages and in the
    audit; the provider's notice says a fixed sentence instead."""
    if not went_to_the_bank(payout, attempt):
        return None
    return (attempt.failure_reason or "").strip() or None


def reference_for(payout, attempt):
    """The ``reference_id`` an attempt is sent with (unique per attempt)."""
    return f"payout-{payout.id}-{attempt.number}"


def find_remote(payout, attempt):
    """RazorpayX's payout for an attempt whose creating request went unanswered, looked up
    by the attempt's reference: its entity, or None when RazorpayX lists none (amount and
    fund account must be ours too). Gateway errors are the caller's."""
    reference = reference_for(payout, attempt)
    fund_account = payout.fund_account.razorpay_fund_account_id
    for entity in gateway().list_payouts(reference_id=reference) or ():
        if (
            isinstance(entity, dict)
            and entity.get("reference_id") == reference
            and entity.get("amount") == payout.net
            and entity.get("fund_account_id") in (None, fund_account)
        ):
            return entity
    return None


def link_remote_id(payout, attempt, remote_id):
    if remote_id and attempt.razorpay_payout_id is None:
        attempt.razorpay_payout_id = remote_id
        if attempt.number == payout.attempts:
            payout.razorpay_payout_id = remote_id


def apply_status(payout, attempt, target, entity=None, actor=None):
    """Move one attempt (and, if it is the current one, its payout) to ``target`` if the
    machines allow it; a repeated or stale status changes nothing. Returns True when
    something changed. ``actor``: the admin whose action brought the status (a sync, a
    mark-failed), named on every audit row it writes; None for RazorpayX's own report (a
    webhook, a send's answer, a job's poll)."""
    if target is None:
        return False
    entity = entity or {}
    if attempt.status == target:
        return _late_details(payout, attempt, entity, actor)
    if attempt.status == _AS.FAILED and target in (_AS.QUEUED, _AS.PROCESSING, _AS.PROCESSED):
        _failed_attempt_made(payout, attempt, target, entity, actor)
        return False
    if not PAYOUT_ATTEMPT.can(attempt.status, target):
        log.info(
            "payout %s attempt %s: stale %s after %s ignored",
            payout.id,
            attempt.number,
            target,
            attempt.status,
        )
        return False
    before = snapshot(payout)
    was = attempt.status
    PAYOUT_ATTEMPT.move(attempt, target)
    if payout.held and target != _AS.FAILED and attempt.number == payout.attempts:
        _hold_overtaken(payout, attempt, target, actor)
    if was == _AS.SENDING and target == _AS.QUEUED:
        return True  # RazorpayX has it: the payout was QUEUED already
    if target in (_AS.FAILED, _AS.REVERSED) and remote_reason(entity):
        attempt.failure_reason = remote_reason(entity)
    if attempt.number != payout.attempts:
        # An older attempt (already final) cannot move the payout any more.
        return True
    PAYOUT.move(payout, ATTEMPT_TO_PAYOUT[_AS(target)], allow_same=True)
    if entity.get("utr"):
        payout.utr = str(entity["utr"])[:40]
    if target == _AS.PROCESSED:
        _on_processed(payout, entity)
    elif target == _AS.FAILED:
        _on_failed(payout, attempt, entity)
    elif target == _AS.REVERSED:
        _on_reversed(payout, entity)
    record(
        actor,
        f"payout.{payout.status.lower()}",
        "payout",
        payout.id,
        before=before,
        after=snapshot(payout)
        | {"attempt": attempt.number, "failure_reason": attempt.failure_reason},
    )
    tell_payout_status(payout, attempt)
    return True


def _late_details(payout, attempt, entity, actor=None):
    """An entity in the attempt's own status may still bring what was missing: the UTR
    (``payout.updated`` when the bank sends it, often after ``processed``), the reason, the
    fees of a processed payout. Kept without moving anything; True when something changed."""
    changed = False
    reason = remote_reason(entity)
    if attempt.status in (_AS.FAILED, _AS.REVERSED) and reason and reason != attempt.failure_reason:
        attempt.failure_reason = reason
        changed = True
    if attempt.number != payout.attempts:
        return changed  # an older attempt: the payout is the current one's
    utr = str(entity["utr"])[:40] if entity.get("utr") else None
    if utr and utr != payout.utr:
        record(
            actor, "payout.utr", "payout", payout.id, before={"utr": payout.utr}, after={"utr": utr}
        )
        payout.utr = utr
        changed = True
    if attempt.status == _AS.PROCESSED and not payout.returned:
        changed = _post_fees(payout, entity) or changed
    return changed


def _failed_attempt_made(payout, attempt, target, entity, actor=None):
    """RazorpayX reports an attempt we hold as FAILED as made after all (only an admin's
    "mark as failed" of an attempt it never listed can lead here: RazorpayX's own failures
    are final). Its money may have gone out twice, once under this attempt and once under
    the next one's key: the FAILED stays (the ledger followed it), and the admins are told
    at once, with the audit row, to recover it. Once per attempt: RazorpayX's later
    statuses of it (processing, processed, updated) add nothing."""
    told = db.session.scalars(
        sa.select(AuditEntry.after).where(
            AuditEntry.object_type == "payout",
            AuditEntry.object_id == str(payout.id),
            AuditEntry.action == "payout.failed_attempt_made",
        )
    )
    if any((after or {}).get("attempt") == attempt.number for after in told):
        return
    record(
        actor,
        "payout.failed_attempt_made",
        "payout",
        payout.id,
        after={
            "attempt": attempt.number,
            "status": str(target),
            "razorpay_payout_id": entity.get("id") or attempt.razorpay_payout_id,
        },
    )
    raise_payout_alert(
        HIGH,
        f"Payout {payout.id}: an attempt marked failed was made at RazorpayX",
        f"RazorpayX reports attempt {attempt.number} of payout {payout.id} "
        f"({format_inr(payout.net)} to provider {payout.provider_id}) as "
        f"{str(target).lower()}, though it was marked failed. The provider may have been "
        f"paid twice: check RazorpayX and recover the second payment.",
        payout=payout,
        kind=PAYOUT_FAILED_ATTEMPT_MADE,
        attempt=attempt.number,
    )


def _hold_overtaken(payout, attempt, target, actor=None):
    """RazorpayX has (or had) a held payout: the hold stopped nothing, so it is lifted (the
    held list and counts must not show it) and the admins are told. (A hold is refused once
    a request went unanswered; this covers one that slipped through, e.g. a send whose
    request count was lost with its crashed transaction.) A FAILED attempt keeps the hold:
    it stops the retry."""
    reason = payout.hold_reason
    payout.held, payout.hold_reason = False, None
    record(
        actor,
        "payout.hold_overtaken",
        "payout",
        payout.id,
        after={"attempt": attempt.number, "status": str(target), "hold_reason": reason},
    )
    raise_payout_alert(
        MEDIUM,
        f"Payout {payout.id} went out while held",
        f"Payout {payout.id} ({format_inr(payout.net)} to provider {payout.provider_id}) was "
        f"held ({reason}), but RazorpayX already had it: it is now {str(target).lower()}. "
        f"The hold is lifted.",
        payout=payout,
        kind=PAYOUT_HOLD_OVERTAKEN,
        attempt=attempt.number,
    )
    tell_hold(payout, held=False, step=None)  # the provider was told it waited


def _posting(payout, what):
    """The payout's ledger transaction ``payout:<id>:<what>``, or None."""
    return db.session.scalar(
        sa.select(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == f"payout:{payout.id}:{what}"
        )
    )


def _processed_posted(payout):
    return _posting(payout, "processed") is not None


def _on_processed(payout, entity):
    payout.processed_at = utcnow()
    payout.failure_reason = None
    payout.next_retry_at = None
    post(
        "payout_processed",
        [debit(chart.PAYOUTS_IN_TRANSIT, payout.net), credit(chart.BANK, payout.net)],
        reference=("payout", payout.id),
        idempotency_key=f"payout:{payout.id}:processed",
        memo=f"payout {payout.id} processed",
    )
    _post_fees(payout, entity)


def _paise(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _post_fees(payout, entity):
    """RazorpayX's fee for a processed payout and the GST on it (the entity's ``fees``,
    GST included, and ``tax``), taken from the RazorpayX balance (``bank``) on top of the
    amount: posted once per payout (an entity without fees, e.g. a free payout, posts
    nothing; a later one with them still can). True when posted now."""
    fees, tax = _paise(entity.get("fees")), _paise(entity.get("tax"))
    if fees <= 0 or _posting(payout, "fees") is not None:
        return False
    if not 0 <= tax <= fees:
        log.warning("payout %s: fees %s with tax %s not posted", payout.id, fees, tax)
        return False
    post(
        m.FEES_KIND,
        [
            debit(chart.PAYOUT_FEES, fees - tax),
            debit(chart.GST_INPUT, tax),
            credit(chart.BANK, fees),
        ],
        reference=("payout", payout.id),
        idempotency_key=f"payout:{payout.id}:fees",
        memo=f"payout {payout.id}: RazorpayX fee and GST",
    )
    return True


def _return_fees(payout):
    """A reversal gives the payout's fee and its GST back to the RazorpayX balance."""
    posted = _posting(payout, "fees")
    if posted is not None:
        reverse(
            posted,
            kind=m.FEES_RETURNED_KIND,
            idempotency_key=f"payout:{payout.id}:fees_returned",
            memo=f"payout {payout.id} reversed: RazorpayX fee and GST back",
        )


def _return_to_payable(payout, kind, source_account):
    """The money goes back on the provider's payable, TDS un-deducted."""
    if payout.returned:
        return
    suffix = "reversed" if kind == m.REVERSED_KIND else "failed"
    post(
        kind,
        [
            debit(source_account, payout.net),
            debit(chart.TDS_PAYABLE, payout.tds),
            credit(chart.provider_payable(payout.provider_id), payout.gross),
        ],
        reference=("payout", payout.id),
        idempotency_key=f"payout:{payout.id}:{suffix}",
        memo=f"payout {payout.id} {kind.split('_')[1]}: back to the payable",
    )
    payout.returned = True


def will_retry(payout):
    """Whether ``payout``'s failed attempt is followed by another one: it is FAILED and its
    money still in transit (``_on_failed`` set the retry's time; a hold delays the retry
    until it is lifted). False once the money is back on the payable (the last attempt
    failed, or a person stopped it at RazorpayX), and for any other status."""
    return payout.status == PayoutStatus.FAILED and not payout.returned


class NextStep(StrEnum):
    """What follows for a payout whose money waits on us (``next_step``)."""

    RETRY = "retry"  # failed: its next attempt at its time (``next_retry_at``)
    RETRY_ON_RELEASE = "retry_on_release"  # failed and held: tried again once released
    SEND_ON_RELEASE = "send_on_release"  # queued and held: sent once released


def next_step(payout):
    """What the provider can expect of ``payout`` (a ``NextStep``), or None: at RazorpayX,
    paid, or back on the payable. ``will_retry`` answers whether the money is still in
    transit, and a hold does not change that; but a held payout is neither retried nor
    sent until an admin lifts the hold (docs/payouts.md), which then tries a failed one
    again at once and sends a queued one (``admin.release_payout``). The pages ("retry 2
    pending", "on hold at the clinic …") and the provider's notices read this."""
    if will_retry(payout):
        return NextStep.RETRY_ON_RELEASE if payout.held else NextStep.RETRY
    if payout.held and payout.status == PayoutStatus.QUEUED and not payout.returned:
        return NextStep.SEND_ON_RELEASE
    return None


# The steps that wait for an admin to lift the payout's hold.
HELD_BACK = frozenset({NextStep.RETRY_ON_RELEASE, NextStep.SEND_ON_RELEASE})


def held_back(payout):
    """Whether ``payout``'s money waits for the clinic (``next_step``): held, so neither
    on its way to the bank nor paid (the provider's pages say "on hold at the clinic")."""
    return next_step(payout) in HELD_BACK


def _on_failed(payout, attempt, entity):
    payout.failure_reason = attempt.failure_reason or "Payout failed"
    stopped = str(entity.get("status") or "").lower()
    if stopped in STOPPED_AT_RAZORPAYX:
        _on_stopped(payout, attempt, stopped)
        return
    max_attempts = policy().payout_max_attempts
    if payout.attempts < max_attempts:
        payout.next_retry_at = utcnow() + retry_backoff(payout.attempts)
        enqueue(
            RETRY_JOB,
            payout_id=payout.id,
            run_after=payout.next_retry_at,
            dedupe_key=f"payout-retry:{payout.id}:{payout.attempts}",
        )
        return
    # Given up: the money goes back to the payable and an admin must look.
    payout.next_retry_at = None
    _return_to_payable(payout, m.FAILED_KIND, chart.PAYOUTS_IN_TRANSIT)
    if not payout.alerted:
        payout.alerted = True
        raise_payout_alert(
            HIGH,
            f"Payout {payout.id} failed {payout.attempts} times",
            f"Payout of {format_inr(payout.net)} to provider {payout.provider_id} failed "
            f"after {payout.attempts} attempts: {payout.failure_reason}. The amount is back "
            f"on the provider's payable.",
            payout=payout,
        )


def _on_stopped(payout, attempt, stopped):
    """Rejected by an approver at RazorpayX, or cancelled there: a person refused this
    payout, so it is final (decision, docs/payouts.md): never retried under a new key, the
    money back on the payable, and a HIGH alert."""
    why = _stopped_words(stopped)
    payout.failure_reason = (
        f"{why}: {attempt.failure_reason}"[:255] if attempt.failure_reason else why
    )
    payout.next_retry_at = None
    _return_to_payable(payout, m.FAILED_KIND, chart.PAYOUTS_IN_TRANSIT)
    payout.alerted = True
    raise_payout_alert(
        HIGH,
        f"Payout {payout.id} {stopped} at RazorpayX",
        f"Payout of {format_inr(payout.net)} to provider {payout.provider_id} was {stopped} "
        f"at RazorpayX ({attempt.failure_reason or 'no reason given'}). It is not sent again "
        f"under a new key: the amount is back on the provider's payable, which their next "
        f"payout run (or the INSTANT sweep) pays.",
        payout=payout,
        kind=PAYOUT_STOPPED,
    )


def _on_reversed(payout, entity):
    payout.failure_reason = remote_reason(entity) or "Payout reversed"
    payout.next_retry_at = None
    processed = _processed_posted(payout)
    source = chart.BANK if processed else chart.PAYOUTS_IN_TRANSIT
    _return_to_payable(payout, m.REVERSED_KIND, source)
    if processed:
        _return_fees(payout)
    raise_payout_alert(
        MEDIUM,
        f"Payout {payout.id} reversed",
        f"Payout of {format_inr(payout.net)} to provider {payout.provider_id} "
        f"was reversed by the bank ({payout.failure_reason}); the amount is "
        f"back on the provider's payable.",
        payout=payout,
        kind=PAYOUT_REVERSED,
    )


def apply_remote(entity, *, confirm=False):
    """Apply a RazorpayX payout entity (from a webhook or a fetch). Finds the attempt by
    the payout id, or by the notes we sent (when the creating request went unanswered).
    With ``confirm`` (a webhook's fetched record) the amount and reference must be ours,
    else ``Unconfirmed`` and nothing changes. Returns True when something changed."""
    if not isinstance(entity, dict):
        return False
    with unit_of_work():
        remote_id = entity.get("id")
        attempt = find_attempt(entity)
        if attempt is None:
            return False
        payout = lock_payout(attempt.payout_id)
        attempt = db.session.get(m.PayoutAttempt, attempt.id, populate_existing=True)
        if confirm:
            _check_ours(payout, attempt, entity)
        link_remote_id(payout, attempt, remote_id)
        return apply_status(payout, attempt, remote_status(entity.get("status")), entity)


def find_attempt(entity):
    """Our attempt for a RazorpayX payout entity: by the payout id, else by the notes we
    sent (when the creating request went unanswered); None when it is not ours."""
    if not isinstance(entity, dict):
        return None
    remote_id = entity.get("id")
    if remote_id:
        attempt = db.session.scalar(
            sa.select(m.PayoutAttempt).where(m.PayoutAttempt.razorpay_payout_id == remote_id)
        )
        if attempt is not None:
            return attempt
    notes = entity.get("notes") or {}
    try:
        payout_id, number = int(notes.get("payout_id")), int(notes.get("attempt"))
    except (TypeError, ValueError, AttributeError):
        return None
    return db.session.scalar(
        sa.select(m.PayoutAttempt).where(
            m.PayoutAttempt.payout_id == payout_id, m.PayoutAttempt.number == number
        )
    )


def _check_ours(payout, attempt, entity):
    reference = reference_for(payout, attempt)
    amount = entity.get("amount")
    same_amount = isinstance(amount, int) and not isinstance(amount, bool) and amount == payout.net
    if not same_amount or entity.get("reference_id") not in (None, reference):
        raise Unconfirmed(
            f"payout {entity.get('id')} is {amount!r} paise ({entity.get('reference_id')!r}); "
            f"ours ({payout.id}, attempt {attempt.number}) is {payout.net} ({reference})"
        )


def refresh_payout(payout_id, actor=None):
    """Poll RazorpayX for the current attempt (a lost webhook, an admin's "sync": the
    ``actor``, named on the audit rows, as ``apply_status``); an attempt sent but never
    answered is looked up by its reference and adopted if found."""
    with unit_of_work():
        payout = lock_payout(payout_id)
        if payout is None:
            return False
        attempt = current_attempt(payout)
        if attempt is None:
            return False
        if attempt.razorpay_payout_id:
            entity = gateway().fetch_payout(attempt.razorpay_payout_id)
        elif attempt.status == _AS.SENDING and attempt.requests > 0:
            # Sent, never answered: RazorpayX may have it under the attempt's reference.
            entity = find_remote(payout, attempt)
            if entity is None:
                return False
            link_remote_id(payout, attempt, entity.get("id"))
        else:
            return False
        return apply_status(
            payout, attempt, remote_status(entity.get("status")), entity, actor=actor
        )
