"""A stored case compared again between runs: our record read as it is now, against the
gateway's record as the run stored it on the case (the gateway is not asked).

Our side changes between runs (a webhook, a sync of another case, "send to wallet"
finding a refund at Razorpay, a refund replaced), and a case written by the run says what
it was. Three callers read it again here:

- ``tasks``, on the events of a capture or a refund: an open case that agrees now is
  matched (only ever towards MATCHED: finding new discrepancies is the run's job);
- ``tasks`` too, for an **accepted** case: its posting (``suspense``) is the difference
  from our side, so it follows our side at once, not at the next run (review finding: a
  refund accepted as one we never made, then found ours and processed, was counted twice
  in clearing until the next run; an order's second payment accepted as owed back, then
  captured into the wallet by its late webhook, likewise). Agreeing now, the case is
  matched and its posting taken back, audited as a run undoing a resolution; still
  disagreeing, its posting becomes the difference from our side as it is, and the next
  run reopens it as it reopens any accepted case whose our side changed;
- ``resolve.accept``: a case whose our side changed since it was written is rewritten as
  it stands and the accept refused, so an admin accepts what the page shows and the
  posting is from our record as it is.

The case's ``ours_key`` says whether our side changed: the run's write compares the same
key (``matching.next_status``)."""

import sqlalchemy as sa

from portal.config import setting
from portal.domain.states import RECON_CASE, ReconCaseStatus
from portal.extensions import db
from portal.reconcile import cases, ours, suspense
from portal.reconcile.matching import ACCEPTED, MATCHED, Garbage, compare, gateway_side
from portal.reconcile.models import Reason, ReconCase
from portal.reconcile.run import record_undone, tolerance
from portal.reconcile.source import KINDS


class Unreadable(ValueError):
    """The case keeps no usable copy of the gateway's record (a matched case keeps none)."""


def stored_theirs(case):
    """The gateway's side as the run stored it on the case; None when the gateway had no
    record (``theirs_key`` empty); ``Unreadable`` when the case kept no copy of it, or is
    not a record's (a settlement case is our capture alone)."""
    if case.kind not in KINDS:
        raise Unreadable(f"a {case.kind} case has no gateway record of its own")
    if case.theirs_key is None:
        return None
    data = case.theirs
    if not isinstance(data, dict):
        raise Unreadable(f"case {case.id} keeps no gateway record")
    record = {
        "id": case.reference,
        "amount": data.get("amount"),
        "status": data.get("status"),
        "created_at": data.get("at"),
        "order_id": data.get("order_id"),
    }
    if data.get("means") == "failed" and data.get("status") == "refunded":
        record["captured"] = False  # refunded before any capture: no money came in
    try:
        return gateway_side(case.kind, record)
    except Garbage as exc:
        raise Unreadable(str(exc)) from None


def ours_now(case, theirs):
    """Our side of the case as it is now, found as the run finds it: by the gateway's id
    (a row that records it), else a payment by its order, else the row the case names (a
    payment link's or a refund's, found by notes the case does not keep)."""
    fresh = ours.by_reference(case.kind, [case.reference]).get(case.reference)
    if fresh is None and theirs is not None and case.kind == "payment":
        fresh = ours.payments_by_order([theirs])[0].get(case.reference)
    if fresh is None and case.our_id is not None:
        fresh = ours.named_row(case.kind, case.reference, case.our_type, case.our_id)
    return fresh


def judge(case, fresh, theirs, now):
    """``compare`` as a run would, with the policy's tolerance and the grace; a duplicate
    stays one (an event says nothing about the gateway listing a record twice)."""
    return compare(
        fresh,
        theirs,
        now=now,
        tolerance=tolerance(),
        grace=setting("RECON_PENDING_GRACE_SECONDS"),
        duplicate=case.reason == Reason.DUPLICATE,
    )


def changed(case, fresh) -> bool:
    return (fresh.key() if fresh else None) != case.ours_key


def match(case, fresh, theirs):
    """Close ``case`` as MATCHED with our side as it is (no resolution: neither side was
    accepted), taking back anything it posted."""
    RECON_CASE.move(case, MATCHED)
    case.reason = None
    cases.show_sides(case, fresh, theirs)
    suspense.take_back([case.id])


def follow_accepted(case, now):
    """An accepted case after an event on our side (in the event's unit of work, the case
    row-locked): matched when the two agree now (the accept undone, audited as a run's
    undoing is, with no run), else its posting brought to the difference from our side as
    it is. Returns whether the case was matched."""
    try:
        theirs = stored_theirs(case)
    except Unreadable:
        return False
    fresh = ours_now(case, theirs)
    if changed(case, fresh) and judge(case, fresh, theirs, now).status == MATCHED:
        before = {c: getattr(case, c) for c in cases.RESOLUTION}
        keys_before = (case.theirs_key, case.ours_key)
        case.resolution = case.resolved_at = case.resolved_by_id = case.note = None
        match(case, fresh, theirs)  # its posting taken back: no longer accepted
        record_undone(
            case.id,
            {**before, "theirs_key": keys_before[0], "ours_key": keys_before[1]},
            {"status": case.status, "reason": None, "theirs_key": case.theirs_key,
             "ours_key": case.ours_key},
        )  # fmt: skip
        return True
    suspense.settle(case, fresh, memo=f"Case {case.id}: our {case.kind} changed")
    return False


def lock_case(case_id):
    """The case read again, row-locked on PostgreSQL (``FOR UPDATE``)."""
    query = sa.select(ReconCase).where(ReconCase.id == case_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query.execution_options(populate_existing=True))


def is_accepted(case):
    return (
        case is not None and case.status == ReconCaseStatus.RESOLVED and case.resolution == ACCEPTED
    )
