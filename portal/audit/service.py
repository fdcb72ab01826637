"""Services write audit rows inside their own transaction, so the row commits with the change."""

from functools import cache

import sqlalchemy as sa
from flask import has_request_context, request

from portal.audit.models import AuditEntry
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
