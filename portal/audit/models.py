"""The audit log's row, and what keeps it append-only (docs/security.md, "The audit log"):

- a unit-of-work flush that would change or delete an entry is refused (mapper events);
- a bulk UPDATE or DELETE of ``audit_log`` through the session is refused
  (``do_orm_execute``), except the privacy redaction's UPDATE, marked ``REDACTION``;
- on PostgreSQL a trigger refuses every DELETE and TRUNCATE, and every UPDATE that changes
  anything but ``before``/``after`` (the redaction's columns), whoever sends it."""

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from portal.db import UTCDateTime, after_create_on_postgresql, utcnow
from portal.extensions import db


class AuditEntry(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(64))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)
    ip: Mapped[str | None] = mapped_column(sa.String(45))

    __table_args__ = (sa.Index("ix_audit_log_object", "object_type", "object_id"),)

    actor = relationship("User", viewonly=True)  # the viewer shows who


class AppendOnly(RuntimeError):
    """A change or removal of an audit entry was asked for: a bug, never a user's error."""

    def __init__(self, what="a change"):
        super().__init__(f"the audit log is append-only: {what} of an entry refused")


# The execution option of the one UPDATE allowed through the session: the privacy
# redaction's (audit.service.redact_personal), which rewrites before/after only.
REDACTION = {"audit_redaction": True}


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _append_only(mapper, connection, target):
    raise AppendOnly()


@event.listens_for(Session, "do_orm_execute")
def _no_bulk_rewrite(state):
    """The mapper events above fire on a flush only: a bulk ``update(AuditEntry)`` or
    ``delete(AuditEntry)`` (or of its table) through the session passes them by."""
    if not (state.is_update or state.is_delete):
        return
    if getattr(getattr(state.statement, "table", None), "name", None) != AuditEntry.__tablename__:
        return
    if state.is_update and state.execution_options.get("audit_redaction"):
        return
    raise AppendOnly("an UPDATE" if state.is_update else "a DELETE")


# PostgreSQL: whatever sends the statement (the ORM, a Core connection, psql), a DELETE or
# TRUNCATE of the log is refused, and an UPDATE unless all it changes is before/after (the
# privacy redaction's "[erased]"; every other column, one added later too, compared as the
# row's JSON). One way past, for DELETE and TRUNCATE only: the setting
# ``portal.emptying_tables``, which the tests' reset alone sets (tests/plugin.py; no code in
# portal/ names it: tests/reports/test_audit_append_only.py). It guards against the
# portal's own statements, not against the tables' owner, who may drop the trigger
# (docs/security.md). The migration aud1t0nly0001 writes the same.
APPEND_ONLY_DDL = (
    """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The tests' reset alone (tests/plugin.py: empty_tables) sets this, in its transaction.
    IF TG_OP IN ('DELETE', 'TRUNCATE')
        AND current_setting('portal.emptying_tables', true) = 'on'
    THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF to_jsonb(NEW) - 'before' - 'after' = to_jsonb(OLD) - 'before' - 'after' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING HINT = 'Only the privacy redaction may rewrite an entry''s before/after.';
END
$$
""",
    """
CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
""",
    """
CREATE TRIGGER tg_audit_log_not_truncated BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()
""",
)
after_create_on_postgresql(AuditEntry.__table__, APPEND_ONLY_DDL)
