"""Keeping ``money_movements`` in step with the records it shows.

A projector turns one source record (a ``Payment``, ``Refund``, ``Payout`` …) into the
column values of its movement row, or ``None`` when the record is not a movement (a zero
reschedule fee, a ledger posting of another kind). Every flush notes the registered records
it wrote; just before the outermost commit the projection re-reads them and upserts their
rows (``INSERT … ON CONFLICT (source, source_id) DO UPDATE``), so a movement row commits
with the change that caused it and a rolled-back change leaves none. Use cases know
nothing of it: a new kind of movement is a projector and one ``register`` call
(``projectors.py``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import sqlalchemy as sa
from sqlalchemy import event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.db import unit_of_work, utcnow
from portal.extensions import db

from .models import MoneyMovement

#: model class -> projector(obj) -> list of movement dicts (each with source, source_id)
PROJECTORS: dict[type, Callable] = {}
_KEY = "money_movements_touched"
_COLUMNS = {c.name for c in MoneyMovement.__table__.columns} - {"id"}
_INSTALLED = []
# A row's key saying its ``party_name`` is the one its record kept (the name a visit was
# invoiced to): written over the stored one. Without it the name is today's, and a row
# already written keeps its own: the name at the time it was first written (review
# finding: a rebuild, or any later write of a row, rewrote history after a rename).
NAME_KEPT = "party_name_kept"


def register(model, projector):
    """Project ``model``'s rows with ``projector(obj)``: a dict of movement columns, a
    list of them, or None."""
    PROJECTORS[model] = projector


def _note(session, flush_context):
    touched = None
    for obj in list(session.new) + list(session.dirty):
        if type(obj) in PROJECTORS:
            if obj not in session.new and not session.is_modified(obj, include_collections=False):
                # Only a collection changed (a line on a payment's timeline, say): no
                # column a projector reads from the record itself moved.
                continue
            if touched is None:
                touched = session.info.setdefault(_KEY, {})
            touched[id(obj)] = obj


def _project(session):
    if session.in_nested_transaction():
        return
    session.flush()  # what the commit would flush next: its records get noted too
    if not session.info.get(_KEY):
        return
    touched = session.info.pop(_KEY, {})
    rows = []
    for obj in touched.values():
        state = inspect(obj)
        if not state.persistent:
            continue  # rolled back with its savepoint, or deleted
        out = PROJECTORS[type(obj)](obj)
        if out is None:
            continue
        rows.extend(out if isinstance(out, list) else [out])
    if rows:
        upsert(session, rows)
    session.info.pop(_KEY, None)  # lazy loads above must not leave a stale set behind


def _forget(session, previous_transaction):
    # Only the outermost rollback forgets: after a SAVEPOINT's rollback the records
    # written before it still commit (those it created are no longer persistent).
    if not previous_transaction.nested:
        session.info.pop(_KEY, None)


def upsert(session, rows):
    """Insert or rewrite movement rows by (source, source_id); columns a row does not name
    keep their stored values."""
    dialect = session.get_bind().dialect.name
    for (shape, kept), batch in _by_shape(rows).items():
        session.execute(_upsert_statement(dialect, shape, kept), batch)


def _by_shape(rows, seen=None):
    """The rows stamped and grouped by the columns they name (one executemany each); the
    last word on a record wins. With ``seen``, each also carries the version its row had
    (``seen_version``, None when it had none) for ``_rebuild_statement``. Grouped by
    whether their ``party_name`` is the record's own too (``NAME_KEPT``, taken off)."""
    now = utcnow()
    latest = {}
    for row in rows:
        unknown = set(row) - _COLUMNS - {NAME_KEPT}
        if unknown:
            raise ValueError(f"unknown money_movements columns {sorted(unknown)}")
        latest[(row["source"], row["source_id"])] = {**row, "updated_at": now}
    by_shape: dict[tuple, list] = {}
    for key, row in latest.items():
        kept = bool(row.pop(NAME_KEPT, False))
        shaped = row if seen is None else {**row, "seen_version": seen.get(key)}
        by_shape.setdefault((tuple(sorted(row)), kept), []).append(shaped)
    return by_shape


@cache
def _upsert_statement(dialect, shape, kept=False):
    """The upsert of rows naming ``shape``'s columns, built once per dialect and shape
    (building it and its cache key cost a fifth of a pay step's CPU); the rows are its
    parameters (several: one executemany)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = MoneyMovement.__table__
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.source, table.c.source_id],
        set_=_rewritten(stmt, shape, kept),
    )


def _rewritten(stmt, shape, kept):
    """The columns an upsert rewrites: those its rows name (a party's name only over none
    stored, unless it is the record's own: ``NAME_KEPT``), and the row's version bumped."""
    table = MoneyMovement.__table__
    set_ = {name: stmt.excluded[name] for name in shape if name not in ("source", "source_id")}
    if "party_name" in set_ and not kept:
        set_["party_name"] = sa.func.coalesce(table.c.party_name, stmt.excluded.party_name)
    set_["version"] = table.c.version + 1
    return set_


@cache
def _rebuild_statement(dialect, shape, kept=False):
    """The rebuild's upsert: a new row goes in; an existing one is rewritten only while it
    still has the version the rebuild saw before reading its record (``seen_version``;
    NULL, never equal, when it had none then). The check is on the row as it is when the
    statement reaches it (PostgreSQL waits for a writer holding it and reads its commit),
    so a row a live transaction rewrote meanwhile keeps that newer projection."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = MoneyMovement.__table__
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.source, table.c.source_id],
        set_=_rewritten(stmt, shape, kept),
        where=table.c.version == sa.bindparam("seen_version", type_=sa.Integer),
    )


def install():
    """Listen on every session (idempotent)."""
    if _INSTALLED:
        return
    event.listen(Session, "after_flush", _note)
    event.listen(Session, "before_commit", _project)
    event.listen(Session, "after_soft_rollback", _forget)
    _INSTALLED.append(True)


def rebuild(batch=1000):
    """Project every registered record again (after a bulk import, or to fill the table
    for rows written before it existed). Returns how many rows were projected.

    Safe while the portal is live: each batch of records is its own unit of work, and a
    row is rewritten only if it still has the version read *before* the batch's records
    were (``_rebuild_statement``). A record that changes meanwhile has its row written by
    its own commit, from the newer record; the rebuild's copy, read before that change,
    is dropped instead of written over it (as it was when one long transaction read a
    record and wrote its row much later). A record whose row another record's projector
    writes (a settlement item's payment) only gets its row if it has none: its own pass
    (payments) rewrote it. Called outside a unit of work (the command); inside one the
    batches nest and commit with it."""
    written = 0
    sources = list(db.session.scalars(sa.select(MoneyMovement.source).distinct()))
    for model, projector in PROJECTORS.items():
        last = 0
        while True:
            with unit_of_work():
                ids, rows = _rebuild_batch(model, projector, last, batch, sources)
                written += len(rows)
            if not ids:
                break
            last = ids[-1]
    return written


def _rebuild_batch(model, projector, after, batch, sources):
    """One batch: the versions its rows have now, then its records, then the rows
    written where those versions still hold. Returns (record ids, rows projected)."""
    db.session.flush()
    db.session.expire_all()  # read every record and what it joins afresh, after the versions
    ids = list(
        db.session.scalars(
            sa.select(model.id).where(model.id > after).order_by(model.id).limit(batch)
        )
    )
    if not ids:
        return ids, []
    table = MoneyMovement.__table__
    seen = {}
    if sources:
        versions = sa.select(table.c.source, table.c.source_id, table.c.version).where(
            table.c.source.in_(sources), table.c.source_id.between(ids[0], ids[-1])
        )
        seen = {(source, id_): version for source, id_, version in db.session.execute(versions)}
    objs = db.session.scalars(
        sa.select(model)
        .where(model.id.between(ids[0], ids[-1]))  # the ids as 1,000 parameters cost more
        .order_by(model.id)
        .execution_options(populate_existing=True)
    ).all()
    rows = []
    for obj in objs:
        out = projector(obj)
        if out is not None:
            rows.extend(out if isinstance(out, list) else [out])
    dialect = db.session.get_bind().dialect.name
    for (shape, kept), shaped in _by_shape(rows, seen).items():
        db.session.execute(_rebuild_statement(dialect, shape, kept), shaped)
    return ids, rows
