"""A reminder's mail or text retried through an outage says the time left when it goes,
not when it was first worded (review F): retried on the outbox's own backoff (30 s x
4^n), the 24 h reminder's "tomorrow" reached the patient at 04:00 on the appointment's
day and the 1 h reminder's "in 1 hour" 17 minutes before the start. Now each attempt
words it again when the time left reads otherwise (mail subject, text and HTML, and the
text message; in the reader's language), and an earlier reminder whose later one is due
is withdrawn as superseded rather than sent beside it."""

from datetime import timedelta

import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.accounts.models import User
from portal.extensions import db
from portal.notify.models import Delivery, MailMessage, Reminder
from portal.notify.reminders import schedule_reminders
from portal.outbox import OutboxItem
from tests.notify.factories import NOW, make_booking
from tests.notify.test_stale_messages import PATIENT_MAIL, DownSender, outage  # noqa: F401


def _due_notify_items():
    db.session.expire_all()
    return db.session.scalars(
        sa.select(OutboxItem).where(
            OutboxItem.done_at.is_(None),
            OutboxItem.job.in_(("notify.send_mail", "notify.send_text")),
        )
    ).all()


def _retry_on_schedule(until, outage, outage_ends):
    """Run the outbox at each retry's own time (its backoff), the outage ending at
    ``outage_ends``, up to ``until``. Returns the moments the sweep ran."""
    moments = []
    while True:
        items = _due_notify_items()
        if not items:
            return moments
        nxt = min(i.run_after for i in items)
        if nxt > until:
            return moments
        if nxt >= outage_ends:
            outage.end()
        with time_machine.travel(nxt + timedelta(seconds=1), tick=False):
            jobs.sweep_outbox()
        moments.append(nxt)


def _patient_reminder_mails(smtp_server):
    return [
        m for m in smtp_server.to(PATIENT_MAIL) if m["Subject"].startswith(("Remind", "रिमाइंडर"))
    ]


def _patient_deliveries(channel):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Delivery).where(
            Delivery.reminder_id.is_not(None),
            Delivery.channel == channel,
            Delivery.recipient.in_((PATIENT_MAIL, "+919812345678")),
        )
    ).all()


def _html(mail):
    return mail.get_body(("html",)).get_content()


def _24h_reminder_retried_into_the_day(world, outage):
    """Wednesday 08:00 IST appointment; the 24 h reminder (Tuesday 08:00) meets a mail and
    SMS outage that ends Tuesday 23:00; its retry on the backoff comes about 03:54
    Wednesday. Returns the moment of that retry."""
    start = NOW + timedelta(days=2)  # Wednesday 3 June 2026, 08:00 IST
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    moments = _retry_on_schedule(
        until=start - timedelta(hours=2),
        outage=outage,
        outage_ends=start - timedelta(hours=9),  # Tuesday 23:00 IST
    )
    assert start - timedelta(hours=9) < moments[-1] < start - timedelta(hours=2)
    return start - moments[-1]


def test_a_24h_reminder_retried_into_the_appointments_day_says_the_hours_left(
    world, smtp_server, outage
):
    left = _24h_reminder_retried_into_the_day(world, outage)
    assert timedelta(hours=3, minutes=30) < left < timedelta(hours=4, minutes=30)
    [mail] = _patient_reminder_mails(smtp_server)
    assert mail["Subject"] == "Reminder: Consultation in 4 hours"
    assert "<h1>Reminder: Consultation in 4 hours</h1>" in _html(mail)
    assert "tomorrow" not in mail.get_body(("plain",)).get_content() + _html(mail)
    [text] = DownSender.sent
    assert text.startswith("Reminder: Consultation in 4 hours\n") and "tomorrow" not in text
    # What was sent is what the records keep.
    [mail_delivery] = _patient_deliveries("email")
    [sms_delivery] = _patient_deliveries("sms")
    assert (mail_delivery.status, sms_delivery.status) == ("sent", "sent")
    assert db.session.get(MailMessage, mail_delivery.mail_id).subject == mail["Subject"]
    assert sms_delivery.text == text


def test_the_words_of_a_retried_reminder_are_in_the_readers_language(world, smtp_server, outage):
    db.session.get(User, world.patient).language = "hi"
    db.session.commit()
    _24h_reminder_retried_into_the_day(world, outage)
    [mail] = _patient_reminder_mails(smtp_server)
    assert "4 घंटे में" in mail["Subject"] and "कल" not in mail["Subject"], mail["Subject"]
    assert "4 घंटे में" in _html(mail)
    [text] = DownSender.sent
    assert text.split("\n")[0] == mail["Subject"]


def test_a_1h_reminder_retried_17_minutes_before_the_start_says_the_minutes_left(
    world, smtp_server, outage
):
    """The 1 h reminder meets an outage of 40 minutes; its retry on the backoff comes
    about 17 minutes before the start (the 15 min reminder not due yet): it goes, saying
    the minutes left (to the nearest 5: "in 15 minutes"), not "in 1 hour". The 15 min
    reminder still comes at its time (docs/notifications.md: a true reminder rather than
    none; withdrawn only when the later one is due)."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    # The 24 h reminder is history: only the 1 h and 15 min stand.
    db.session.execute(
        sa.update(Reminder).where(Reminder.offset_key == "24h").values(status="WITHDRAWN")
    )
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    moments = _retry_on_schedule(
        until=start - timedelta(minutes=16),
        outage=outage,
        outage_ends=start - timedelta(minutes=20),
    )
    assert start - timedelta(minutes=20) < moments[-1] < start - timedelta(minutes=15)
    [mail] = _patient_reminder_mails(smtp_server)
    assert mail["Subject"] == "Reminder: Consultation in 15 minutes", moments[-1] - start
    [text] = DownSender.sent
    assert text.startswith("Reminder: Consultation in 15 minutes\n")


def test_a_1h_reminder_retried_when_the_15_min_one_is_due_is_withdrawn_as_superseded(
    world, smtp_server, outage
):
    """The outage ends after the 15 min reminder's time, before the scheduler's tick sends
    it: the 1 h retry would say "in 15 minutes" and the 15 min reminder the same a moment
    later. The earlier one is withdrawn; the later one goes, once."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.execute(
        sa.update(Reminder).where(Reminder.offset_key == "24h").values(status="WITHDRAWN")
    )
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        jobs.run_periodic("notify.send_due_reminders")
    outage.end()
    with time_machine.travel(start - timedelta(minutes=14, seconds=30), tick=False):
        jobs.sweep_outbox()  # the 15 min reminder due, still pending
        assert _patient_reminder_mails(smtp_server) == [] and DownSender.sent == []
        jobs.run_periodic("notify.send_due_reminders")
    assert [m["Subject"] for m in _patient_reminder_mails(smtp_server)] == [
        "Reminder: Consultation in 15 minutes"
    ]
    assert len(DownSender.sent) == 1 and "in 15 minutes" in DownSender.sent[0]
    outcomes = {
        (d.status, d.error) for d in _patient_deliveries("email") + _patient_deliveries("sms")
    }
    assert outcomes == {("sent", None), ("withdrawn", "withdrawn: superseded by the 15m reminder")}
