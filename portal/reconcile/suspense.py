"""What accepting a case posts: the money the gateway's record and ours disagree on, moved
between gateway clearing and ``reconciliation_suspense`` (docs/ledger.md).

Accepting says "the gateway's record stands": a payment we never made (the demo's stray
₹499) is money the gateway holds for us that no visit owns, an amount altered at the
gateway is the difference, a payment the gateway does not have is money clearing counted
that is not there. Gateway clearing is made to hold what the gateway's record says, so
``flask ledger check`` agrees with the gateway again (review finding: it stayed red after
the demo's stray payment was accepted), and the difference waits in suspense for whoever
deals with the money (refunds the stray payer, claims a shortfall from Razorpay) with a
manual posting. A case that reopens (the gateway's record changed again) takes back what
it posted, and its next accept posts the difference then.

Only when both sides are settled: our side absent or having moved its money (captured,
processed), the gateway's absent or final. A payment of ours still pending, failed or
expired may yet be captured by a webhook or a sync, which post to clearing themselves:
an accept that posted too would count the money twice, so it posts nothing (sync those).
Payouts leave from the bank, not clearing; settlement cases move no money."""

import sqlalchemy as sa

from portal.extensions import db
from portal.ledger.accounts import GATEWAY_CLEARING, RECONCILIATION_SUSPENSE
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.service import credit, debit, post

ACCEPTED = "accepted"  # the case's resolution when an admin accepted it
KIND = "reconciliation_suspense"
REFERENCE = "recon_case"
# By kind: our status that put the money in clearing, the gateway's statuses that hold it
# (a payment refunded later was captured all the same), and the direction (+ in, − out).
MOVED = {
    "payment": ("SUCCESSFUL", ("captured", "refunded"), 1),
    "refund": ("PROCESSED", ("processed",), -1),
}
GATEWAY_FINAL = {
    "payment": ("captured", "refunded", "failed"),
    "refund": ("processed", "failed"),
}


def difference(kind, ours_amount, ours_status, theirs_amount, theirs_status):
    """Paise the gateway's record puts in clearing beyond what ours put there (negative:
    less); None when a side may still move (nothing to post). Pure."""
    if kind not in MOVED:
        return 0
    our_moved, their_held, sign = MOVED[kind]
    if ours_status is not None and ours_status != our_moved:
        return None
    if theirs_status is not None and theirs_status not in GATEWAY_FINAL[kind]:
        return None
    ours = int(ours_amount or 0) if ours_status == our_moved else 0
    theirs = int(theirs_amount or 0) if theirs_status in their_held else 0
    return sign * (theirs - ours)


def _posted(case_id):
    """What the case's postings put in clearing so far (debits − credits), and how many."""
    total, count = db.session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0),
            sa.func.count(sa.distinct(LedgerTransaction.id)),
        )
        .select_from(LedgerTransaction)
        .outerjoin(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .outerjoin(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.reference_type == REFERENCE,
            LedgerTransaction.reference_id == str(case_id),
            sa.or_(LedgerAccount.code == GATEWAY_CLEARING, LedgerAccount.code.is_(None)),
        )
    ).one()
    return int(total), int(count)


def _post(case_id, amount, count, memo):
    """Clearing moved by ``amount`` (debit when positive) against suspense."""
    lines = (
        [debit(GATEWAY_CLEARING, amount), credit(RECONCILIATION_SUSPENSE, amount)]
        if amount > 0
        else [debit(RECONCILIATION_SUSPENSE, -amount), credit(GATEWAY_CLEARING, -amount)]
    )
    post(
        KIND,
        lines,
        reference=(REFERENCE, str(case_id)),
        idempotency_key=f"recon_case:{case_id}:{count + 1}",
        memo=memo,
    )


def on_accept(case):
    """In the accept's unit of work: post what brings clearing to the gateway's record."""
    wanted = difference(
        case.kind, case.our_amount, case.our_status, case.gateway_amount, case.gateway_status
    )
    if not wanted:
        return 0
    posted, count = _posted(case.id)
    if wanted != posted:
        _post(case.id, wanted - posted, count, f"Accepted {case.kind} {case.reference}")
    return wanted - posted


def on_reopen(case_ids):
    """In a run's unit of work: cases an admin accepted that reopen take back what they
    posted (their next accept posts the difference as it is then)."""
    for case_id in sorted(case_ids):
        posted, count = _posted(case_id)
        if posted:
            _post(case_id, -posted, count, f"Reconciliation case {case_id} reopened")
