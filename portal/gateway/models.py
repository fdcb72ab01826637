"""Webhook events as received: stored once per (source, event id), processed once."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.extensions import db

SOURCES = ("razorpay", "razorpayx")


class WebhookEvent(db.Model):
    __tablename__ = "webhook_event"
    __table_args__ = (
        # The gateway's event id, unique per source: a redelivery cannot be stored twice.
        sa.UniqueConstraint("source", "event_id"),
        sa.CheckConstraint("source IN ('razorpay', 'razorpayx')", name="source"),
        sa.Index("ix_webhook_event_unprocessed", "processed_at", "received_at"),
        # An event is known by its id whichever endpoint it came to (webhook_processing):
        # the unique (source, event_id) cannot serve a look-up by the id alone, which
        # scanned the table (32 ms at 500,000 events, three a booking).
        sa.Index("ix_webhook_event_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(16))
    event_id: Mapped[str] = mapped_column(sa.String(64))
    event_type: Mapped[str] = mapped_column(sa.String(64), index=True)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    signature_ok: Mapped[bool] = mapped_column(default=True)
    # The gateway's own time of the event (Unix seconds): handlers use it to order events.
    event_created_at: Mapped[int | None] = mapped_column(sa.BigInteger)
    received_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    def entity(self, name):
        """The entity of one kind in the payload (``"payment"``, ``"refund"`` …) or None."""
        return ((self.payload or {}).get("payload", {}).get(name) or {}).get("entity")

    def __repr__(self):
        return f"<WebhookEvent {self.source}:{self.event_type} {self.event_id}>"
