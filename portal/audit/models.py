import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

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


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("the audit log is append-only")
