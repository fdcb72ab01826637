"""Statement budgets of the jobs every booking makes the worker run: the confirmation
(reminders, the patient's and each provider's notice and mail, the admins' alert) and the
mails it queues. Under load they are, with the webhooks (tests/payments/
test_webhook_budget.py), what the worker spends its time on (docs/performance.md, "No
follow-up backlog"). A new statement on this path fails here."""

from datetime import timedelta

import sqlalchemy as sa

from portal import jobs
from portal.booking.models import IndividualBooking
from portal.db import unit_of_work
from portal.extensions import db
from portal.notify.models import EMAIL, Delivery, MailMessage, Notification, Reminder
from portal.notify.reminders import schedule_reminders
from tests.notify.factories import NOW, make_booking
from tests.querycount import counted_queries

# The visit with its patient, items, their providers with their logins, services and
# clinics in one statement (booking.queries.visit_for_notice; lazy loads took six, and
# each person told was a look-up of their user row), the policy stamp; the reminders read
# and written (one INSERT for all six); per person told: the notice (one INSERT …
# RETURNING), its in-app delivery, and for the patient and the provider the mail and its
# delivery and outbox rows; the admins read once, then the NEW_BOOKING alert (in-app only)
# as one INSERT of every admin's notice and one of their deliveries, however many admins.
CONFIRMED_BUDGET = 17
# The message with its delivery (one statement), both marked sent.
SEND_MAIL_BUDGET = 3


def test_a_confirmation_job_stays_within_its_budget(world):
    booking = make_booking(world, NOW + timedelta(days=2))
    visit_id = db.session.get(IndividualBooking, booking).master_id
    db.session.expire_all()
    with unit_of_work(), counted_queries() as statements:
        jobs.JOBS["notify.booking_confirmed"](visit_id=visit_id)
        db.session.flush()  # its writes; the mails it queues run after the commit (inline)
    assert len(statements) == CONFIRMED_BUDGET, "\n".join(s.split("\n")[0] for s in statements)

    # It did all it is for: six reminders, a notice each for the patient, the provider and
    # both admins, and the two mails queued.
    assert db.session.scalar(sa.select(sa.func.count(Reminder.id))) == 6
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 4
    assert db.session.scalar(sa.select(sa.func.count(MailMessage.id))) == 2


def test_a_mail_job_stays_within_its_budget(world):
    # A queued mail as queue_mail leaves it, without the outbox row (which would run the job
    # at once here: the tests run jobs inline after the commit).
    message = MailMessage(to="patient@example.com", subject="Visit confirmed", text="Hello")
    db.session.add(message)
    db.session.flush()
    db.session.add(
        Delivery(mail_id=message.id, channel=EMAIL, recipient=message.to, kind="booking.confirmed")
    )
    db.session.commit()
    message_id = message.id
    db.session.expire_all()
    with unit_of_work(), counted_queries() as statements:
        jobs.JOBS["notify.send_mail"](message_id=message_id)
        db.session.flush()
    assert len(statements) == SEND_MAIL_BUDGET, "\n".join(s.split("\n")[0] for s in statements)
    db.session.expire_all()
    assert db.session.get(MailMessage, message_id).status == "logged"
    assert db.session.scalar(sa.select(Delivery.status)) == "sent"


def test_the_reminders_of_a_confirmation_are_one_insert(world):
    booking = make_booking(world, NOW + timedelta(days=2), providers=world.doctors)
    db.session.expire_all()
    with counted_queries() as statements:
        assert schedule_reminders(booking) == {"scheduled": 9, "withdrawn": 0}
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    # Scheduled again (a second worker at the same moment): nothing new, nothing counted.
    assert schedule_reminders(booking) == {"scheduled": 0, "withdrawn": 0}
    assert db.session.scalar(sa.select(sa.func.count(Reminder.id))) == 9
