"""Notifications: in-app notices, reminders, every delivery attempt, mail, attention flags.

The database is the record of what is to be sent and what was sent; Redis only carries
work that can be rebuilt from these tables (see docs/notifications.md)."""

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

# Reminders and flags point at bookings: their tables (and what those point at) must be
# mapped wherever this module is.
import portal.accounts.models  # noqa: F401
import portal.booking.models  # noqa: F401
import portal.catalog.models  # noqa: F401
import portal.payments.models  # noqa: F401
from portal.db import UTCDateTime, utcnow
from portal.domain.states import StateMachine
from portal.extensions import db

# Priorities of notices and admin alerts.
LOW, MEDIUM, HIGH = "LOW", "MEDIUM", "HIGH"
PRIORITIES = (LOW, MEDIUM, HIGH)


class ReminderStatus(StrEnum):
    """PENDING (waiting for its time) → QUEUED (claimed by the scheduler, a send job is in
    the outbox) → SENT; or WITHDRAWN (cancelled / re-timed away / its time dropped from the
    policy; PENDING again if the booking moves back or the time returns, while ahead) or
    SKIPPED (found not sendable when due: booking no longer confirmed, start passed,
    superseded). Changed only by conditional UPDATEs (``portal.notify.reminders``), so a
    race never sends twice."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    SENT = "SENT"
    WITHDRAWN = "WITHDRAWN"
    SKIPPED = "SKIPPED"


UNSENT = (ReminderStatus.PENDING, ReminderStatus.QUEUED)

# Channels and delivery states.
IN_APP, EMAIL, SMS, WHATSAPP = "in_app", "email", "sms", "whatsapp"
CHANNELS = (IN_APP, EMAIL, SMS, WHATSAPP)


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    RETRYING = "retrying"  # a transient failure, tried again with backoff
    FAILED = "failed"  # refused for good, or gave up after the outbox's attempts
    # Not sent, and never to be: what it said stopped being true before it could leave (a
    # reminder's booking cancelled, moved or begun while its mail or text waited to retry).
    WITHDRAWN = "withdrawn"


_D = DeliveryStatus
# An admin may reopen a failed delivery (the jobs page's retry): FAILED → RETRYING.
DELIVERY = StateMachine(
    "delivery",
    DeliveryStatus,
    {
        _D.QUEUED: {_D.SENT, _D.RETRYING, _D.FAILED, _D.WITHDRAWN},
        _D.RETRYING: {_D.SENT, _D.FAILED, _D.WITHDRAWN},
        _D.FAILED: {_D.RETRYING},
    },
    _D.QUEUED,
)


class MailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # handed to the SMTP server
    LOGGED = "logged"  # embedded mode: written to the console instead
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # no longer true before it could leave (as its delivery)


_M = MailStatus
MAIL = StateMachine(
    "mail",
    MailStatus,
    {
        _M.QUEUED: {_M.SENT, _M.LOGGED, _M.FAILED, _M.WITHDRAWN},
        _M.FAILED: {_M.QUEUED},  # an admin retries it
    },
    _M.QUEUED,
)
MAIL_DONE = (MailStatus.SENT, MailStatus.LOGGED, MailStatus.FAILED, MailStatus.WITHDRAWN)

# Attention flags are the booking capability's (one place for every "needs attention").
from portal.booking.attention import (  # noqa: E402,F401
    FLAG_KINDS,
    NO_SHOW,
    NOT_COMPLETED,
    AttentionFlag,
)


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class MailMessage(db.Model):
    """Every mail the portal sends, with its delivery state. In the embedded mode (no SMTP
    server configured) this table and the console are where the mail goes."""

    __tablename__ = "mail_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(sa.String(254), index=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    text: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    # [{"filename": "visit.ics", "content_type": "text/calendar; method=PUBLISH",
    #   "content": "<text>"}]
    attachments: Mapped[list | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default=MailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[object | None] = mapped_column(UTCDateTime)


class Notification(db.Model):
    """One notice in one user's in-app notification centre (admin alerts are notices to
    every admin, with a priority)."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.CheckConstraint(_in("priority", PRIORITIES), name="priority_known"),
        sa.Index("ix_notifications_user_unread", "user_id", "read_at"),
        # The same alert (e.g. one payout's failure) reaches each admin once.
        sa.UniqueConstraint("user_id", "dedupe_key", name="uq_notifications_user_dedupe"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    link: Mapped[str | None] = mapped_column(sa.String(500))
    priority: Mapped[str] = mapped_column(sa.String(8), default=LOW)
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(128))
    read_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    user = relationship("User")

    def owner_ids(self):
        return {self.user_id}

    @property
    def is_unread(self):
        return self.read_at is None

    def __repr__(self):
        return f"<Notification {self.id} {self.kind} to {self.user_id}>"


class Reminder(db.Model):
    """One reminder to one person about one individual booking's start.

    ``for_start`` is the start the reminder announces: re-timing a booking withdraws the
    unsent reminders of the old start and schedules new ones, while those already sent stay
    as history. The unique key makes each (booking, person, offset, start) at most one row,
    and the status moves PENDING → QUEUED → SENT only by conditional updates, so it is sent
    at most once however many schedulers and workers run."""

    __tablename__ = "reminders"
    __table_args__ = (
        sa.UniqueConstraint(
            "booking_id", "recipient_id", "offset_key", "for_start", name="uq_reminders_once"
        ),
        sa.CheckConstraint(_in("status", ReminderStatus), name="status_known"),
        sa.Index("ix_reminders_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(sa.String(16))  # patient | provider
    offset_key: Mapped[str] = mapped_column(sa.String(8))  # "24h", "1h", "15m"
    for_start: Mapped[object] = mapped_column(UTCDateTime)
    due_at: Mapped[object] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(10), default=ReminderStatus.PENDING)
    queued_at: Mapped[object | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[object | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(sa.String(200))  # why withdrawn / skipped
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    booking = relationship("IndividualBooking")
    recipient = relationship("User")

    def __repr__(self):
        return f"<Reminder {self.id} {self.offset_key} booking={self.booking_id} {self.status}>"


class CalendarSequence(db.Model):
    """The SEQUENCE of the last calendar file (``notify.ics``) sent for a booking: each
    update or cancellation carries a higher one, so it outranks the file it replaces
    (RFC 5546), however close together they are. An INTEGER in RFC 5545: 32 bits."""

    __tablename__ = "calendar_sequences"

    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    sequence: Mapped[int] = mapped_column(sa.Integer)


class Delivery(db.Model):
    """One message to one recipient over one channel, and what became of it.

    ``attempts`` counts tries; ``status`` is queued → sent, or retrying (a transient failure,
    tried again with backoff) → sent | failed. A reminder or a notice has at most one delivery
    per channel (unique), which is the last guard against a double send."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("reminder_id", "channel", name="uq_deliveries_reminder_channel"),
        sa.UniqueConstraint(
            "notification_id", "channel", name="uq_deliveries_notification_channel"
        ),
        sa.CheckConstraint(_in("channel", CHANNELS), name="channel_known"),
        sa.CheckConstraint(_in("status", DeliveryStatus), name="status_known"),
        sa.Index("ix_deliveries_status", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notifications.id", ondelete="SET NULL")
    )
    reminder_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("reminders.id", ondelete="SET NULL")
    )
    mail_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("mail_messages.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(sa.String(10))
    recipient: Mapped[str] = mapped_column(sa.String(254))  # address, number or user id
    kind: Mapped[str] = mapped_column(sa.String(40), default="")
    text: Mapped[str | None] = mapped_column(sa.Text)  # the body for sms / whatsapp
    status: Mapped[str] = mapped_column(sa.String(10), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    provider_ref: Mapped[str | None] = mapped_column(sa.String(120))  # the sender's message id
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[object | None] = mapped_column(UTCDateTime)

    def __repr__(self):
        return f"<Delivery {self.id} {self.channel} {self.status} to {self.recipient}>"
