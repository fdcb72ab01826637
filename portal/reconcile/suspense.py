"""What accepting a case posts: the money the gateway's record and ours disagree on, moved
between gateway clearing and ``reconciliation_suspense`` (docs/ledger.md).

Accepting says "the gateway's record stands": a payment we never made (the demo's stray
₹499) is money the gateway holds for us that no visit owns, an amount altered at the
gateway is the difference, a payment the gateway does not have is money clearing counted
that is not there, a second payment of an order one of ours paid is money no row of ours
brought in (``our_part``). Gateway clearing is made to hold what the gateway's record
says, so ``flask ledger check`` agrees with the gateway again (review finding: it stayed
red after the demo's stray payment was accepted), and the difference waits in suspense
for whoever deals with the money (refunds the stray payer, claims a shortfall from
Razorpay) with a manual posting. Only an accepted case holds postings: one a run writes
or a sync closes (reopened, matched) takes back whatever it posted, found from its
postings, and an accept posts the difference between what it wants and what the case
posted already.

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
from portal.reconcile import ours as ours_rows
from portal.reconcile.cases import one_of
from portal.reconcile.matching import ACCEPTED
from portal.reconcile.models import ReconCase

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


def gateway_status(case):
    """The gateway's status as the matcher read it: the case shows the raw one, but a
    payment refunded before any capture means failed (no money came in, review finding:
    an accept counted it as held in clearing). ``Side.as_dict`` keeps the meaning."""
    return (case.theirs or {}).get("means") or case.gateway_status


STORED = object()  # our side as the case stores it (what the run, or a refresh, wrote)


def our_part(case, ours=STORED):
    """(amount, status) of our side as far as this record's money goes; ``ours``: our
    side as it is now (a ``matching.Side``, None: no row), else the case's stored one.
    None when our row records another payment (an order paid twice: the row found by the
    order brought the first payment's money in, not this one's; review finding: the
    accept posted nothing and clearing stayed short by the second payment), or is a
    refund replaced by a retry or the wallet (it failed, and can never be processed now:
    review finding, counted as a refund that may still move, the accept posted nothing
    and clearing kept a refund the gateway paid out)."""
    if ours is STORED:
        our_type, our_id, amount, status = (
            case.our_type,
            case.our_id,
            case.our_amount,
            case.our_status,
        )
    elif ours is None:
        return None, None
    else:
        our_type, our_id, amount, status = ours.our_type, ours.our_id, ours.amount, ours.raw_status
    if case.kind == "payment" and ours_rows.paid_by_another(our_type, our_id, case.reference):
        return None, None
    if case.kind == "refund" and ours_rows.replaced(our_type, our_id):
        return None, None
    return amount, status


def settle(case, ours=STORED, memo=None):
    """Post what brings clearing to the gateway's record against our side (``ours``, as
    for ``our_part``), less what the case has posted already (whatever left it there).
    Returns the paise posted. In the caller's unit of work."""
    our_amount, our_status = our_part(case, ours)
    wanted = difference(
        case.kind, our_amount, our_status, case.gateway_amount, gateway_status(case)
    )
    posted, count = _posted(case.id)
    if (wanted or 0) != posted:
        memo = memo or f"Accepted {case.kind} {case.reference}"
        _post(case.id, (wanted or 0) - posted, count, memo)
    return (wanted or 0) - posted


def on_accept(case):
    """In the accept's unit of work: post what brings clearing to the gateway's record,
    against what the case has posted already (whatever left it there)."""
    return settle(case)


def _posted_by_case(case_ids):
    """{case id: (posted, count)} of the cases in ``case_ids`` that posted: one query."""
    rows = db.session.execute(
        sa.select(
            LedgerTransaction.reference_id,
            sa.func.sum(LedgerEntry.amount),
            sa.func.count(sa.distinct(LedgerTransaction.id)),
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.reference_type == REFERENCE,
            one_of(LedgerTransaction.reference_id, [str(i) for i in case_ids]),
            LedgerAccount.code == GATEWAY_CLEARING,
        )
        .group_by(LedgerTransaction.reference_id)
    )
    return {int(ref): (int(total), int(count)) for ref, total, count in rows}


def take_back(case_ids):
    """In a run's or a sync's unit of work, after it wrote ``case_ids``: a case that is not
    accepted now (reopened, matched, synced) takes back what it posted. Decided from the
    postings and the case as written, not from the resolution read before the write (review
    finding: an admin's accept committed between a run's read and its write was reopened by
    the write, and its posting stayed for good)."""
    posted = {i: p for i, p in _posted_by_case(case_ids).items() if p[0]} if case_ids else {}
    if not posted:
        return []
    resolutions = dict(
        db.session.execute(
            sa.select(ReconCase.id, ReconCase.resolution).where(ReconCase.id.in_(list(posted)))
        ).all()
    )
    taken = sorted(i for i in posted if resolutions.get(i) != ACCEPTED)
    for case_id in taken:
        total, count = posted[case_id]
        _post(case_id, -total, count, f"Reconciliation case {case_id} reopened")
    return taken
