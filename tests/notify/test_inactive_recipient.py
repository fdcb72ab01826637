"""An inactive account is sent nothing (docs/privacy.md), including what was waiting to
be sent when an administrator deactivated it (review rv_notify): the account's active
flag was read only when a message was written (``center._notify``), so a reminder's mail
and text retrying through an outage, or a notice's mail queued, still reached the
account once the outage ended. Now each attempt of a mail or a text to a user asks
again, and one to an account no longer active is withdrawn, "withdrawn: account
inactive", for good (a reactivation does not send it)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.accounts.models import User
from portal.accounts.service import ValidationError, deactivate_user, reactivate_user
from portal.extensions import db
from portal.notify import ops
from portal.notify.center import notify_user
from portal.notify.models import Delivery, MailMessage
from portal.notify.reminders import schedule_reminders
from portal.outbox import OutboxItem
from tests.notify.factories import NOW, make_booking
from tests.notify.test_stale_messages import (  # noqa: F401  (the outage fixture)
    PATIENT_MAIL,
    DownSender,
    _patient_reminder,
    outage,
)

INACTIVE = "withdrawn: account inactive"


def _admin(world):
    return db.session.get(User, world.admin)


def _deliveries_to(user_id, *channels):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Delivery).where(Delivery.user_id == user_id, Delivery.channel.in_(channels))
    ).all()


def test_a_deactivated_patients_retried_reminder_mail_and_text_are_withdrawn(
    world,
    smtp_server,
    outage,  # noqa: F811
):
    """The 24 h reminder's mail and text meet an outage; the patient's account is then
    deactivated. When the outage ends the retries mail and text nothing: both are
    withdrawn, and nothing is left for the outbox to retry. (An administrator's
    deactivation over the booking is refused now, ``booking.deactivation``; an account
    deactivated before that refusal existed may still hold one, so the flag is set here.)"""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    with time_machine.travel(start - timedelta(hours=24), tick=False):
        assert jobs.run_periodic("notify.send_due_reminders") == 2
    waiting = _patient_reminder("email") + _patient_reminder("sms")
    assert {d.status for d in waiting} == {"retrying"}
    with time_machine.travel(start - timedelta(hours=23, minutes=50), tick=False):
        with pytest.raises(ValidationError):
            deactivate_user(_admin(world), world.patient)
        db.session.rollback()
        db.session.get(User, world.patient).active = False
        db.session.commit()
    outage.end()
    with time_machine.travel(start - timedelta(hours=23), tick=False):
        jobs.sweep_outbox()

    assert [m["Subject"] for m in smtp_server.to(PATIENT_MAIL)] == []
    assert DownSender.sent == []
    [mail] = _patient_reminder("email")
    [text] = _patient_reminder("sms")
    assert (mail.status, mail.error) == ("withdrawn", INACTIVE)
    assert (text.status, text.error) == ("withdrawn", INACTIVE)
    assert db.session.get(MailMessage, mail.mail_id).status == "withdrawn"
    assert not db.session.scalars(
        sa.select(OutboxItem).where(OutboxItem.done_at.is_(None), OutboxItem.job.like("notify.%"))
    ).all()


@pytest.mark.parametrize("who", ["patient", "provider"])
def test_a_notice_queued_for_an_account_deactivated_before_it_left_is_withdrawn(
    world,
    smtp_server,
    outage,  # noqa: F811
    who,
):
    """Any notice's mail and text, not only a reminder's: queued during an outage (a
    cancellation notice to the patient; to a doctor, whose account an administrator
    deactivates with their profile), the account deactivated before the retry. Neither
    leaves; the in-app notice stays in the centre."""
    user_id = world.patient if who == "patient" else world.doctor_users[0]
    user = db.session.get(User, user_id)
    user.phone = "+919800000001"
    address = user.email
    notify_user(user_id, "booking.cancelled", "Cancelled: Consultation", "Body.", text="sms")
    db.session.commit()
    jobs.sweep_outbox()
    assert {d.status for d in _deliveries_to(user_id, "email", "sms")} == {"retrying"}
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        deactivate_user(_admin(world), user_id)
        db.session.commit()
    outage.end()
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        jobs.sweep_outbox()

    assert [m["Subject"] for m in smtp_server.to(address)] == []
    assert DownSender.sent == []
    sent = _deliveries_to(user_id, "email", "sms")
    assert {(d.channel, d.status, d.error) for d in sent} == {
        ("email", "withdrawn", INACTIVE),
        ("sms", "withdrawn", INACTIVE),
    }
    [in_app] = _deliveries_to(user_id, "in_app")
    assert in_app.status == "sent"


def test_the_admins_retry_for_an_inactive_account_withdraws_and_reactivation_sends_nothing(
    world,
    smtp_server,
    outage,  # noqa: F811
):
    """A notice's mail gave up (every attempt failed); an administrator then deactivated
    the account. "Retry now" on the jobs page withdraws it rather than mail it. Withdrawn
    is final: reactivating the account and retrying again sends nothing (the item is
    done), while a notice written after the reactivation is mailed as usual."""
    notify_user(world.patient, "booking.cancelled", "Cancelled: Consultation", "Body.")
    db.session.commit()
    jobs.sweep_outbox()
    [mail] = _deliveries_to(world.patient, "email")
    item = db.session.scalar(
        sa.select(OutboxItem).where(
            OutboxItem.job == "notify.send_mail",
            OutboxItem.payload["message_id"].as_integer() == mail.mail_id,
        )
    )
    item.attempts = jobs.MAX_ATTEMPTS
    mail.status = "failed"
    db.session.get(MailMessage, mail.mail_id).status = "failed"
    db.session.commit()
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        deactivate_user(_admin(world), world.patient)
        db.session.commit()
    outage.end()
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        outcome, _ = ops.retry_outbox_item(_admin(world), item.id)
        jobs.sweep_outbox()
    assert outcome in (ops.Outcome.HANDED, ops.Outcome.WAITING)
    assert smtp_server.to(PATIENT_MAIL) == []
    [mail] = _deliveries_to(world.patient, "email")
    assert (mail.status, mail.error) == ("withdrawn", INACTIVE)

    with time_machine.travel(NOW + timedelta(hours=3), tick=False):
        reactivate_user(_admin(world), world.patient)
        db.session.commit()
        outcome, _ = ops.retry_outbox_item(_admin(world), item.id)
        jobs.sweep_outbox()
        assert outcome == ops.Outcome.DONE
        [mail] = _deliveries_to(world.patient, "email")
        assert (mail.status, mail.error) == ("withdrawn", INACTIVE)

        notify_user(world.patient, "booking.confirmed", "Confirmed: Consultation", "Body.")
        db.session.commit()
        jobs.sweep_outbox()
    assert [m["Subject"] for m in smtp_server.to(PATIENT_MAIL)] == ["Confirmed: Consultation"]
