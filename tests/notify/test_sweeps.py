"""Expiry sweeps with the clock moved: unpaid holds (the booking capability's sweep),
payment links past expiry (marked, patient told, a new link issued while the start is
ahead), and the no-show and not-completed flags at end + 2 h. Payment links go to the
sandbox mounted in the app (called in-process, the suite's default)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.accounts.models import User
from portal.booking import links, visits
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from portal.notify.models import NO_SHOW, NOT_COMPLETED, AttentionFlag, Notification
from portal.payments.models import Payment
from tests.booking.factories import NOW as BOOKING_NOW
from tests.booking.factories import at
from tests.booking.factories import build_world as build_booking_world
from tests.notify.factories import NOW, make_booking


def _tick(name, at_time):
    with time_machine.travel(at_time, tick=False):
        return jobs.run_periodic(name)


def _notices(user_id, kind=None):
    db.session.expire_all()
    query = sa.select(Notification).where(Notification.user_id == user_id)
    if kind:
        query = query.where(Notification.kind == kind)
    return db.session.scalars(query.order_by(Notification.id)).all()


# --- no-shows ----------------------------------------------------------------------------------


def test_confirmed_booking_never_started_is_flagged_at_end_plus_two_hours(world):
    start = NOW + timedelta(hours=3)
    booking = make_booking(world, start)  # ends at start + 30 min
    end = start + timedelta(minutes=30)
    assert _tick("notify.flag_no_shows", end + timedelta(hours=1, minutes=59)) == 0
    assert _tick("notify.flag_no_shows", end + timedelta(hours=2)) == 1
    assert _tick("notify.flag_no_shows", end + timedelta(hours=3)) == 0  # once
    [flag] = db.session.scalars(sa.select(AttentionFlag)).all()
    assert (flag.booking_id, flag.kind, flag.resolved_at) == (booking, NO_SHOW, None)
    alerts = _notices(world.admin, "alert.NO_SHOW")
    assert len(alerts) == 1 and alerts[0].priority == "MEDIUM"
    assert "never started" in alerts[0].body


@pytest.mark.parametrize("status", ["STARTED", "COMPLETED", "CANCELLED"])
def test_started_completed_or_cancelled_bookings_are_not_flagged(world, status):
    start = NOW + timedelta(hours=1)
    booking = make_booking(world, start)
    db.session.get(IndividualBooking, booking).status = status
    db.session.commit()
    assert _tick("notify.flag_no_shows", start + timedelta(hours=5)) == 0


def test_flag_can_be_resolved(world):
    from portal.notify.sweeps import open_flags, resolve_flag

    start = NOW + timedelta(hours=1)
    make_booking(world, start)
    _tick("notify.flag_no_shows", start + timedelta(hours=3))
    [flag] = open_flags(NO_SHOW)
    resolve_flag(db.session.get(User, world.admin), flag.id, "Patient came late, seen")
    db.session.commit()
    assert open_flags() == []


# --- started, never completed -------------------------------------------------------------------


def test_started_booking_never_completed_is_flagged_at_end_plus_two_hours(world):
    """Left STARTED, a booking's fee is never earned and its visit never closes: the same
    grace as a no-show, then one flag and one alert (it was a known gap: never flagged)."""
    start = NOW + timedelta(hours=3)
    booking = make_booking(world, start, status="STARTED")
    end = start + timedelta(minutes=30)
    assert _tick("notify.flag_not_completed", end + timedelta(hours=1, minutes=59)) == 0
    assert _tick("notify.flag_not_completed", end + timedelta(hours=2)) == 1
    assert _tick("notify.flag_not_completed", end + timedelta(hours=3)) == 0  # once
    assert _tick("notify.flag_no_shows", end + timedelta(hours=3)) == 0  # it was started
    [flag] = db.session.scalars(sa.select(AttentionFlag)).all()
    assert (flag.booking_id, flag.kind, flag.resolved_at) == (booking, NOT_COMPLETED, None)
    alerts = _notices(world.admin, "alert.NOT_COMPLETED")
    assert len(alerts) == 1 and alerts[0].priority == "MEDIUM"
    assert "never marked completed" in alerts[0].body
    assert alerts[0].link.endswith(f"/admin/visits/{flag.visit_id}")


@pytest.mark.parametrize("status", ["CONFIRMED", "COMPLETED", "CANCELLED"])
def test_only_started_bookings_are_flagged_not_completed(world, status):
    start = NOW + timedelta(hours=1)
    make_booking(world, start, status=status)
    assert _tick("notify.flag_not_completed", start + timedelta(hours=5)) == 0
    assert (
        db.session.scalars(
            sa.select(AttentionFlag).where(AttentionFlag.kind == NOT_COMPLETED)
        ).all()
        == []
    )


def test_a_not_completed_flag_is_resolved_with_a_note(world):
    from portal.notify.sweeps import open_flags, resolve_flag

    start = NOW + timedelta(hours=1)
    make_booking(world, start, status="STARTED")
    _tick("notify.flag_not_completed", start + timedelta(hours=3))
    [flag] = open_flags(NOT_COMPLETED)
    resolve_flag(db.session.get(User, world.admin), flag.id, "Visit abandoned; refund agreed")
    db.session.commit()
    assert open_flags() == []
    # Resolved, it is not raised again while the booking stays STARTED.
    assert _tick("notify.flag_not_completed", start + timedelta(hours=6)) == 0


# --- holds and payment links (the booking capability's services, the sandbox gateway) -------


@pytest.fixture
def booking_world(app, ctx):
    with time_machine.travel(BOOKING_NOW, tick=False):
        world = build_booking_world(tag="-n")
    return world


def _hold(world, start, patient=0):
    actor = db.session.get(User, world.admin)
    return visits.add_item(
        actor,
        patient_id=world.patients[patient],
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )


def test_unpaid_hold_expires_and_frees_the_slot(booking_world):
    """The booking capability's ``booking.expire_holds`` is periodic work on the schedule:
    15 minutes after an unpaid hold, the items expire and the slot can be taken again."""
    assert "booking.expire_holds" in jobs.PERIODIC
    start = at(1, 10)
    with time_machine.travel(BOOKING_NOW, tick=False):
        item = _hold(booking_world, start)
        item_id = item.id
    assert _tick("booking.expire_holds", BOOKING_NOW + timedelta(minutes=14)) == 0
    assert _tick("booking.expire_holds", BOOKING_NOW + timedelta(minutes=16)) == 1
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item_id).status == "EXPIRED"
    with time_machine.travel(BOOKING_NOW + timedelta(minutes=17), tick=False):
        again = _hold(booking_world, start, patient=1)  # same slot, free again
        assert again.status == "SCHEDULED"


def test_expired_payment_link_is_replaced_while_the_start_is_ahead(booking_world):
    admin = db.session.get(User, booking_world.admin)
    start = at(2, 10)  # Wednesday 10:00 IST
    with time_machine.travel(BOOKING_NOW, tick=False):
        item = _hold(booking_world, start)
        visit_id = item.master_id
        first = links.create_payment_link(admin, visit_id)
        first_id, first_expiry = first.id, first.expires_at
    assert first_expiry == BOOKING_NOW + timedelta(hours=24)
    patient = booking_world.patients[0]
    # Not yet expired: nothing happens.
    assert _tick("booking.expire_payment_links", first_expiry - timedelta(minutes=1)) == 0
    # Expired: marked, patient told, a new link made and sent. The sweep runs before the
    # hold sweep would (see docs/notifications.md "Wiring").
    assert _tick("booking.expire_payment_links", first_expiry + timedelta(minutes=1)) == 1
    db.session.expire_all()
    old = db.session.get(Payment, first_id)
    assert old.status == "EXPIRED"
    assert "link.expired" in [a.event for a in old.attempts]
    visit = db.session.get(MasterBooking, visit_id)
    [new] = [p for p in visit.payments if p.status == "PENDING"]
    assert new.kind == "LINK" and new.link_url and new.id != first_id
    assert new.expires_at == start - timedelta(hours=2)  # min(now + 24 h, start − 2 h)
    assert visit.hold_expires_at == new.expires_at and visit.attention == "LINK_EXPIRED"
    assert db.session.get(IndividualBooking, item.id).status == "SCHEDULED"
    kinds = [n.kind for n in _notices(patient)]
    assert kinds == ["payment.link_expired", "payment.link_new"]
    [mail_notice] = _notices(patient, "payment.link_new")
    assert new.link_url in mail_notice.body
    from portal.notify.models import MailMessage

    [mail] = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.subject.like("New payment link%"))
    ).all()
    assert new.link_url in mail.text and mail.to == "patient-n1@example.com"
    # Admins hear of it through the visit's LINK_EXPIRED attention (the booking
    # capability's notify.payment_attention job → notify.tasks.on_payment_attention).
    # Running the sweep again changes nothing.
    assert _tick("booking.expire_payment_links", first_expiry + timedelta(minutes=2)) == 0

    # The second link expires 2 h before the start: too late for another one, so the visit
    # lapses and its slot is freed.
    second_expiry = new.expires_at
    assert _tick("booking.expire_payment_links", second_expiry + timedelta(minutes=1)) == 1
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).status == "EXPIRED"
    assert [p.status for p in db.session.get(MasterBooking, visit_id).payments] == [
        "EXPIRED",
        "EXPIRED",
    ]
    assert _notices(patient)[-1].title.startswith("Payment link expired")
    assert "lapsed" in _notices(patient)[-1].body


def test_expired_link_when_the_start_is_too_close_lapses_at_once(booking_world):
    admin = db.session.get(User, booking_world.admin)
    start = at(0, 12)  # today 12:00 IST: link expiry = start − 2 h = 10:00
    with time_machine.travel(BOOKING_NOW, tick=False):
        item = _hold(booking_world, start)
        link = links.create_payment_link(admin, item.master_id)
        expiry = link.expires_at
    assert _tick("booking.expire_payment_links", expiry + timedelta(seconds=30)) == 1
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item.id).status == "EXPIRED"
    assert len(db.session.get(MasterBooking, item.master_id).payments) == 1
