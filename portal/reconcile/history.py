"""A case's history as its page tells it, read from the audit log: the case row holds only
its current state (a run that reopens a resolved case clears its resolution), while every
accept and sync, and every run that undid one, is an audit entry of the case with who,
when and what (``resolve``, ``run.record_undone``)."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.extensions import db

SYSTEM = "the system"
# A run's entries undoing a resolution, and how the page says it.
_UNDONE = {"reconcile.case_reopened": "Reopened", "reconcile.case_rematched": "Matched again"}


@dataclass(frozen=True)
class Earlier:
    """The resolution a run undid."""

    resolution: str
    by: str
    at: datetime | None
    note: str | None


@dataclass(frozen=True)
class Event:
    at: datetime
    what: str  # "Accepted by Asha Rao", "Reopened by run #7"
    detail: str | None = None  # why, or what came of it
    note: str | None = None  # the admin's note
    earlier: Earlier | None = None


def case_history(case_id) -> list[Event]:
    """The case's audited events, oldest first."""
    rows = db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.object_type == "recon_case", AuditEntry.object_id == str(case_id))
        .order_by(AuditEntry.at, AuditEntry.id)
        .options(joinedload(AuditEntry.actor))
    ).all()
    resolvers = _names(
        (row.before or {}).get("resolved_by_id") for row in rows if row.action in _UNDONE
    )
    events = [_event(row, resolvers) for row in rows]
    return [event for event in events if event is not None]


def _names(ids):
    ids = {i for i in ids if isinstance(i, int)}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all())


def _words(value):
    return str(value or "").replace("_", " ")


def _event(row, resolvers):
    before, after = row.before or {}, row.after or {}
    who = row.actor.name if row.actor is not None else SYSTEM
    if row.action == "reconcile.case_accepted":
        return Event(row.at, f"Accepted by {who}", note=after.get("note"))
    if row.action == "reconcile.case_synced":
        outcome = "matched" if after.get("status") == "matched" else _words(after.get("reason"))
        return Event(row.at, f"Synced from the gateway by {who}", detail=f"now {outcome}")
    if row.action == "reconcile.case_sync_unchanged":
        still = _words(after.get("reason") or after.get("status"))
        return Event(
            row.at, f"Synced from the gateway by {who}", detail=f"nothing changed, still {still}"
        )
    if row.action in _UNDONE:
        at = before.get("resolved_at")
        earlier = Earlier(
            resolution=_words(before.get("resolution")),
            by=resolvers.get(before.get("resolved_by_id"), SYSTEM),
            at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            note=before.get("note"),
        )
        # No run: our record changed between runs and the case matched at once
        # (``recheck.follow_accepted``).
        run = after.get("run_id")
        return Event(
            row.at,
            f"{_UNDONE[row.action]} by run #{run}" if run else _UNDONE[row.action],
            detail=after.get("because"),
            earlier=earlier,
        )
    if row.action == "reconcile.case_refreshed":
        outcome = "matched" if after.get("status") == "matched" else _words(after.get("reason"))
        return Event(
            row.at,
            f"Our record had changed when {who} accepted",
            detail=f"{after.get('because')}; now {outcome}",
        )
    return None
