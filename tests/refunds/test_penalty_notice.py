"""A provider's cancellation penalty is told to the provider (review finding: a doctor's
notices were all about appointments; the penalty taken from their payable balance was
seen only on the Earnings page): in the app and by mail, once per cancellation, linking
to the Earnings page."""

import sqlalchemy as sa

from portal.catalog.models import Provider
from portal.extensions import db
from portal.notify import payout_notices
from portal.notify.models import Notification
from portal.refunds.models import Cancellation
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_admin_cancel, quoted_provider_cancel

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST


def _penalties(user_id):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == user_id, Notification.kind == "payout.penalty"
        )
    ).all()


def _booked(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    doctor = db.session.get(Provider, world.doctors[0])
    return visit.items[0], db.session.get(type(patient), doctor.user_id)


def test_a_providers_cancellation_penalty_is_told_once(world, users, gateway, clock):
    item, doctor = _booked(world, users, gateway)
    clock.move_to(START - hours(30))
    done = quoted_provider_cancel(doctor, item.id, "Emergency surgery")
    assert done.penalty == 25_000
    (notice,) = _penalties(doctor.id)
    assert notice.link == "/provider/earnings"
    assert notice.title == "Cancellation penalty of ₹250"
    assert notice.body.startswith("A penalty of ₹250 for cancelling ")
    assert f"(visit {item.visit.number})" in notice.body
    assert notice.body.endswith("was taken from your payable balance.")
    assert notice.dedupe_key == f"penalty-charged:{done.id}"
    payout_notices.penalty_charged(done.id)  # the job again: nothing more
    db.session.commit()
    assert len(_penalties(doctor.id)) == 1


def test_a_cancellation_without_a_penalty_tells_none(world, users, gateway, clock):
    item, doctor = _booked(world, users, gateway)
    clock.move_to(START - hours(2))
    quoted_admin_cancel(users(world.admin), item.id, "Clinic closed", mode="clinic")
    assert db.session.scalars(sa.select(Cancellation)).one().penalty == 0
    assert _penalties(doctor.id) == []
