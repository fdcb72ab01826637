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

from portal.db import utcnow
from portal.extensions import db

from .models import MoneyMovement

#: model class -> projector(obj) -> list of movement dicts (each with source, source_id)
PROJECTORS: dict[type, Callable] = {}
_KEY = "money_movements_touched"
_COLUMNS = {c.name for c in MoneyMovement.__table__.columns} - {"id"}
_INSTALLED = []


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
    now = utcnow()
    by_shape: dict[tuple, list] = {}
    seen = {}
    for row in rows:
        unknown = set(row) - _COLUMNS
        if unknown:
            raise ValueError(f"unknown money_movements columns {sorted(unknown)}")
        row = {**row, "updated_at": now}
        seen[(row["source"], row["source_id"])] = row  # the last word on a record wins
    for row in seen.values():
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    for shape, batch in by_shape.items():
        session.execute(_upsert_statement(dialect, shape), batch)


@cache
def _upsert_statement(dialect, shape):
    """The upsert of rows naming ``shape``'s columns, built once per dialect and shape
    (building it and its cache key cost a fifth of a pay step's CPU); the rows are its
    parameters (several: one executemany)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = MoneyMovement.__table__
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.source, table.c.source_id],
        set_={name: stmt.excluded[name] for name in shape if name not in ("source", "source_id")},
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
    for rows written before it existed). Returns how many rows were written."""
    written = 0
    for model, projector in PROJECTORS.items():
        last = 0
        while True:
            objs = db.session.scalars(
                sa.select(model).where(model.id > last).order_by(model.id).limit(batch)
            ).all()
            if not objs:
                break
            rows = []
            for obj in objs:
                out = projector(obj)
                if out is not None:
                    rows.extend(out if isinstance(out, list) else [out])
            if rows:
                upsert(db.session, rows)
                written += len(rows)
            last = objs[-1].id
    return written
