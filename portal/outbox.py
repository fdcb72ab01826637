"""Follow-up work recorded in the same transaction as the change that causes it.

A service calls ``jobs.enqueue(...)``, which writes an OutboxItem in the service's
transaction (and notes its id on the session). Only after the commit is the item handed to
a worker, so a rolled-back change sends nothing.
``dispatched_at`` is the lease of an item handed to Redis: the periodic sweep hands over
only items never dispatched (delayed, or due for a retry) or whose lease ran out (lost on
the way: Redis down or emptied, a crash), so a backlog waiting in the queues is never
queued twice."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.extensions import db


class OutboxItem(db.Model):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_pending", "done_at", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # A key makes the work happen at most once however often it is asked for.
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    run_after: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[object | None] = mapped_column(UTCDateTime)  # handed to Redis
    done_at: Mapped[object | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
