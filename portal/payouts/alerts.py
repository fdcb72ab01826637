"""What the payout engine tells: admin alerts, and the changes the provider hears of.

``raise_payout_alert`` writes an audit row ``payout.alert`` (the alert is on record
whoever listens) and sends ``portal.events.payout_alert``; the notification capability
connects to it (every active admin gets a notice, HIGH ones also a mail).
``tell_payout_status`` and ``tell_validation`` send ``events.payout_status_changed`` and
``events.fund_account_checked`` (notify tells the provider: paid, failed, reversed, an
account not validated); ``tell_hold`` sends ``events.payout_hold_changed`` (held,
released). Payouts never import notify."""

import logging
import uuid

from portal import events
from portal.audit.service import record

log = logging.getLogger("portal.payouts")

HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"
PAYOUT_FAILED, PAYOUT_REVERSED = "PAYOUT_FAILED", "PAYOUT_REVERSED"
# A resend under the key of an unanswered request was refused: RazorpayX may have the payout.
PAYOUT_UNCONFIRMED = "PAYOUT_UNCONFIRMED"
# A held payout that RazorpayX had already: the hold stopped nothing and was lifted.
PAYOUT_HOLD_OVERTAKEN = "PAYOUT_HOLD_OVERTAKEN"
# An attempt marked failed that RazorpayX made after all: possibly paid twice.
PAYOUT_FAILED_ATTEMPT_MADE = "PAYOUT_FAILED_ATTEMPT_MADE"
# Rejected by an approver or cancelled at RazorpayX: final, back on the payable, not retried.
PAYOUT_STOPPED = "PAYOUT_STOPPED"
# RazorpayX refused a provider's bank account or UPI id for no field of theirs (the clinic's
# API key, its RazorpayX account): only the clinic can fix it.
FUND_ACCOUNT_REFUSED = "FUND_ACCOUNT_REFUSED"


def raise_payout_alert(
    severity,
    title,
    message,
    *,
    payout=None,
    kind=PAYOUT_FAILED,
    actor=None,
    attempt=None,
    provider_id=None,
    link=None,
    dedupe_key=None,
):
    """Record and announce the alert; returns what the receivers made (notices).

    A payout's alert of one kind reaches each admin once (its dedupe key), raised again by
    every resend or look-up that finds the same: once per ``attempt`` (its number) for the
    kinds an attempt has (outcome unknown, went out while held, marked failed but made),
    as a retry's attempt may meet the same again, and that is news. The first attempt
    keeps the payout's key (the one such alerts had before). An alert of no payout names
    its provider (``provider_id``), its page (``link``) and its own ``dedupe_key``, if any."""
    details = {"severity": severity, "title": title, "message": message, "kind": kind}
    if payout is not None:
        details.update(payout_id=payout.id, provider_id=payout.provider_id)
    elif provider_id is not None:
        details.update(provider_id=provider_id)
    if attempt is not None:
        details.update(attempt=attempt)
    if payout is not None:
        entity, entity_id = "payout", payout.id
    elif provider_id is not None:
        entity, entity_id = "provider", provider_id
    else:
        entity, entity_id = "payouts", None
    record(actor, "payout.alert", entity, entity_id, after=details)
    log.warning("payout alert %s: %s — %s", severity, title, message)
    answers = events.payout_alert.send(
        "payouts",
        severity=severity,
        kind=kind,
        title=title,
        message=message,
        link=f"/admin/payouts/{payout.id}" if payout is not None else link,
        dedupe_key=_dedupe_key(kind, payout, attempt) if payout is not None else dedupe_key,
    )
    return [made for _receiver, result in answers for made in (result or ())]


def _dedupe_key(kind, payout, attempt):
    if payout is None:
        return None
    if attempt is not None and attempt > 1:
        return f"{kind}:{payout.id}:{attempt}"
    return f"{kind}:{payout.id}"


def tell_payout_status(payout, attempt):
    """The payout moved (in the move's transaction): whoever listens is told once per move."""
    events.payout_status_changed.send(
        "payouts", payout_id=payout.id, status=payout.status, attempt=attempt.number
    )


def tell_hold(payout, *, held, step):
    """An admin held the payout or lifted its hold (``step``: ``status.next_step`` while
    held; None for a hold RazorpayX overtook). Each hold and release is its own news (the
    ``episode``): a payout held twice is told twice."""
    events.payout_hold_changed.send(
        "payouts",
        payout_id=payout.id,
        held=held,
        step=str(step) if step else None,
        episode=uuid.uuid4().hex[:12],
    )


def tell_validation(row):
    """A fund account's validation moved it (VALIDATED or FAILED), once per account."""
    events.fund_account_checked.send("payouts", fund_account_id=row.id, status=row.status)
