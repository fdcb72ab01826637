"""Writing cases: read the stored ones in chunks, write only what changed, in bulk.

The write is an INSERT .. ON CONFLICT (kind, reference) DO UPDATE (PostgreSQL and SQLite
both have it): a second run over the same window, even one running at the same time,
updates the case instead of adding one. ``first_run_id`` and ``first_seen_at`` are kept
from the first insert."""

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.reconcile.matching import Existing
from portal.reconcile.models import ReconCase

CHUNK = 5000
WRITE_CHUNK = 2000
DETAIL = ("ours", "theirs")  # JSON: only cases that did not match keep them
UPDATED = (
    "status",
    "reason",
    "visit_id",
    "our_type",
    "our_id",
    "our_amount",
    "gateway_amount",
    "our_status",
    "gateway_status",
    "ours",
    "theirs",
    "ours_key",
    "theirs_key",
    "last_run_id",
    "updated_at",
    "resolved_at",
    "resolved_by_id",
    "resolution",
    "note",
)


def one_of(column, values):
    """``column IN values``: on PostgreSQL one array parameter (= ANY), which psycopg sends
    as it is, instead of thousands of placeholders to build and parse."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.Text)))
    return column.in_(list(values))


def existing(kind, references: Iterable[str]) -> dict[str, Existing]:
    refs = sorted(set(references))
    found = {}
    for i in range(0, len(refs), CHUNK):
        rows = db.session.execute(
            sa.select(
                ReconCase.reference,
                ReconCase.id,
                ReconCase.status,
                ReconCase.reason,
                ReconCase.theirs_key,
                ReconCase.ours_key,
                ReconCase.resolution,
            ).where(ReconCase.kind == kind, one_of(ReconCase.reference, refs[i : i + CHUNK]))
        )
        for ref, case_id, status, reason, theirs, ours, resolution in rows:
            found[ref] = Existing(case_id, status, reason, theirs, ours, resolution)
    return found


def _insert(columns):
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ReconCase.__table__)  # Core: no ORM bookkeeping per row
    changes = {name: stmt.excluded[name] for name in UPDATED if name in columns}
    # A row without the sides' detail (a matched case) clears what an earlier one kept.
    changes.update({name: sa.null() for name in DETAIL if name not in columns})
    return stmt.on_conflict_do_update(index_elements=["kind", "reference"], set_=changes)


def upsert(rows: list[dict]):
    """Write ``rows`` (dicts with every column of UPDATED, the JSON ``DETAIL`` ones only
    when the case keeps them, plus kind, reference, first_run_id, first_seen_at)."""
    groups = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    for columns, group in groups.items():
        stmt = _insert(columns)
        for i in range(0, len(group), WRITE_CHUNK):
            db.session.execute(stmt, group[i : i + WRITE_CHUNK])


def side_columns(ours, theirs, *, detail=True) -> dict:
    """The case's copy of both sides (``matching.Side`` or None): what the screen shows.
    ``our_status`` / ``gateway_status`` are the sides' own statuses as seen, not the case's
    state (that is ``status``, moved by the case machine). ``detail=False`` leaves out the
    JSON of both sides (a matched case: its columns say all there is; no JSON to encode
    for 100,000 of them)."""
    columns = {
        "visit_id": ours.visit_id if ours else None,
        "our_type": ours.our_type if ours else None,
        "our_id": ours.our_id if ours else None,
        "our_amount": ours.amount if ours else None,
        "gateway_amount": theirs.amount if theirs else None,
        "our_status": ours.raw_status if ours else None,
        "gateway_status": theirs.raw_status if theirs else None,
        "ours_key": ours.key() if ours else None,
        "theirs_key": theirs.key() if theirs else None,
    }
    if detail:
        columns["ours"] = ours.as_dict() if ours else None
        columns["theirs"] = theirs.as_dict() if theirs else None
    return columns


def show_sides(case, ours, theirs):
    """Update a loaded case's copy of the sides (a webhook or a sync changed ours)."""
    for column, value in side_columns(ours, theirs, detail=True).items():
        if column == "visit_id" and value is None:
            continue  # keep the visit a case was found for
        setattr(case, column, value)
