"""Settlement coverage: a capture that no stored settlement covers once Razorpay was due to
settle it (``settlements.overdue``: T+2 working days) is a NOT_SETTLED discrepancy, a
case of kind "settlement" keyed by the payment id; once a settlement covers it, the case
is matched. A case an admin resolved stays resolved.

A run judges on the settlements as Razorpay has them when it runs: it reads them first
(``read_latest``, what "Fetch now" does), not only what the daily fetch, on its own
24-hour beat, last stored. When they cannot be read the run skips the check rather than
flag captures a settlement it could not see may cover (docs/decisions.md)."""

import logging

import sqlalchemy as sa

from portal.domain.states import ReconCaseStatus
from portal.extensions import db
from portal.reconcile import cases
from portal.reconcile.matching import Side
from portal.reconcile.models import OPEN_CASE, Reason, ReconCase
from portal.settlements.ingest import SettlementError, ingest
from portal.settlements.overdue import overdue_unsettled

KIND = "settlement"

log = logging.getLogger("portal.reconcile")


def read_latest():
    """Store the settlements Razorpay made in the lookback and not stored yet (idempotent,
    each its own unit of work; call it outside one). Returns None, or the note of a run
    that could not read them and so does not check settlement. It flags nothing left
    incomplete: that stays the daily fetch's (``settlements.tasks``)."""
    try:
        ingest()
    except SettlementError as exc:
        log.warning("reconciliation: settlements not read: %s", exc.message)
        return (
            "Settlement not checked: the settlements could not be read "
            f"({exc.message}); the next run checks it."
        )[:2000]
    return None


def _side(unsettled):
    return Side(
        reference=unsettled.reference,
        amount=unsettled.amount,
        status="captured",
        final=True,
        at=int(unsettled.captured_at.timestamp()),
        raw_status="captured",
        our_type=unsettled.our_type,
        our_id=unsettled.our_id,
        visit_id=unsettled.visit_id,
    )


def check(run, now):
    """Write the settlement cases for ``now`` (inside the run's unit of work), in chunks by
    reference. Returns ``(open, new, visits)``: how many are discrepancies now, how many
    just became one, and the visits of those (to flag them)."""
    overdue = sorted({u.reference: u for u in overdue_unsettled(now)}.items())
    open_refs = set(
        db.session.scalars(
            sa.select(ReconCase.reference).where(
                ReconCase.kind == KIND, ReconCase.status.in_([str(s) for s in OPEN_CASE])
            )
        )
    )
    still_open, new, visits = 0, 0, set()
    for i in range(0, len(overdue), cases.CHUNK):
        chunk = overdue[i : i + cases.CHUNK]
        known = cases.existing(KIND, [ref for ref, _u in chunk])
        rows = []
        for ref, unsettled in chunk:
            open_refs.discard(ref)
            before = known.get(ref)
            still_open += before is None or before.status in OPEN_CASE
            if before and before.status in (ReconCaseStatus.RESOLVED, ReconCaseStatus.DISCREPANCY):
                continue  # told already, or accepted by an admin
            rows.append(_row(run, ref, _side(unsettled), ReconCaseStatus.DISCREPANCY, now))
            new += 1
            if unsettled.visit_id:
                visits.add(unsettled.visit_id)
        cases.upsert(rows)
    # What is left of the open cases: a settlement covers them now.
    cases.upsert(
        [
            _row(run, ref, None, ReconCaseStatus.MATCHED, now, reason=None)
            for ref in sorted(open_refs)
        ]
    )
    return still_open, new, visits


def _row(run, ref, side, status, now, reason=Reason.NOT_SETTLED):
    columns = cases.side_columns(side, None, detail=status != ReconCaseStatus.MATCHED)
    if side is None:
        # matched: keep the visit and our side the discrepancy recorded
        for name in ("visit_id", "our_type", "our_id", "our_amount", "our_status", "ours_key"):
            columns.pop(name)
    return {
        "kind": KIND,
        "reference": ref,
        "status": str(status),
        "reason": str(reason) if reason else None,
        **columns,
        "gateway_status": "unsettled" if side else "settled",
        "first_run_id": run.id,
        "last_run_id": run.id,
        "first_seen_at": now,
        "updated_at": now,
        "resolved_at": None,
        "resolved_by_id": None,
        "resolution": None,
        "note": None,
    }
