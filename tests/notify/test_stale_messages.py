"""Messages whose facts changed before they left: a reminder's mail or text retried after
the booking was cancelled, moved or begun; a reschedule notice run after a cancellation;
a reminder worded from a time no longer left; calendar files told within one minute."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.booking.models import IndividualBooking
from portal.db import utcnow
from portal.extensions import db
from portal.notify import channels, ops
from portal.notify.models import Delivery, MailMessage, Notification
from portal.notify.reminders import schedule_reminders, withdraw_reminders
from portal.notify.tasks import on_booking_cancelled, on_booking_confirmed, on_booking_rescheduled
from portal.outbox import OutboxItem
from tests.notify.factories import NOW, make_booking

PATIENT_MAIL = "patient@example.com"


class DownSender(channels.TextSender):
    """The SMS gateway is unreachable while ``down``; what went through is in ``sent``."""

    down = True
    sent = []

    def send(self, to, text, *, reference):
        if DownSender.down:
            raise channels.TransientSendError("gateway unreachable")
        DownSender.sent.append(text)
        return f"msg-{len(DownSender.sent)}"


@pytest.fixture
def outage(app):
    """The mail server and the SMS gateway down until the test brings them back
    (``outage.end()``)."""
    port = app.config["MAIL_PORT"]
    DownSender.down, DownSender.sent = True, []
    app.config["MAIL_PORT"] = 1
    app.config["NOTIFY_SENDERS"] = {"sms": DownSender}

    class Outage:
        @staticmethod
        def end():
            app.config["MAIL_PORT"] = port
            DownSender.down = False

    try:
        yield Outage
    finally:
        app.config["MAIL_PORT"] = port
        app.config.pop("NOTIFY_SENDERS", None)


def _patient_reminder(channel):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Delivery).where(
            Delivery.reminder_id.is_not(None),
            Delivery.channel == channel,
            Delivery.recipient.in_((PATIENT_MAIL, "+919812345678")),
        )
    ).all()


def _reminders_received(smtp_server):
    return [m["Subject"] for m in smtp_server.to(PATIENT_MAIL) if m["Subject"].startswith("Remind")]


def test_a_reminder_retried_after_the_booking_was_cancelled_is_withdrawn_not_delivered(
    world, smtp_server, outage
):
    """The 24 h reminder meets a mail and SMS outage; ten minutes later the patient cancels.
    The retries after the outage deliver nothing: the mail and the text are withdrawn."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        assert jobs.run_periodic("notify.send_due_reminders") == 2
    [mail] = _patient_reminder("email")
    [text] = _patient_reminder("sms")
    assert (mail.status, text.status) == ("retrying", "retrying")
    with time_machine.travel(start - timedelta(hours=23, minutes=50), tick=False):
        db.session.get(IndividualBooking, booking).status = "CANCELLED"
        withdraw_reminders(booking)
        db.session.commit()
    outage.end()
    with time_machine.travel(start - timedelta(hours=23), tick=False):
        jobs.sweep_outbox()
    assert _reminders_received(smtp_server) == [] and DownSender.sent == []
    [mail] = _patient_reminder("email")
    [text] = _patient_reminder("sms")
    assert (mail.status, text.status) == ("withdrawn", "withdrawn")
    assert mail.error == text.error == "withdrawn: booking not confirmed"
    assert db.session.get(MailMessage, mail.mail_id).status == "withdrawn"
    # Done: nothing is left for the outbox to retry.
    assert not db.session.scalars(
        sa.select(OutboxItem).where(OutboxItem.done_at.is_(None), OutboxItem.job.like("notify.%"))
    ).all()


def test_a_reminder_mail_retried_after_the_start_is_withdrawn(world, smtp_server, outage):
    """The 1 h reminder meets a two-hour mail outage: "in 1 hour" must not arrive after
    the appointment began."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    outage.end()
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        jobs.sweep_outbox()
    assert _reminders_received(smtp_server) == []
    assert {d.status for d in _patient_reminder("email")} == {"withdrawn"}
    assert {d.error for d in _patient_reminder("email")} == {"withdrawn: start passed"}


def test_the_admins_retry_of_a_reminder_given_up_after_the_booking_moved_delivers_nothing(
    world, smtp_server, outage
):
    """The reminder's mail gave up (every attempt failed); the booking then moved. The
    admin's "Retry now" on the jobs page withdraws it, and the page shows it withdrawn."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    [mail] = _patient_reminder("email")
    item = db.session.scalar(
        sa.select(OutboxItem).where(
            OutboxItem.job == "notify.send_mail",
            OutboxItem.payload["message_id"].as_integer() == mail.mail_id,
        )
    )
    item.attempts = jobs.MAX_ATTEMPTS
    db.session.get(Delivery, mail.id).status = "failed"
    db.session.get(MailMessage, mail.mail_id).status = "failed"
    moved = db.session.get(IndividualBooking, booking)
    moved.start_at, moved.end_at = start + timedelta(days=1), start + timedelta(days=1, minutes=30)
    db.session.commit()
    outage.end()
    with time_machine.travel(start - timedelta(hours=20), tick=False):
        outcome, _ = ops.retry_outbox_item(world_admin(world), item.id)
        jobs.sweep_outbox()
    assert outcome in (ops.Outcome.HANDED, ops.Outcome.WAITING)
    assert _reminders_received(smtp_server) == []
    [mail] = _patient_reminder("email")
    assert (mail.status, mail.error) == ("withdrawn", "withdrawn: booking re-timed")
    from portal.notify.queries import failing_deliveries_page

    assert mail.id in [d.id for d in failing_deliveries_page().items]


def world_admin(world):
    from portal.accounts.models import User

    return db.session.get(User, world.admin)


def test_a_reminder_mail_delayed_while_the_booking_stands_is_still_delivered(
    world, smtp_server, outage
):
    """The check withdraws only what is no longer true: a retry before the start of a
    booking still confirmed at that start goes out."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    outage.end()
    with time_machine.travel(start - timedelta(hours=23), tick=False):
        jobs.sweep_outbox()
    assert _reminders_received(smtp_server) == ["Reminder: Consultation tomorrow"]
    assert len(DownSender.sent) == 1
    assert {d.status for d in _patient_reminder("email") + _patient_reminder("sms")} == {"sent"}


def test_a_24h_reminder_retried_after_the_1h_reminder_went_out_is_withdrawn(
    world, smtp_server, outage
):
    """The 24 h reminder's mail and text meet an outage that ends just before the 1 h
    reminder's time; the 1 h reminder goes out at once, and the 24 h retries come after
    it: "tomorrow" must not follow "in 1 hour" (on any channel: the patient was told the
    nearer time, in-app at least). Withdrawn as superseded, not delivered."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    assert {d.status for d in _patient_reminder("email") + _patient_reminder("sms")} == {"retrying"}
    outage.end()
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    assert _reminders_received(smtp_server) == ["Reminder: Consultation in 1 hour"]
    with time_machine.travel(start - timedelta(minutes=55), tick=False):
        jobs.sweep_outbox()
    assert _reminders_received(smtp_server) == ["Reminder: Consultation in 1 hour"]
    assert len(DownSender.sent) == 1 and "in 1 hour" in DownSender.sent[0]
    by_status = {(d.status, d.error) for d in _patient_reminder("email") + _patient_reminder("sms")}
    assert by_status == {("sent", None), ("withdrawn", "withdrawn: superseded by the 1h reminder")}
    withdrawn = [d for d in _patient_reminder("email") if d.status == "withdrawn"]
    assert db.session.get(MailMessage, withdrawn[0].mail_id).status == "withdrawn"
    # The doctors' 24 h mails were superseded by their own 1 h reminders, not the patient's.
    assert not db.session.scalars(
        sa.select(OutboxItem).where(OutboxItem.done_at.is_(None), OutboxItem.job.like("notify.%"))
    ).all()


def test_a_later_reminder_to_someone_else_does_not_withdraw_the_patients(
    world, smtp_server, outage
):
    """Superseded only by the same person's later reminder: the doctor's 1 h reminder
    sent (the patient's withdrawn by hand) leaves the patient's 24 h retry to go out,
    saying the time left when it goes."""
    from portal.notify.models import Reminder

    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    db.session.execute(
        sa.update(Reminder)
        .where(Reminder.recipient_id == world.patient, Reminder.offset_key != "24h")
        .values(status="WITHDRAWN")
    )
    db.session.commit()
    outage.end()
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
        jobs.sweep_outbox()
    assert _reminders_received(smtp_server) == ["Reminder: Consultation in 1 hour"]
    assert {d.status for d in _patient_reminder("email") + _patient_reminder("sms")} == {"sent"}


def _patient_mails(subject_like):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(MailMessage)
        .where(MailMessage.to == PATIENT_MAIL, MailMessage.subject.like(subject_like))
        .order_by(MailMessage.id)
    ).all()


def _move(booking_id, new_start):
    item = db.session.get(IndividualBooking, booking_id)
    item.start_at, item.end_at = new_start, new_start + timedelta(minutes=30)


def test_a_reschedule_notice_run_after_the_cancellation_tells_nothing(world):
    """The move's notice job runs after the booking was cancelled (its CANCEL file sent):
    no "Rescheduled" notice, and no PUBLISH file putting the visit back in the calendar."""
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    on_booking_confirmed(db.session.get(IndividualBooking, booking).master_id)
    _move(booking, start + timedelta(days=1))
    db.session.commit()
    db.session.get(IndividualBooking, booking).status = "CANCELLED"
    on_booking_cancelled(booking, by="patient")
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(minutes=2), tick=False):
        on_booking_rescheduled(booking, old_start=start, reschedule_id=None)
        db.session.commit()
    db.session.expire_all()
    told = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "booking.rescheduled")
    ).all()
    assert told == [] and _patient_mails("Rescheduled%") == []


def test_a_reschedule_notice_for_a_move_since_superseded_tells_nothing(world):
    """Moved twice before the first move's notice ran: only the latest move is told."""
    from portal.booking.models import Reschedule

    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    item = db.session.get(IndividualBooking, booking)
    first, second = start + timedelta(days=1), start + timedelta(days=2)
    moves = []
    for old, new in ((start, first), (first, second)):
        move = Reschedule(
            booking_id=booking,
            visit_id=item.master_id,
            old_start=old,
            old_end=old + timedelta(minutes=30),
            new_start=new,
            new_end=new + timedelta(minutes=30),
            notice_minutes=0,
            penalty_bps=0,
            penalty=0,
            platform_fee=0,
            gst=0,
            total=0,
            status="DONE",
        )
        db.session.add(move)
        moves.append(move)
    _move(booking, second)
    db.session.commit()
    on_booking_rescheduled(booking, old_start=start, reschedule_id=moves[0].id)
    on_booking_rescheduled(booking, old_start=first, reschedule_id=moves[1].id)
    db.session.commit()
    [mail] = _patient_mails("Rescheduled%")
    assert "METHOD:PUBLISH" in mail.attachments[0]["content"]
    told = db.session.scalars(
        sa.select(Notification.dedupe_key).where(
            Notification.kind == "booking.rescheduled", Notification.user_id == world.patient
        )
    ).all()
    assert told == [f"booking-rescheduled:{booking}:r{moves[1].id}"]


def _titles(user_id):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification.title)
        .where(Notification.user_id == user_id, Notification.kind == "reminder")
        .order_by(Notification.id)
    ).all()


@pytest.mark.parametrize(
    "sent_before, said",
    [
        (timedelta(hours=24), "Reminder: Consultation tomorrow"),
        (timedelta(hours=3), "Reminder: Consultation in 3 hours"),  # late, the same day
        (timedelta(hours=2, minutes=1), "Reminder: Consultation in 2 hours"),
        (timedelta(minutes=50), "Reminder: Consultation in 50 minutes"),
    ],
)
def test_a_reminder_says_the_time_left_when_it_is_sent(world, sent_before, said):
    """The scheduler was down: only the 24 h reminder is due when it comes back (a later
    one due would supersede it), and it says how far ahead the visit is now."""
    start = NOW + timedelta(days=2)  # Wednesday 3 June 2026, 08:00 IST
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    from portal.notify.models import Reminder

    # Only the 24 h reminder stands (the others withdrawn as if the policy had only it).
    db.session.execute(
        sa.update(Reminder).where(Reminder.offset_key != "24h").values(status="WITHDRAWN")
    )
    db.session.commit()
    with time_machine.travel(start - sent_before, tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    assert _titles(world.patient) == [said]


def test_the_time_left_is_said_by_the_clinics_day_and_in_hindi_too(app):
    """Beyond a few hours the clinic's calendar says it: 10:00 IST for 20:00 IST is
    "today", not "in 10 hours"; 22:00 IST for 08:00 IST is "tomorrow". In Hindi too."""
    from flask_babel import force_locale

    from portal.notify.reminders import when_words

    evening = NOW + timedelta(days=2, hours=12)  # Wednesday 3 June 2026, 20:00 IST
    morning = NOW + timedelta(days=2)  # Wednesday, 08:00 IST
    zone = "Asia/Kolkata"
    with app.test_request_context():
        said = [
            when_words(evening, evening - timedelta(hours=10), zone),
            when_words(morning, morning - timedelta(hours=10), zone),
            when_words(evening, evening - timedelta(hours=30), zone),
            when_words(evening, evening - timedelta(hours=50), zone),
            when_words(morning, morning - timedelta(minutes=15, seconds=-5), zone),
            when_words(morning, morning - timedelta(minutes=59, seconds=50), zone),
        ]
        assert said == [
            "today",
            "tomorrow",
            "tomorrow",
            "in 2 days",
            "in 15 minutes",
            "in 1 hour",
        ]
        with force_locale("hi"):
            assert [
                when_words(evening, evening - timedelta(hours=10), zone),
                when_words(evening, evening - timedelta(hours=30), zone),
                when_words(morning, morning - timedelta(hours=3), zone),
                when_words(evening, evening - timedelta(hours=50), zone),
            ] == ["आज", "कल", "3 घंटे में", "2 दिन में"]


def _sequence(mail):
    lines = mail.attachments[0]["content"].splitlines()
    return int(next(x for x in lines if x.startswith("SEQUENCE:")).split(":")[1])


def test_a_cancellation_in_the_same_minute_as_a_move_outranks_its_calendar_file(world):
    """RFC 5546: a CANCEL must carry a higher SEQUENCE than the PUBLISH it replaces, even
    twenty seconds after it."""
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    _move(booking, start + timedelta(days=1))
    on_booking_rescheduled(booking, old_start=start)
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(seconds=20), tick=False):
        db.session.get(IndividualBooking, booking).status = "CANCELLED"
        on_booking_cancelled(booking, by="patient")
        db.session.commit()
    [moved] = _patient_mails("Rescheduled%")
    [cancelled] = _patient_mails("Cancelled%")
    assert _sequence(cancelled) > _sequence(moved)


def test_a_reminder_retried_after_its_doctor_left_the_booking_is_withdrawn(
    world, smtp_server, outage
):
    """The 24 h reminder's mails meet an outage; the visit is then rescheduled to the other
    doctor alone, at the same start. The retry after the outage must not remind the
    doctor who is no longer on the visit (booking confirmed, start unchanged and ahead:
    that was all the check asked); the doctor still on it is reminded."""
    from portal.catalog.models import Provider
    from portal.notify.reminders import retime_reminders

    start = NOW + timedelta(days=2)
    booking = make_booking(world, start, providers=world.doctors)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    with time_machine.travel(start - timedelta(hours=23, minutes=50), tick=False):
        item = db.session.get(IndividualBooking, booking)
        item.providers = [db.session.get(Provider, world.doctors[1])]
        retime_reminders(booking)
        db.session.commit()
    outage.end()
    with time_machine.travel(start - timedelta(hours=23), tick=False):
        jobs.sweep_outbox()
    assert [m["Subject"] for m in smtp_server.to("doc1@example.com")] == []
    assert [m["Subject"] for m in smtp_server.to("doc2@example.com")] == [
        "Reminder: Priya Patient tomorrow"
    ]
    db.session.expire_all()
    [left] = db.session.scalars(
        sa.select(Delivery).where(
            Delivery.reminder_id.is_not(None), Delivery.recipient == "doc1@example.com"
        )
    ).all()
    assert (left.status, left.error) == ("withdrawn", "withdrawn: no longer on the booking")
