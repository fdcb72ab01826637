"""The audit log's row, kept append-only as the ledger is (portal/append_only.py;
docs/security.md, "Append-only history"): a flush or a bulk UPDATE/DELETE through the
session is refused, but the privacy redaction's UPDATE, marked ``REDACTION``; on PostgreSQL
a trigger refuses every DELETE and TRUNCATE, and every UPDATE that changes anything but
``before``/``after`` (the redaction's columns), whoever sends it."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.append_only import append_only
from portal.db import UTCDateTime, utcnow
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


# The execution option of the one UPDATE allowed through the session: the privacy
# redaction's (audit.service.redact_personal), which rewrites before/after only, the columns
# PostgreSQL's trigger lets change.
REDACTION_OPTION = "audit_redaction"
REDACTION = {REDACTION_OPTION: True}

append_only(AuditEntry, "audit log", update_option=REDACTION_OPTION, may_change=("before", "after"))
