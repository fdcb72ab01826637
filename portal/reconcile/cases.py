"""Writing cases: read the stored ones in chunks, write only what changed, in bulk.

The write is an INSERT .. ON CONFLICT (kind, reference) DO UPDATE (PostgreSQL and SQLite
both have it): a second run over the same window, even one running at the same time,
updates the case instead of adding one; a resolution an admin stored meanwhile is kept
(``KEEPS_A_RESOLUTION``). ``first_run_id`` and ``first_seen_at`` are kept
from the first insert."""

import json
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from portal.db import UTCDateTime
from portal.domain.states import ReconCaseStatus
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


def has_open_discrepancy(visit_id, besides=None) -> bool:
    """Whether a case about ``visit_id`` (other than ``besides``, a case id) is still a
    discrepancy: while one is, the visit keeps the reconciliation flag a run raised
    (``resolve._clear_flag`` after a sync or accept, ``run.unflag_agreed`` after a run)."""
    query = sa.select(ReconCase.id).where(
        ReconCase.visit_id == visit_id, ReconCase.status == ReconCaseStatus.DISCREPANCY
    )
    if besides is not None:
        query = query.where(ReconCase.id != besides)
    return db.session.scalar(query.limit(1)) is not None


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


# A resolution stored meanwhile (an admin accepted the case while this run was writing) is
# overwritten only by a row that resolves it too, or when a side's record changed (a
# resolved case reopens only then): the run read the case before the admin's commit.
KEEPS_A_RESOLUTION = (
    "{table}.resolution IS NULL OR excluded.resolution IS NOT NULL "
    "OR {table}.theirs_key IS DISTINCT FROM excluded.theirs_key "
    "OR {table}.ours_key IS DISTINCT FROM excluded.ours_key"
)


def _insert(columns):
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ReconCase.__table__)  # Core: no ORM bookkeeping per row
    changes = {name: stmt.excluded[name] for name in UPDATED if name in columns}
    # A row without the sides' detail (a matched case) clears what an earlier one kept.
    changes.update({name: sa.null() for name in DETAIL if name not in columns})
    table = ReconCase.__table__
    keeps = sa.or_(
        table.c.resolution.is_(None),
        stmt.excluded.resolution.is_not(None),
        table.c.theirs_key.is_distinct_from(stmt.excluded.theirs_key),
        table.c.ours_key.is_distinct_from(stmt.excluded.ours_key),
    )
    return stmt.on_conflict_do_update(
        index_elements=["kind", "reference"], set_=changes, where=keeps
    )


def _array_type(column):
    """The PostgreSQL array a column's values travel in (JSON as text, cast per row)."""
    if isinstance(column.type, UTCDateTime):
        return "timestamptz[]"
    if isinstance(column.type, sa.Integer):  # BigInteger too
        return "bigint[]"
    return "text[]"


def _is_json(column):
    return isinstance(column.type, sa.JSON)


def _unnest_insert(columns):
    """PostgreSQL: INSERT .. SELECT FROM unnest(one array per column) .. ON CONFLICT: one
    statement and one parameter per column for a chunk of rows, where a multi-row VALUES
    has one parameter per cell to bind (a third of the write's time for 100,000 cases)."""
    table = ReconCase.__table__
    names = [c.name for c in table.columns if c.name in columns]
    arrays = ", ".join(f"CAST(:{n} AS {_array_type(table.c[n])})" for n in names)
    picked = ", ".join(
        f"u.{n}::json" if isinstance(table.c[n].type, sa.JSON) else f"u.{n}" for n in names
    )
    changes = [f"{n} = excluded.{n}" for n in UPDATED if n in columns]
    # A row without the sides' detail (a matched case) clears what an earlier one kept.
    changes += [f"{n} = NULL" for n in DETAIL if n not in columns]
    return sa.text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {picked} "
        f"FROM unnest({arrays}) AS u({', '.join(names)}) "
        f"ON CONFLICT (kind, reference) DO UPDATE SET {', '.join(changes)} "
        f"WHERE {KEEPS_A_RESOLUTION.format(table=table.name)}"
    ), names


def _arrays(names, group):
    table = ReconCase.__table__
    params = {}
    for name in names:
        values = [row[name] for row in group]
        if _is_json(table.c[name]):
            # None as JSON null, as the JSON column type writes it (none_as_null=False)
            values = [json.dumps(v) for v in values]
        params[name] = values
    return params


# What a run's write may undo: an admin's resolution (the case reopened, or matched anew,
# when a side's record changed since), read before the write and audited after it.
RESOLUTION = ("status", "reason", "resolution", "note", "resolved_by_id", "resolved_at")


def lock_resolutions(case_ids) -> dict[int, dict]:
    """The cases among ``case_ids`` (about to be rewritten by a run) that hold a
    resolution, as {id: RESOLUTION and both sides' keys}. All of them are row-locked first
    (PostgreSQL ``FOR UPDATE``, in id order): an admin's accept or sync of one waits for
    the run's commit instead of landing between this read and the write, unaudited."""
    if not case_ids:
        return {}
    columns = [ReconCase.id, *(getattr(ReconCase, c) for c in RESOLUTION)]
    columns += [ReconCase.theirs_key, ReconCase.ours_key]
    query = sa.select(*columns).where(ReconCase.id.in_(sorted(case_ids))).order_by(ReconCase.id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    found = {}
    for row in db.session.execute(query):
        values = row._asdict()
        if values["resolution"] is not None:
            found[values.pop("id")] = values
    return found


def now_stored(case_ids) -> dict[int, dict]:
    """``lock_resolutions``'s columns of ``case_ids`` as they are now (after a write)."""
    if not case_ids:
        return {}
    columns = [ReconCase.id, *(getattr(ReconCase, c) for c in RESOLUTION)]
    columns += [ReconCase.theirs_key, ReconCase.ours_key]
    rows = db.session.execute(sa.select(*columns).where(ReconCase.id.in_(sorted(case_ids))))
    return {row.id: {k: v for k, v in row._asdict().items() if k != "id"} for row in rows}


def upsert(rows: list[dict]):
    """Write ``rows`` (dicts with every column of UPDATED, the JSON ``DETAIL`` ones only
    when the case keeps them, plus kind, reference, first_run_id, first_seen_at)."""
    groups = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    postgres = db.session.get_bind().dialect.name == "postgresql"
    for columns, group in groups.items():
        if postgres:
            stmt, names = _unnest_insert(columns)
            for i in range(0, len(group), CHUNK):
                db.session.execute(stmt, _arrays(names, group[i : i + CHUNK]))
            continue
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
