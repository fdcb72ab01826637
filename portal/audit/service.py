"""Services write audit rows inside their own transaction, so the row commits with the change."""

from functools import cache

import sqlalchemy as sa
from flask import has_request_context, request

from portal.audit.models import REDACTION, AuditEntry
from portal.db import bind_columns, utcnow
from portal.extensions import db

_COLUMNS = ("at", "actor_id", "action", "object_type", "object_id", "before", "after", "ip")


def record(actor, action, obj_type, obj_id=None, before=None, after=None):
    """One row of the audit log, written now in the caller's transaction (it commits or
    rolls back with the change). Written by one statement built once, without flushing
    what the session holds: the row needs none of it (``actor`` and ``obj_id`` are given
    as they are now), and the ORM's flush of an audit entry cost more than the insert."""
    values = {
        "at": utcnow(),
        "actor_id": getattr(actor, "id", actor),
        "action": action,
        "object_type": obj_type,
        "object_id": None if obj_id is None else str(obj_id),
        "before": before,
        "after": after,
        "ip": request.remote_addr if has_request_context() else None,
    }
    with db.session.no_autoflush:
        db.session.execute(_insert(), values)


@cache
def _insert():
    table = AuditEntry.__table__
    return sa.insert(table).values(bind_columns(table, _COLUMNS))


PERSONAL_FIELDS = ("name", "date_of_birth", "email", "phone")
ERASED = "[erased]"


def _redacted(value, fields):
    if isinstance(value, dict):
        return {
            k: (ERASED if k in fields and v is not None else _redacted(v, fields))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v, fields) for v in value]
    return value


def _rows_about(objects):
    """The audit rows about ``objects`` (pairs of object type and id), oldest first: id,
    object type, object id, before, after."""
    by_type = {}
    for obj_type, obj_id in objects:
        by_type.setdefault(obj_type, set()).add(str(obj_id))
    if not by_type:
        return []
    table = AuditEntry.__table__
    return db.session.execute(
        sa.select(table.c.id, table.c.object_type, table.c.object_id, table.c.before, table.c.after)
        .where(
            sa.or_(
                *(
                    sa.and_(table.c.object_type == t, table.c.object_id.in_(sorted(ids)))
                    for t, ids in by_type.items()
                )
            )
        )
        .order_by(table.c.id)
    ).all()


def recorded_values(objects, field):
    """Every value of ``field`` (a name, an e-mail) the audit rows about ``objects``
    recorded in their before or after, oldest first: ``{(object type, object id as
    text): [value, …]}`` (a dependent's name when added and each name given it since). A
    closure reads them before ``redact_personal`` erases them, to find the old names in
    what was sent to others."""
    values = {}
    for _id, obj_type, obj_id, before, after in _rows_about(objects):
        for facts in (before, after):
            value = facts.get(field) if isinstance(facts, dict) else None
            if isinstance(value, str) and value and value != ERASED:
                found = values.setdefault((obj_type, obj_id), [])
                if value not in found:
                    found.append(value)
    return values


def redact_personal(objects, fields=PERSONAL_FIELDS):
    """The one change the append-only log allows: a closed account's personal data
    (docs/privacy.md). In the before/after JSON of the rows about ``objects`` (pairs of
    object type and id), each of ``fields`` (at any depth) becomes ``"[erased]"``; the
    action, actor, object, time and every other value stay. A Core UPDATE per changed
    row, marked ``REDACTION``: the one UPDATE the log's session guard lets through (and
    PostgreSQL's trigger, since it changes before/after alone). Returns the rows changed."""
    table = AuditEntry.__table__
    changed = 0
    for row_id, _type, _id, before, after in _rows_about(objects):
        new_before, new_after = _redacted(before, fields), _redacted(after, fields)
        if (new_before, new_after) != (before, after):
            db.session.execute(
                sa.update(table)
                .where(table.c.id == row_id)
                .values(before=new_before, after=new_after),
                execution_options=REDACTION,
            )
            changed += 1
    return changed
