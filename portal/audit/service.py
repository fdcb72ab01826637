"""Services write audit rows inside their own transaction, so the row commits with the change."""

from flask import has_request_context, request

from portal.audit.models import AuditEntry
from portal.extensions import db


def record(actor, action, obj_type, obj_id=None, before=None, after=None):
    entry = AuditEntry(
        actor_id=getattr(actor, "id", actor),
        action=action,
        object_type=obj_type,
        object_id=None if obj_id is None else str(obj_id),
        before=before,
        after=after,
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(entry)
    return entry
