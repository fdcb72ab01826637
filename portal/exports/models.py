"""A CSV export run in the background: who asked, with which filters, how far it got."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.domain.states import ExportStatus
from portal.extensions import db


class Export(db.Model):
    __tablename__ = "exports"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in ExportStatus) + ")",
            name="status_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40))  # the registered builder
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # the screen's filters
    title: Mapped[str] = mapped_column(sa.String(200))
    filters_text: Mapped[str] = mapped_column(sa.Text, default="")
    download_name: Mapped[str] = mapped_column(sa.String(120))
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(8), default=ExportStatus.QUEUED, index=True)
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_written: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)

    def owner_ids(self):
        return {self.requested_by_id}

    def __repr__(self):
        return f"<Export {self.id} {self.name} {self.status}>"
