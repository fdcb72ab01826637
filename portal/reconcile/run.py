"""A reconciliation run: fetch the gateway's records for a window, compare them with ours,
write the cases.

Three steps, so a run is never half-written:

1. ``start_run`` records the run (RUNNING) in a unit of work of its own.
2. ``execute`` stores the settlements Razorpay made since the last read
   (``settled.read_latest``: they decide which captures are late for settlement), reads
   the gateway's lists (no transaction needed: nothing is written while the gateway is
   asked) and our rows, and compares them (``matching``).
3. One unit of work writes every case that changed and finishes the run. Before writing,
   the visits of the cases that did not match are locked (PostgreSQL ``FOR UPDATE``, the
   lock every payment webhook takes first) and our side of those cases is read again, so
   a webhook that landed while the gateway was being read is seen; one that lands after
   the commit closes its case itself (``tasks`` listens to the booking and refund events).

Any failure (the gateway times out, answers garbage, the database refuses) rolls step 3
back and marks the run FAILED with the reason in a unit of work of its own: no case of a
failed run is ever written.

Performance (tests/load/bench_reconcile.py, docs/reconciliation.md): gateway items become
slim ``Side`` records page by page; our rows, read with plain column queries by indexed
time, are compared as they stream in, and a reference both sides agree on is kept as a
``Matched`` (our side and the gateway's time and status), so a run never holds both
sides of 100,000 records; stored cases are read in chunks and only changed ones are
written, in bulk."""

import heapq
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from operator import attrgetter
from typing import NamedTuple

import sqlalchemy as sa

from portal import events
from portal.accounts.service import PermissionDenied
from portal.audit.service import record
from portal.booking import attention, lifecycle
from portal.booking.models import ATTENTION_RECONCILIATION, MasterBooking
from portal.config import policy, setting
from portal.db import lock_subjects, unit_of_work, utcnow
from portal.domain.states import RECON_RUN, ReconCaseStatus, ReconRunStatus
from portal.extensions import db
from portal.jobs import enqueue
from portal.reconcile import cases, ours, settled, suspense
from portal.reconcile import source as gateway_source
from portal.reconcile.matching import (
    MATCHED,
    Outcome,
    Side,
    compare,
    moves_money,
    next_status,
    what_changed,
)
from portal.reconcile.models import Reason, ReconCase, ReconRun
from portal.reconcile.window import day_window

log = logging.getLogger("portal.reconcile")

SCHEDULE, ADMIN = "schedule", "admin"
# The gateway's lists are read this much beyond the window, so a record whose two sides
# fall either side of the window's edge is compared, not reported missing.
PAD = timedelta(minutes=15)
ALERT_KIND = "RECONCILIATION_DISCREPANCY"
AGREED = Outcome(MATCHED)


@dataclass(slots=True)
class Item:
    kind: str
    reference: str
    theirs: Side | None
    ours: Side | None
    outcome: Outcome
    duplicate: bool = False


@dataclass(slots=True)
class Matched:
    """A reference both sides agree on, in little memory: our side, and of the gateway's
    only what a case keeps (its amount and status are ours, or it would not match)."""

    ours: Side
    at: int
    raw_status: str

    def theirs(self) -> Side:
        o = self.ours
        return Side(
            reference=o.reference,
            amount=o.amount,
            status=o.status,
            final=True,
            at=self.at,
            raw_status=self.raw_status,
        )


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)  # every reference that did not match
    matched: dict[str, list[Matched]] = field(default_factory=dict)  # by kind
    gateway_records: int = 0
    our_records: int = 0
    requests: int = 0
    # The notes of the orders of gateway payments we know by neither id nor order (a
    # payment link's, whose order Razorpay made at the payment): read again at the write.
    order_notes: dict[str, dict] = field(default_factory=dict)

    def add(self, kind, ref, theirs, ours, outcome, duplicate):
        self.gateway_records += theirs is not None
        self.our_records += ours is not None
        if outcome.status == MATCHED:
            at = ours.at if ours.at == theirs.at else theirs.at  # one int object when equal
            self.matched.setdefault(kind, []).append(Matched(ours, at, theirs.raw_status))
        else:
            self.items.append(Item(kind, ref, theirs, ours, outcome, duplicate))

    def in_order(self):
        """Every reference as an ``Item``, by (kind, reference): the matched ones made
        back one at a time, so the writer holds a chunk of them, not 100,000."""
        for kind in sorted(set(self.matched) | {i.kind for i in self.items}):
            matched = self.matched.get(kind, [])
            matched.sort(key=attrgetter("ours.reference"))
            made = (Item(kind, m.ours.reference, m.theirs(), m.ours, AGREED) for m in matched)
            rest = sorted((i for i in self.items if i.kind == kind), key=attrgetter("reference"))
            yield from heapq.merge(made, rest, key=attrgetter("reference"))


JOB = "reconcile.run"


STALE_RUN = timedelta(hours=1)  # a RUNNING run this old died with its worker
# A run of the same window started this recently is the same request sent twice (a double
# click), even if it has finished already (a short run, or the embedded mode's jobs).
JUST_STARTED = timedelta(seconds=10)


class Requested(NamedTuple):
    """What an admin's request led to: ``run``, and whether it was ``started`` now (False:
    a run of that window still running, or started moments ago, is shown instead)."""

    run: ReconRun
    started: bool


def run_for_window(start, end, now):
    """The newest run of exactly [start, end) still running (and not stale) or started
    moments ago (``JUST_STARTED``), whatever started it; None when there is none."""
    recent = db.session.scalars(
        sa.select(ReconRun)
        .where(
            ReconRun.window_start == start,
            ReconRun.window_end == end,
            ReconRun.started_at > now - STALE_RUN,
        )
        .order_by(ReconRun.id.desc())
    )
    for run in recent:
        if run.status == ReconRunStatus.RUNNING or just_started(run, now):
            return run
    return None


def just_started(run, now=None):
    return (now or utcnow()) - run.started_at < JUST_STARTED


def request_run(actor, first_day, last_day):
    """An admin's run for whole clinic days [first_day, last_day] (at most a year), run
    as a background job; or, when a run of that window is still running or was started
    moments ago, that run (``Requested.started`` False): a double submit starts one run.
    The window's lock (PostgreSQL; the embedded mode's process lock) makes two requests
    at once look one after the other. ``WindowError`` for a range it cannot have."""
    if not getattr(actor, "is_admin", False):
        raise PermissionDenied("Only administrators run reconciliation.")
    start, end = day_window(first_day, last_day)
    with unit_of_work():
        lock_subjects([f"recon_window:{start.isoformat()}/{end.isoformat()}"])
        earlier = run_for_window(start, end, utcnow())
        if earlier is not None:
            return Requested(earlier, started=False)
        run = start_run(start, end, trigger=ADMIN, actor=actor, background=True)
    return Requested(run, started=True)


def start_run(start, end, *, trigger, actor=None, background=False):
    """Record a run for [start, end) (aware datetimes) before it runs; ``background``:
    its job is recorded with it (it runs after the commit)."""
    with unit_of_work():
        run = ReconRun(
            window_start=start,
            window_end=end,
            trigger=trigger,
            started_by_id=getattr(actor, "id", None),
            status=ReconRunStatus.RUNNING,
            started_at=utcnow(),
        )
        db.session.add(run)
        db.session.flush()
        record(
            actor,
            "reconcile.run_started",
            "recon_run",
            run.id,
            after={"from": start.isoformat(), "to": end.isoformat(), "trigger": trigger},
        )
        if background:
            enqueue(JOB, run_id=run.id)
    return run


def default_source():
    """The gateway as the portal reaches it: pay-ins through the app's adapter, RazorpayX
    through the payout engine's own, behind its rate limit (docs/payouts.md: every
    RazorpayX call takes a token, a run's pages too)."""
    from portal.gateway import get_payin
    from portal.payouts.gateway import gateway as payouts_gateway

    return gateway_source.AdapterSource(get_payin(), payouts_gateway())


def execute(run_id, *, source=None):
    """Run a recorded run; returns it FINISHED or FAILED (never raises for a gateway or
    data problem: the reason is on the run). Settlements that cannot be read do not fail
    it: it finishes without the settlement check, its ``error`` saying so."""
    run = db.session.get(ReconRun, run_id)
    if run is None or run.status != ReconRunStatus.RUNNING:
        return run
    clock = time.monotonic()
    start, end = run.window_start, run.window_end
    try:
        # Settlement in time is judged on what Razorpay has settled by now (settled.py).
        unread = settled.read_latest()
        plan = compare_window(start, end, source or default_source())
        with unit_of_work():
            run = db.session.get(ReconRun, run_id)
            _write(run, plan, settlements=unread is None)
            run.error = unread  # a finished run's note: what it left unchecked
            _finish(run, clock)
            RECON_RUN.move(run, ReconRunStatus.FINISHED)
    except Exception as exc:  # the run's record must say why; nothing else was written
        log.warning("reconciliation run %s failed: %r", run_id, exc, exc_info=True)
        _fail(run_id, exc, clock)
        return db.session.get(ReconRun, run_id)
    try:
        unflag_agreed()
    except Exception as exc:  # the run stands; the next one takes the flags down
        log.warning("reconciliation run %s left flags up: %r", run_id, exc, exc_info=True)
    return db.session.get(ReconRun, run_id)


# No case of the visit is a discrepancy now (a case within its grace, PENDING, is not one
# yet: a run that finds it disagreeing raises the flag again).
UNFLAGGED_NOTE = "Cleared: a reconciliation run found no open discrepancy for the visit."


def unflag_agreed():
    """Take down the reconciliation flag of every visit left with no open discrepancy: a
    later run closed its cases (the gateway's record corrected, or ours caught up by a
    late webhook), where a sync or an accept would have cleared it (``resolve``). Its own
    unit of work after the run's, visits locked before their cases are counted, as every
    writer takes them; a flag raised since for another reason is left. Returns how many."""
    open_case = sa.exists().where(
        ReconCase.visit_id == MasterBooking.id,
        ReconCase.status == ReconCaseStatus.DISCREPANCY,
    )
    query = sa.select(MasterBooking.id).where(
        MasterBooking.attention == ATTENTION_RECONCILIATION, ~open_case
    )
    cleared = 0
    with unit_of_work():
        for visit_id in sorted(db.session.scalars(query)):
            visit = lifecycle.lock_visit(visit_id)
            if not cases.has_open_discrepancy(visit_id):
                cleared += attention.clear_visit_reason(
                    None, visit, ATTENTION_RECONCILIATION, UNFLAGGED_NOTE
                )
    return cleared


def _finish(run, clock):
    run.finished_at = utcnow()
    run.duration_ms = int((time.monotonic() - clock) * 1000)


def _fail(run_id, exc, clock):
    db.session.expire_all()
    with unit_of_work():
        run = db.session.get(ReconRun, run_id)
        _finish(run, clock)
        run.error = _reason(exc)
        RECON_RUN.move(run, ReconRunStatus.FAILED)
        record(None, "reconcile.run_failed", "recon_run", run.id, after={"error": run.error})


def _reason(exc):
    from portal.gateway.errors import GatewayError, GatewayTimeout

    if isinstance(exc, GatewayTimeout):
        what = "The gateway did not answer in time"
    elif isinstance(exc, GatewayError):
        what = "The gateway refused or failed"
    else:
        what = {"Garbage": "The gateway answered something that is not a record"}.get(
            type(exc).__name__, f"Unexpected error ({type(exc).__name__})"
        )
    return f"{what}: {exc}"[:2000]


# --- comparing -------------------------------------------------------------------------------


def tolerance() -> int:
    """Seconds our time and the gateway's may lie apart: the policy's (POLICY.md, edited
    as a version at /admin/policy, "Timestamps match within")."""
    return int(policy().reconciliation_tolerance.total_seconds())


def compare_window(start, end, source) -> Plan:
    """Every reference of the window, compared (no writes)."""
    now = utcnow()
    plan = Plan()
    fetch_from = int((start - PAD).timestamp())
    # Not beyond now: a list read while records are added shifts its pages.
    fetch_to = min(int((end + PAD).timestamp()), int(now.timestamp())) - 1
    judge = partial(
        compare,
        now=int(now.timestamp()),
        tolerance=tolerance(),
        grace=setting("RECON_PENDING_GRACE_SECONDS"),
    )
    for kind in gateway_source.KINDS:
        listed = gateway_source.collect(source, kind, fetch_from, fetch_to)
        plan.requests += listed.requests
        _compare_kind(plan, kind, listed.sides, set(listed.duplicates), start, end, source, judge)
    return plan


def _compare_kind(plan, kind, theirs, duplicates, start, end, source, judge):
    """One kind's references into ``plan``; ``theirs`` (the gateway's sides by reference)
    is emptied as ours stream in, so both sides of 100,000 records are never held."""
    lo, hi = int(start.timestamp()), int(end.timestamp())

    def add(ref, t, o):
        if o is None and not moves_money(t):
            return  # an attempt that failed at the gateway moved nothing
        dup = ref in duplicates
        plan.add(kind, ref, t, o, judge(o, t, duplicate=dup), dup)

    lost = {}
    for o in ours.in_window(kind, start, end):
        t = theirs.pop(o.reference, None)
        if t is None:
            lost[o.reference] = o  # not listed: asked for by id below
        else:
            add(o.reference, t, o)
    # The gateway's records in the window that we hold outside it, or not at all (a new
    # dict: the emptied one keeps its size).
    rest = {r: t for r, t in theirs.items() if lo <= t.at < hi}
    theirs.clear()
    mine = ours.by_reference(kind, rest) if rest else {}
    if kind == "payment":
        unknown = [t for r, t in rest.items() if r not in mine and moves_money(t)]
        if unknown:
            by_order, paid_twice = ours.payments_by_order(unknown)
            mine.update(by_order)
            duplicates |= paid_twice
        # A payment link's payment: its order is Razorpay's, made when the link was paid;
        # the link's notes on that order name our row (asked for the few still unknown).
        unnamed = [t for t in unknown if t.reference not in mine and t.order_id]
        if unnamed:
            notes = gateway_source.order_notes(source, {t.order_id for t in unnamed})
            plan.order_notes.update(notes)
            by_link, paid_twice = ours.links_by_notes(unnamed, notes)
            mine.update(by_link)
            duplicates |= paid_twice
    if kind == "refund":
        # A refund whose create answers were all lost: its notes name our row.
        named = [t for r, t in rest.items() if r not in mine and t.named_id is not None]
        if named:
            mine.update(ours.refunds_by_notes(named))
    fetched = gateway_source.fetch_each(source, kind, lost) if lost else {}
    for ref, o in lost.items():
        add(ref, fetched.get(ref), o)
    for ref, t in rest.items():
        add(ref, t, mine.get(ref))


def recompare(item: Item, fresh: Side | None, now: int) -> Item:
    outcome = compare(
        fresh,
        item.theirs,
        now=now,
        tolerance=tolerance(),
        grace=setting("RECON_PENDING_GRACE_SECONDS"),
        duplicate=item.duplicate,
    )
    return Item(item.kind, item.reference, item.theirs, fresh, outcome, item.duplicate)


# --- writing ---------------------------------------------------------------------------------


def _fresh_ours(items, order_notes):
    """Our side of ``items`` read again (after their visits were locked); ``order_notes``:
    the orders' notes the comparison read (``Plan.order_notes``)."""
    by_kind = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    fresh = {}
    for kind, group in by_kind.items():
        found = ours.by_reference(kind, [i.reference for i in group])
        rest = [i.theirs for i in group if i.reference not in found and i.theirs]
        if rest:
            found.update(ours.without_id(kind, rest, order_notes))
        for item in group:
            fresh[(kind, item.reference)] = found.get(item.reference)
    return fresh


def _write(run, plan: Plan, settlements=True):
    """Write the cases of ``plan`` and finish counting; ``settlements``: check settlement
    too (False: the settlements could not be read, ``settled.read_latest``)."""
    _one_writer_at_a_time()
    now = utcnow()
    unmatched = plan.items  # the matched ones are kept apart (Plan.matched)
    visits = {}
    for visit_id in sorted({i.ours.visit_id for i in unmatched if i.ours and i.ours.visit_id}):
        visits[visit_id] = lifecycle.lock_visit(visit_id)
    # A refund's webhook locks the refund, not its visit: lock those too (after the visits,
    # as every path that takes both does).
    ours.lock_refunds(sorted({i.ours.our_id for i in unmatched if i.kind == "refund" and i.ours}))
    if unmatched:
        fresh = _fresh_ours(unmatched, plan.order_notes)
        again = {
            (i.kind, i.reference): recompare(i, fresh[(i.kind, i.reference)], int(now.timestamp()))
            for i in unmatched
        }
        plan.items = [again[(i.kind, i.reference)] for i in plan.items]
    counts = {s: 0 for s in ReconCaseStatus}
    reasons, flag_visits = Counter(), set()
    # One order for every writer (two runs at once never wait on each other in a circle),
    # and chunks, so 100,000 cases never sit in memory as rows at once.
    ordered = plan.in_order()
    while chunk := list(itertools.islice(ordered, cases.CHUNK)):
        stored = {}
        for kind in {i.kind for i in chunk}:
            stored[kind] = cases.existing(kind, [i.reference for i in chunk if i.kind == kind])
        rows, rewritten = [], []
        for item in chunk:
            before = stored[item.kind].get(item.reference)
            target = next_status(before, item.outcome, item.theirs, item.ours)
            counts[ReconCaseStatus(target or before.status)] += 1
            if target is None:
                continue
            if before is not None:
                rewritten.append(before.id)
            if target == ReconCaseStatus.DISCREPANCY and (
                before is None or before.status != ReconCaseStatus.DISCREPANCY
            ):
                reasons[item.outcome.reason] += 1
                if item.ours and item.ours.visit_id:
                    flag_visits.add(item.ours.visit_id)
            rows.append(_row(run, item, target, now))
        resolved = cases.lock_resolutions(rewritten)
        cases.upsert(rows)
        _audit_undone(run, resolved)
        # Cases the write left unaccepted take back their suspense postings: an admin's
        # accept may have committed after ``existing`` read the case (its resolution there
        # says nothing), so the postings and the case as written decide.
        suspense.take_back(rewritten)
    run.gateway_records = plan.gateway_records
    run.our_records = plan.our_records
    run.matched = counts[ReconCaseStatus.MATCHED]
    run.pending = counts[ReconCaseStatus.PENDING]
    # Captures no settlement covers once Razorpay was due to settle them (docs/reconciliation.md).
    unsettled_open, unsettled_new, unsettled_visits = (
        settled.check(run, now) if settlements else (0, 0, set())
    )
    if unsettled_new:
        reasons[Reason.NOT_SETTLED] += unsettled_new
    flag_visits |= unsettled_visits
    run.discrepancies = counts[ReconCaseStatus.DISCREPANCY] + unsettled_open
    run.new_discrepancies = sum(reasons.values())
    # Each visit once, in id order (a day's unsettled captures share a few hundred visits).
    for visit_id in sorted(flag_visits):
        visit = visits.get(visit_id) or lifecycle.lock_visit(visit_id)
        if visit is not None:
            lifecycle.needs_attention(visit, ATTENTION_RECONCILIATION)
    if reasons:
        _alert(run, reasons)


REOPENED, REMATCHED = "reconcile.case_reopened", "reconcile.case_rematched"


def _audit_undone(run, resolved):
    """Audit each admin's resolution the write replaced (``resolved``: read before it,
    ``cases.lock_resolutions``): the case reopened (or matched anew) because a side's
    record changed. No actor: the run did it (review finding: the note and the resolver
    were wiped from the case with no entry)."""
    for case_id, now in cases.now_stored(list(resolved)).items():
        if now["resolution"] is not None:
            continue  # kept (``KEEPS_A_RESOLUTION``)
        record_undone(case_id, resolved[case_id], now, run_id=run.id)


def record_undone(case_id, before, now, run_id=None):
    """The audit entry of a resolution undone because a side's record changed: by a run
    (``run_id``), or by an event on our side matching an accepted case (``recheck``).
    ``before``: the ``cases.RESOLUTION`` columns and both keys as they were; ``now``: the
    status, reason and keys as written. Before: the resolution, who, when, the note;
    after: the case as left, the run, why."""
    because = what_changed(
        before["theirs_key"], now["theirs_key"], before["ours_key"], now["ours_key"]
    )
    record(
        None,
        REMATCHED if now["status"] == ReconCaseStatus.MATCHED else REOPENED,
        "recon_case",
        case_id,
        before={
            **{k: before[k] for k in cases.RESOLUTION},
            "resolved_at": before["resolved_at"].isoformat() if before["resolved_at"] else None,
        },
        after={
            "status": now["status"],
            "reason": now["reason"],
            "resolution": None,
            "run_id": run_id,
            "because": because,
        },
    )


def _one_writer_at_a_time():
    """PostgreSQL: runs write their results one after another (a transaction-scoped
    advisory lock). Each run locks the visits it compares first, in id order, but the
    visits of captures no settlement covers are only known after its cases are written;
    two runs at once could then each hold what the other waits for (one's upserted case,
    the other's visit). Webhooks lock single visits and do not take this lock."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('reconcile:write'))"))


def _row(run, item, target, now):
    return {
        "kind": item.kind,
        "reference": item.reference,
        "status": str(target),
        "reason": item.outcome.reason if target == ReconCaseStatus.DISCREPANCY else None,
        **cases.side_columns(item.ours, item.theirs, detail=target != ReconCaseStatus.MATCHED),
        "first_run_id": run.id,
        "last_run_id": run.id,
        "first_seen_at": now,
        "updated_at": now,
        "resolved_at": None,
        "resolved_by_id": None,
        "resolution": None,
        "note": None,
    }


def _alert(run, reasons: Counter):
    """One alert for the run's new discrepancies (``reasons``: how many of each)."""
    summary = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(reasons.items()))
    events.reconciliation_alert.send(
        "reconcile",
        severity="HIGH",
        kind=ALERT_KIND,
        title=f"Reconciliation found {sum(reasons.values())} new discrepancies",
        message=f"Run {run.id} ({run.window_start:%Y-%m-%d %H:%M} to "
        f"{run.window_end:%Y-%m-%d %H:%M} UTC): {summary}.",
        link=f"/admin/reconciliation/runs/{run.id}",
        dedupe_key=f"recon-run:{run.id}",
    )
