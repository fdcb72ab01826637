"""Reminders 24 h, 1 h and 15 min before a confirmed booking's start, to the patient (the
account holder, who is the guardian when the visit is for a dependent) and every provider.

Lifecycle (all rows in ``reminders``; nothing lives only in Redis)::

    schedule / retime ──> PENDING ──(scheduler claims, due)──> QUEUED ──(send job)──> SENT
                             │                                    │
                             └─── withdraw / retime ─> WITHDRAWN <┘   (or SKIPPED when due
                                  / time dropped                         but not sendable)
    WITHDRAWN ──(wanted again while still ahead: sync_reminders)──> PENDING

* ``sync_reminders(booking_id)`` makes the rows match the booking: confirmed → the offsets
  still in the future (``domain.schedule.reminder_times``) for each recipient; anything else
  → none. ``schedule_reminders`` and ``retime_reminders`` are that; ``withdraw_reminders``
  withdraws every unsent one. A reminder wanted again is its withdrawn row revived: one row
  per (booking, person, offset, start) whatever comes and goes, so it is sent once.
* ``notify.send_due_reminders`` (every 60 s) claims due PENDING rows — on PostgreSQL
  ``FOR UPDATE SKIP LOCKED``, and everywhere a conditional ``UPDATE … WHERE status =
  'PENDING'`` — and puts one ``notify.send_reminder`` job per row in the outbox, in the
  same transaction.
* ``notify.send_reminder`` locks the row, re-checks it (still QUEUED, booking confirmed,
  start unchanged and ahead, its time still in the policy, not superseded by a later
  reminder also due), marks it SENT
  and writes the notice, the deliveries and the mail — all in the outbox item's
  transaction. A worker killed before that commit leaves the row QUEUED and the item not
  done: the outbox sweep runs it again. After the commit it is SENT and never repeated.

Every status change is a conditional UPDATE, so a withdrawal racing a send never
overwrites SENT, and a send never resurrects a withdrawn reminder."""

import logging
from functools import cache

import sqlalchemy as sa

from portal import jobs
from portal.booking.models import IndividualBooking
from portal.config import policy, setting
from portal.db import bind_columns, insert_for, unit_of_work, utcnow
from portal.domain.schedule import reminder_keys, reminder_times
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify.center import notify_user
from portal.notify.models import UNSENT, Delivery, Reminder, ReminderStatus
from portal.notify.reminder_truth import no_longer_true, recipients

# Kept importable from here (tasks, sweeps and the money notices say times with them).
from portal.notify.reminder_words import local_time, reminder_words, when_words

log = logging.getLogger("portal.notify.reminders")

SEND_DUE = "notify.send_due_reminders"
SEND_ONE = "notify.send_reminder"
FOLLOW_POLICY = "notify.follow_reminder_times"
FOLLOW_BATCH = 500  # bookings brought in line a tick; the rest on the next
TIMES_CHANGED = "reminder times changed"


def _is_postgres():
    return db.engine.dialect.name == "postgresql"


# --- scheduling ----------------------------------------------------------------------------


def sync_reminders(booking_id, now=None):
    """Make the booking's unsent reminders match its status, start and people.
    Returns ``{"scheduled": n, "withdrawn": n}``. Runs in the caller's transaction."""
    now = now or utcnow()
    booking = db.session.get(IndividualBooking, booking_id)
    if booking is None:
        return {"scheduled": 0, "withdrawn": 0}
    desired = {}
    if booking.status == BookingStatus.CONFIRMED:
        times = reminder_times(booking.start_at, now, policy())
        for user_id, role in recipients(booking):
            for key, due in times:
                desired[(user_id, key, booking.start_at)] = (due, role)
    existing = db.session.scalars(
        sa.select(Reminder).where(Reminder.booking_id == booking_id)
    ).all()
    present, withdraw, revive = set(), [], []
    for reminder in existing:
        key = (reminder.recipient_id, reminder.offset_key, reminder.for_start)
        present.add(key)
        if key not in desired:
            if reminder.status in UNSENT:
                withdraw.append(reminder.id)
        elif reminder.status == ReminderStatus.WITHDRAWN:
            revive.append((reminder.id, desired[key][0]))
    confirmed = booking.status == BookingStatus.CONFIRMED
    withdrawn = _withdraw_ids(
        withdraw, "booking changed" if confirmed else f"booking {booking.status.lower()}"
    )
    scheduled = 0
    for reminder_id, due in revive:
        scheduled += db.session.execute(
            sa.update(Reminder)
            .where(Reminder.id == reminder_id, Reminder.status == ReminderStatus.WITHDRAWN)
            .values(status=ReminderStatus.PENDING, due_at=due, note=None, queued_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
    rows = [
        dict(
            booking_id=booking_id,
            recipient_id=user_id,
            role=role,
            offset_key=key,
            for_start=start,
            due_at=due,
            status=ReminderStatus.PENDING,
            created_at=now,
        )
        for (user_id, key, start), (due, role) in desired.items()
        if (user_id, key, start) not in present
    ]
    scheduled += _insert_new(rows)
    if withdraw or revive:
        _expire_loaded_reminders()
    return {"scheduled": scheduled, "withdrawn": withdrawn}


def _insert_new(rows):
    """All the new reminders in one ``INSERT … ON CONFLICT DO NOTHING`` (one statement where
    a row each took six on a confirmation); one scheduled at the same moment elsewhere is
    fine. Returns how many were inserted."""
    if not rows:
        return 0
    # One row's statement, built once; SQLAlchemy sends the rows as one multi-row INSERT
    # ("insertmanyvalues"), where a statement built for each list cost as much to build.
    return len(db.session.execute(_insert_reminder(db.engine.dialect.name), rows).all())


_REMINDER_COLUMNS = (
    "booking_id",
    "recipient_id",
    "role",
    "offset_key",
    "for_start",
    "due_at",
    "status",
    "created_at",
)


@cache
def _insert_reminder(dialect_name):
    table = Reminder.__table__
    return (
        insert_for(dialect_name)(table)
        .values(bind_columns(table, _REMINDER_COLUMNS))
        .on_conflict_do_nothing(
            index_elements=["booking_id", "recipient_id", "offset_key", "for_start"]
        )
        .returning(table.c.id)
    )


def schedule_reminders(booking_id, now=None):
    """On confirmation: the reminders still ahead, for the patient and every provider."""
    return sync_reminders(booking_id, now)


def retime_reminders(booking_id, now=None):
    """After a reschedule (start or providers changed): unsent reminders of the old start
    are withdrawn and those of the new start scheduled; sent ones stay as history."""
    return sync_reminders(booking_id, now)


def withdraw_reminders(booking_id, reason="booking cancelled"):
    """On cancellation: every unsent reminder of the booking is withdrawn."""
    ids = db.session.scalars(
        sa.select(Reminder.id).where(Reminder.booking_id == booking_id, Reminder.status.in_(UNSENT))
    ).all()
    count = _withdraw_ids(ids, reason)
    if count:
        _expire_loaded_reminders()
    return count


def _expire_loaded_reminders():
    """Bulk updates bypass the identity map: reload reminders on next access (and only
    them — the caller's other unflushed changes stay)."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Reminder):
            db.session.expire(obj)


def _withdraw_ids(ids, reason):
    if not ids:
        return 0
    return db.session.execute(
        sa.update(Reminder)
        .where(Reminder.id.in_(ids), Reminder.status.in_(UNSENT))
        .values(status=ReminderStatus.WITHDRAWN, note=reason[:200])
        .execution_options(synchronize_session=False)
    ).rowcount


# --- the policy's reminder times changed --------------------------------------------------


@jobs.periodic(FOLLOW_POLICY, every=300)
def follow_reminder_times(now=None):
    """Reminders follow the times in force (docs/policy.md: not kept per booking). When an
    admin's change of ``reminder_offsets`` takes effect (at approval, or at a later
    effective time: no event marks it, so this looks every 5 minutes), pending reminders
    of a time no longer in force are withdrawn, and confirmed bookings ahead missing a
    reminder of a time now in force are synced (``sync_reminders``: only those still
    ahead; a withdrawn one is revived). A queued one is left to its send job, which
    withdraws it if its time is still out then: restored before the job runs, it is sent.
    Nothing to do costs one UPDATE and one SELECT. One unit of work (in the embedded mode
    the process lock, which every writer takes first: docs/architecture.md). Returns
    ``{"withdrawn": n, "bookings": n}``."""
    with unit_of_work():
        return _follow(now or utcnow())


def _follow(now):
    keys = reminder_keys(policy())
    withdrawn = db.session.execute(
        sa.update(Reminder)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.offset_key.not_in(list(keys)))
        .values(status=ReminderStatus.WITHDRAWN, note=TIMES_CHANGED)
        .execution_options(synchronize_session=False)
    ).rowcount
    missing = []
    for key, offset in keys.items():
        has_it = (
            sa.select(Reminder.id)
            .where(
                Reminder.booking_id == IndividualBooking.id,
                Reminder.offset_key == key,
                Reminder.for_start == IndividualBooking.start_at,
                Reminder.status != ReminderStatus.WITHDRAWN,
            )
            .exists()
        )
        missing.append(
            sa.select(IndividualBooking.id).where(
                IndividualBooking.status == BookingStatus.CONFIRMED,
                IndividualBooking.start_at > now + offset,
                ~has_it,
            )
        )
    ids = (
        db.session.scalars(sa.union(*missing).order_by("id").limit(FOLLOW_BATCH)).all()
        if missing
        else []
    )
    for booking_id in ids:
        sync_reminders(booking_id, now)
    if withdrawn:
        _expire_loaded_reminders()
    return {"withdrawn": withdrawn, "bookings": len(ids)}


# --- sending -------------------------------------------------------------------------------


@jobs.periodic(SEND_DUE, every=60)
def send_due_reminders(limit=500):
    """Claim the due reminders and queue one send job for each (one unit of work)."""
    with unit_of_work():
        return _claim_due(utcnow(), limit)


def _claim_due(now, limit):
    query = (
        sa.select(Reminder.id)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    if _is_postgres():
        query = query.with_for_update(skip_locked=True)
    claimed = 0
    for reminder_id in db.session.scalars(query).all():
        won = db.session.execute(
            sa.update(Reminder)
            .where(Reminder.id == reminder_id, Reminder.status == ReminderStatus.PENDING)
            .values(status=ReminderStatus.QUEUED, queued_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won:
            jobs.enqueue(SEND_ONE, reminder_id=reminder_id)
            claimed += 1
    return claimed


@jobs.job(SEND_ONE)
def send_reminder(reminder_id):
    query = (
        sa.select(Reminder)
        .where(Reminder.id == reminder_id)
        .execution_options(populate_existing=True)
    )
    if _is_postgres():
        query = query.with_for_update()
    reminder = db.session.scalar(query)
    if reminder is None or reminder.status != ReminderStatus.QUEUED:
        # Sent, withdrawn or skipped meanwhile: nothing for this job to do, ever (a
        # withdrawn row revived is claimed again, with a job of its own).
        return
    now = utcnow()
    booking = reminder.booking
    unsendable = _unsendable(reminder, booking, now)
    if unsendable:
        status, note = unsendable
        _set_status(reminder, status, note=note)
        return
    if not _set_status(reminder, ReminderStatus.SENT, sent_at=now):
        return
    _deliver(reminder, booking, now)


def _unsendable(reminder, booking, now):
    """``(status, note)`` when the reminder must not go now, else None."""
    untrue = no_longer_true(reminder, booking, now)
    if untrue:
        return ReminderStatus.SKIPPED, untrue
    if reminder.offset_key not in reminder_keys(policy()):
        # Withdrawn, as the follower withdraws the pending ones: if the time comes back
        # while this reminder is still ahead, sync_reminders revives this row (kept as
        # skipped, the row held its key and the restored reminder was never sent).
        return ReminderStatus.WITHDRAWN, TIMES_CHANGED
    later = db.session.scalar(
        sa.select(Reminder.offset_key).where(
            Reminder.booking_id == reminder.booking_id,
            Reminder.recipient_id == reminder.recipient_id,
            Reminder.for_start == reminder.for_start,
            Reminder.id != reminder.id,
            Reminder.due_at > reminder.due_at,
            Reminder.due_at <= now,
            Reminder.status.in_(
                (ReminderStatus.PENDING, ReminderStatus.QUEUED, ReminderStatus.SENT)
            ),
        )
    )
    if later:
        return ReminderStatus.SKIPPED, f"superseded by the {later} reminder"
    return None


def _set_status(reminder, status, **values):
    won = db.session.execute(
        sa.update(Reminder)
        .where(Reminder.id == reminder.id, Reminder.status == ReminderStatus.QUEUED)
        .values(status=status, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(reminder)
    return bool(won)


def reminder_channels():
    """The channels a reminder goes out on: ``NOTIFY_REMINDER_CHANNELS``, default in-app,
    mail and SMS (the SMS sender logs unless a real one is configured)."""
    return tuple(setting("NOTIFY_REMINDER_CHANNELS"))


def _deliver(reminder, booking, now):
    words = reminder_words(reminder, booking, now)
    channels = reminder_channels()
    text_channel = next((c for c in channels if c in ("sms", "whatsapp")), None)
    notice = notify_user(
        reminder.recipient_id,
        "reminder",
        words.title,
        words.body,
        link=words.link,
        email="email" in channels,
        text=text_channel,
        mail_template="reminder",
        mail_context=words.mail_context,
    )
    # Tie this reminder's deliveries to it: the (reminder, channel) key is unique.
    db.session.flush()
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.notification_id == notice.id)
        .values(reminder_id=reminder.id)
        .execution_options(synchronize_session=False)
    )
    log.info(
        "reminder %s (%s) sent to user %s", reminder.id, reminder.offset_key, reminder.recipient_id
    )
    return notice


def reminders_for(booking_id):
    return db.session.scalars(
        sa.select(Reminder)
        .where(Reminder.booking_id == booking_id)
        .order_by(Reminder.for_start, Reminder.due_at, Reminder.recipient_id)
    ).all()


__all__ = [
    "schedule_reminders",
    "retime_reminders",
    "withdraw_reminders",
    "sync_reminders",
    "send_due_reminders",
    "send_reminder",
    "SEND_DUE",
    "SEND_ONE",
    "local_time",
    "when_words",
]
