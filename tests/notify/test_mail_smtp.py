"""Mail over real SMTP (aiosmtpd on loopback): recipients, text and HTML parts, the
calendar attachment, transient failures retried with backoff, permanent ones recorded."""

from datetime import timedelta

import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.db import utcnow
from portal.extensions import db
from portal.notify.center import notify_user
from portal.notify.mail import queue_mail
from portal.notify.models import Delivery, MailMessage
from portal.notify.tasks import on_booking_confirmed
from tests.notify.factories import NOW, make_booking


def test_notice_mail_reaches_the_smtp_server_with_text_and_html(world, smtp_server):
    notify_user(
        world.patient,
        "test",
        "Your report is ready",
        "Blood test results are in.",
        link="/me/visits/1",
    )
    db.session.commit()
    [message] = smtp_server.to("patient@example.com")
    assert smtp_server.messages[0]["to"] == ["patient@example.com"]
    assert message["Subject"] == "Your report is ready"
    assert message["Message-ID"].startswith("<mail-")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Priya Patient" in text and "Blood test results are in." in text
    assert "http://127.0.0.1:5000/me/visits/1" in text
    assert "<h1>Your report is ready</h1>" in html
    mail = db.session.scalar(sa.select(MailMessage))
    assert mail.status == "sent" and mail.attempts == 1 and mail.sent_at is not None
    delivery = db.session.scalar(sa.select(Delivery).where(Delivery.channel == "email"))
    assert (delivery.status, delivery.attempts, delivery.recipient) == (
        "sent",
        1,
        "patient@example.com",
    )
    # The attempt is stamped on the delivery, with the reference its Message-ID carries.
    assert delivery.provider_ref == f"mail-{mail.id}"
    assert delivery.sent_at is not None and delivery.updated_at >= delivery.sent_at


def test_html_is_escaped(world, smtp_server):
    notify_user(world.patient, "test", "Hi", "<script>alert(1)</script>")
    db.session.commit()
    [message] = smtp_server.to("patient@example.com")
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_confirmation_mail_carries_the_calendar_file(world, smtp_server):
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start, providers=world.doctors)
    from portal.booking.models import IndividualBooking

    visit_id = db.session.get(IndividualBooking, booking).master_id
    on_booking_confirmed(visit_id)
    db.session.commit()
    [message] = smtp_server.to("patient@example.com")
    assert "confirmed" in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename().endswith(".ics")
    ics = attachment.get_payload(decode=True).decode()
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.endswith("END:VCALENDAR\r\n")
    assert f"UID:booking-{booking}@127.0.0.1\r\n" in ics
    assert f"DTSTART:{start:%Y%m%dT%H%M%S}Z\r\n" in ics
    assert "Dr Doc 1\\, Dr Doc 2" in ics.replace("\r\n ", "")
    # The providers hear of it (in-app and mail), and so do the admins (in-app).
    assert len(smtp_server.to("doc1@example.com")) == 1
    assert len(smtp_server.to("doc2@example.com")) == 1


def test_server_down_is_retried_with_backoff_then_delivered(world, app, smtp_server):
    port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = 1  # nothing listens there
    try:
        message_id = queue_mail("someone@example.com", "Hello", "Body text")
        db.session.commit()
        db.session.expire_all()
        mail = db.session.get(MailMessage, message_id)
        delivery = db.session.scalar(sa.select(Delivery).where(Delivery.mail_id == mail.id))
        assert (mail.status, mail.attempts) == ("queued", 1)
        assert (delivery.status, delivery.attempts) == ("retrying", 1)
        assert "Connection refused" in delivery.error or "Errno" in delivery.error
    finally:
        app.config["MAIL_PORT"] = port
    assert jobs.sweep_outbox() == 0  # backing off
    with time_machine.travel(utcnow() + timedelta(minutes=1), tick=False):
        assert jobs.sweep_outbox() == 1
    db.session.expire_all()
    mail = db.session.get(MailMessage, message_id)
    delivery = db.session.scalar(sa.select(Delivery).where(Delivery.mail_id == mail.id))
    assert (mail.status, mail.attempts) == ("sent", 2)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(smtp_server.to("someone@example.com")) == 1


def test_permanently_refused_recipient_is_failed_not_retried(world, smtp_server):
    smtp_server.refuse["nobody@example.com"] = (550, "No such user")
    message_id = queue_mail("nobody@example.com", "Hello", "Body text")
    db.session.commit()
    db.session.expire_all()
    mail = db.session.get(MailMessage, message_id)
    delivery = db.session.scalar(sa.select(Delivery).where(Delivery.mail_id == mail.id))
    assert mail.status == "failed" and delivery.status == "failed"
    assert "550" in delivery.error and "550" in mail.last_error
    assert (mail.attempts, delivery.attempts) == (1, 1)
    assert mail.sent_at is None and delivery.sent_at is None
    from portal.outbox import OutboxItem

    item = db.session.scalar(sa.select(OutboxItem).where(OutboxItem.job == "notify.send_mail"))
    assert item.done_at is not None  # not retried
    assert smtp_server.messages == []
