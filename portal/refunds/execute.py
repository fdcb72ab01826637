"""Gateway refunds at Razorpay: creating one (its own idempotency key on every attempt),
applying what Razorpay says about it (create answer, fetch, webhook; any order, any
repetition), retrying a refund Razorpay failed as a new one, and fetching stragglers."""

import logging

import sqlalchemy as sa

from portal import events, jobs
from portal.audit.service import record
from portal.db import unit_of_work, utcnow
from portal.domain.ids import parse_id
from portal.domain.states import REFUND, RefundStatus
from portal.extensions import db
from portal.gateway import BadRequest, GatewayError, GatewayUnavailable, get_payin
from portal.gateway.confirm import Unconfirmed
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.refunds.common import lock_refund, max_attempts, replacement, retry_delay
from portal.refunds.models import GATEWAY, Refund

log = logging.getLogger("portal.refunds")


def _notes(refund):
    return {"portal_refund": str(refund.id), "booking": str(refund.booking_id)}


def execute_refund(refund_id, now=None):
    """Ask Razorpay for one PENDING gateway refund (the refund's own idempotency key on
    every attempt). Network trouble: try again later (same key), then FAILED and an
    alert after ``max_attempts()``; a refusal: FAILED and an alert at once. Runs in the
    job's unit of work, nested)."""
    with unit_of_work():
        refund = lock_refund(refund_id)
        if (
            refund is None
            or refund.destination != GATEWAY
            or refund.status != RefundStatus.PENDING
            or refund.superseded
            or refund.razorpay_refund_id
        ):
            return refund
        now = now or utcnow()
        refund.attempts += 1
        refund.last_request_at = now  # reconciliation dates the refund by its requests
        if refund.first_request_at is None:
            refund.first_request_at = now
        try:
            answer = get_payin().create_refund(
                refund.razorpay_payment_id,
                refund.amount,
                refund.idempotency_key,
                notes=_notes(refund),
            )
        except GatewayUnavailable as exc:
            refund.failure_reason = str(exc)[:500]
            if refund.attempts >= max_attempts():
                _fail(refund, f"Razorpay could not be reached: {exc}"[:500], now)
            else:
                refund.next_retry_at = now + retry_delay(refund.attempts)
            record(
                None,
                "refund.attempt_failed",
                "refund",
                refund.id,
                after={"attempt": refund.attempts, "error": str(exc)[:200], "retryable": True},
            )
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
    any order, any repetition. Runs in the caller's unit of work.

    A row we gave up on without an answer (FAILED, no Razorpay id: every create timed
    out) that turns out to exist at Razorpay is PENDING again: Razorpay will pay it, so it
    must not be retried under a new key or sent to the wallet."""
    rid = entity.get("id")
    if rid and refund.razorpay_refund_id is None:
        refund.razorpay_refund_id = rid
        if (
            refund.status == RefundStatus.FAILED
            and not refund.superseded
            and entity.get("status") != "failed"
        ):
            REFUND.move(refund, RefundStatus.PENDING)
            refund.failure_reason, refund.next_retry_at, refund.alerted = None, None, False
            record(None, "refund.found_at_gateway", "refund", refund.id, after={"id": rid})
    elif rid and refund.razorpay_refund_id != rid:
        log.warning(
            "refund %s: Razorpay refund %s is not ours (%s)",
            refund.id,
            rid,
            refund.razorpay_refund_id,
        )
        return refund
    status = entity.get("status")  # Razorpay's word for it, not ours
    if status == "processed":
        mark_processed(refund, now)
    elif status == "failed":
        _failed_at_gateway(refund, now)
    else:
        refund.updated_at = now or utcnow()
    return refund


def mark_processed(refund, now=None):
    if refund.status == RefundStatus.PROCESSED:
        return refund
    if refund.superseded:  # replaced by a retry or the wallet: never pay twice
        log.error("refund %s processed after it was replaced; check with Razorpay", refund.id)
        record(None, "refund.processed_after_replaced", "refund", refund.id)
        return refund
    if refund.status == RefundStatus.FAILED:  # an admin retried before the late success
        log.warning("refund %s processed after being marked failed", refund.id)
        REFUND.move(refund, RefundStatus.PENDING)
    REFUND.move(refund, RefundStatus.PROCESSED)
    refund.processed_at = now or utcnow()
    refund.failure_reason = None
    post(
        "refund_processed",
        [
            debit(chart.REFUNDS_PAYABLE, refund.amount),
            credit(chart.GATEWAY_CLEARING, refund.amount),
        ],
        reference=("refund", refund.id),
        idempotency_key=f"refund:{refund.id}:processed",
    )
    record(
        None,
        "refund.processed",
        "refund",
        refund.id,
        after={"razorpay_refund_id": refund.razorpay_refund_id, "amount": refund.amount},
    )
    events.refund_processed.send("refunds", refund_id=refund.id)
    return refund


def _fail(refund, reason, now=None):
    """PENDING → FAILED (our side gave up, or Razorpay said no): admins are alerted."""
    if refund.status == RefundStatus.FAILED:
        return refund
    REFUND.move(refund, RefundStatus.FAILED)
    refund.failure_reason = reason[:500]
    refund.next_retry_at = None
    refund.failures = (refund.failures or 0) + 1
    record(None, "refund.failed", "refund", refund.id, after={"reason": refund.failure_reason})
    if not refund.alerted:
        # Each episode alerts once: found at Razorpay (apply_gateway_refund) or retried by
        # an admin (failed.retry_refund), it is unalerted again and may fail again.
        refund.alerted = True
        events.refund_failed.send("refunds", refund_id=refund.id, episode=refund.failures)
    return refund


def _chain_length(refund):
    n, current = 1, refund
    while current.retry_of_id is not None:
        current = db.session.get(Refund, current.retry_of_id)
        n += 1
    return n


def successor(refund, actor=None):
    """A new refund (new idempotency key) for a refund Razorpay marked failed; the old
    row stays FAILED and superseded. The ledger is untouched (refunds_payable holds it)."""
    new = replacement(
        refund,
        actor,
        destination=GATEWAY,
        status=RefundStatus.PENDING,
        payment_id=refund.payment_id,
        razorpay_payment_id=refund.razorpay_payment_id,
    )
    jobs.enqueue("refunds.execute", refund_id=new.id, dedupe_key=f"refund-exec:{new.id}")
    return new


def _failed_at_gateway(refund, now=None):
    """``refund.failed``: retried automatically as a new refund while the chain is
    shorter than ``max_attempts()``, then FAILED for an admin (alerted)."""
    if refund.status != RefundStatus.PENDING:
        return refund
    record(
        None,
        "refund.failed_at_gateway",
        "refund",
        refund.id,
        after={"razorpay_refund_id": refund.razorpay_refund_id},
    )
    attempts = _chain_length(refund)
    if attempts < max_attempts():
        REFUND.move(refund, RefundStatus.FAILED)
        refund.failure_reason = "Razorpay reported the refund as failed; retried"
        successor(refund)
        return refund
    return _fail(refund, f"Razorpay reported the refund as failed ({attempts} attempts)", now)


def payment_refunds_at_gateway(refund):
    """Razorpay's refunds of the payment ``refund`` gives back (``GatewayError`` when it
    cannot be asked)."""
    return get_payin().fetch_payment_refunds(refund.razorpay_payment_id)


def _our_id_in(entity):
    notes = entity.get("notes")
    return str(notes.get("portal_refund")) if isinstance(notes, dict) else None


def refund_at_gateway(refund, theirs=None):
    """Razorpay's record of our refund, found by our id in its notes, or None. For a refund
    whose create answers were all lost: Razorpay may hold it all the same. ``theirs``:
    the payment's refunds, when already asked for."""
    theirs = payment_refunds_at_gateway(refund) if theirs is None else theirs
    for entity in theirs:
        if _our_id_in(entity) == str(refund.id):
            return entity
    return None


def made_outside(razorpay_payment_id, theirs):
    """Razorpay's refunds of a payment made outside the portal (on its dashboard), oldest
    first: of its refunds ``theirs``, those not failed that name no refund row of ours, by
    Razorpay's id or by our id in their notes; each as ``(entity, paise left)``, less
    what settlements of failed refunds already counted of it (``refunds.outside``: rows
    naming it by ``outside_refund_id``), so a dashboard refund is counted once."""
    rows = db.session.execute(
        sa.select(Refund.id, Refund.razorpay_refund_id, Refund.outside_refund_id, Refund.amount)
        .where(Refund.razorpay_payment_id == razorpay_payment_id)
        .order_by(Refund.id)  # the settled parts summed in one order on every backend
    ).all()
    ours = {str(row.id) for row in rows}
    known = {row.razorpay_refund_id for row in rows if row.razorpay_refund_id}
    counted = {}
    for row in rows:
        if row.outside_refund_id:
            counted[row.outside_refund_id] = counted.get(row.outside_refund_id, 0) + row.amount
    found = [
        entity
        for entity in theirs
        if entity.get("status") != "failed"
        and entity.get("id") not in known
        and _our_id_in(entity) not in ours
    ]
    found.sort(key=lambda e: (int(e.get("created_at") or 0), str(e.get("id") or "")))
    return [
        (entity, max(0, int(entity.get("amount") or 0) - counted.get(entity.get("id"), 0)))
        for entity in found
    ]


def refunded_outside(razorpay_payment_id, theirs):
    """Paise Razorpay gave back of a payment outside the portal (on its dashboard) that no
    settlement has counted yet (``made_outside``)."""
    return sum(left for _entity, left in made_outside(razorpay_payment_id, theirs))


def sync_refund(refund_id, now=None):
    """Fetch a straggler (PENDING with a Razorpay id) and apply its status."""
    with unit_of_work():
        refund = lock_refund(refund_id)
        if refund is None or refund.status != RefundStatus.PENDING or not refund.razorpay_refund_id:
            return refund
        try:
            entity = get_payin().fetch_refund(refund.razorpay_refund_id)
        except GatewayError as exc:
            log.info("refund %s not fetched: %s", refund.id, exc)
            return refund
        return apply_gateway_refund(refund, entity, now=now)


def _same_amount(ours, theirs):
    return isinstance(theirs, int) and not isinstance(theirs, bool) and theirs == ours


def find_refund_for(entity):
    """Our row for a Razorpay refund entity: by its id, else by our id in its notes."""
    rid = entity.get("id")
    if rid:
        found = db.session.scalar(sa.select(Refund.id).where(Refund.razorpay_refund_id == rid))
        if found is not None:
            return lock_refund(found)
    ref = (
        (entity.get("notes") or {}).get("portal_refund")
        if isinstance(entity.get("notes"), dict)
        else None
    )
    if parse_id(str(ref or "")):
        refund = lock_refund(parse_id(str(ref)))
        if refund is not None and refund.razorpay_payment_id == entity.get("payment_id"):
            return refund
    return None


def refund_event(entity, *, created=False):
    """A ``refund.*`` webhook: our row found by its Razorpay id (or our id in its notes) and
    Razorpay's view applied. ``refund.created`` only teaches the id; the status moves with
    processed / failed (or the poll). ``entity`` is the gateway's fetched record (see
    handlers); it must be for our refund's payment and amount, else ``Unconfirmed``."""
    with unit_of_work():
        refund = find_refund_for(entity)
        if refund is None:
            log.info("refund event for an unknown refund %s", entity.get("id"))
            return None
        if refund.razorpay_payment_id != entity.get("payment_id") or not _same_amount(
            refund.amount, entity.get("amount")
        ):
            raise Unconfirmed(
                f"refund {entity.get('id')} is {entity.get('amount')!r} paise of payment "
                f"{entity.get('payment_id')!r}; ours ({refund.id}) is {refund.amount} of "
                f"{refund.razorpay_payment_id!r}"
            )
        if created:
            entity = {"id": entity["id"], "status": "pending"}
        return apply_gateway_refund(refund, entity)
