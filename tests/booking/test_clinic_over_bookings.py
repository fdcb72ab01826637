"""A clinic's deactivation, or its opening hours narrowed, over the live bookings ahead
there is refused until each patient has been told (the booking cancelled with a full
refund, or moved): no patient comes to a closed clinic (docs/decisions.md; it was a known
gap: nothing refused it)."""

from datetime import time, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.audit.models import AuditEntry
from portal.booking import visits
from portal.booking.models import MasterBooking
from portal.catalog.checks import ValidationError
from portal.catalog.clinics import update_clinic
from portal.catalog.models import Clinic
from portal.extensions import db
from tests.booking.factories import NOW, at, held_consult, quoted_desk_payment
from tests.refunds.helpers import quoted_admin_cancel

WEEK = {d: (time(9), time(18)) for d in range(5)}


def _booked(world, users, day=1, hour=10, patient=0, doctor=0):
    """A booking paid at the desk: what the refusal counts as a booking (a hold is named
    apart)."""
    item = held_consult(world, day, hour, patient=patient, doctor=doctor)
    quoted_desk_payment(users(world.admin), item.master_id, f"R-{item.id}")
    return item


def _number(item):
    return db.session.get(MasterBooking, item.master_id).number


def _clinic(world):
    db.session.expire_all()
    return db.session.get(Clinic, world.clinic)


def _audits():
    return db.session.scalar(
        sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "clinic.update")
    )


def test_a_clinic_with_a_booking_ahead_is_not_deactivated_until_it_is_handled(world, users):
    """The gap: the clinic was deactivated under a confirmed appointment (and a hold), and
    the patients were left booked at a closed clinic. Now refused, naming the booking."""
    admin = users(world.admin)
    held = _booked(world, users, day=3, hour=11)
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, active=False)
    assert exc.value.errors["active"] == (
        f"There is 1 booking ahead at this clinic (Thu 04 Jun 2026, 11:00, visit "
        f"{_number(held)}). Cancel it first (the patient is refunded in full; moving it would "
        "keep this clinic), then deactivate the clinic."
    )
    assert _clinic(world).active is True and _audits() == 0
    # A confirmed one (paid at the desk) too, with the other doctor; the list is in time.
    paid = _booked(world, users, day=2, hour=15, patient=1, doctor=1)
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, active=False, name="Indiranagar Clinic (old)")
    assert exc.value.errors["active"].startswith(
        f"There are 2 bookings ahead at this clinic (Wed 03 Jun 2026, 15:00, visit "
        f"{_number(paid)}; Thu 04 Jun 2026, 11:00, visit {_number(held)}). Cancel them first"
    )
    clinic = _clinic(world)
    assert (clinic.active, clinic.name) == (True, "Indiranagar Clinic") and _audits() == 0
    # Another clinic with nothing booked there is deactivated.
    other = db.session.scalar(sa.select(Clinic.id).where(Clinic.id != world.clinic))
    update_clinic(admin, other, active=False)
    assert db.session.get(Clinic, other).active is False


def test_a_cancelled_booking_or_one_already_over_leaves_the_clinic_free_to_close(world, users):
    admin = users(world.admin)
    gone = held_consult(world, 1, 10)
    visits.remove_item(users(world.patients[0]), gone.id)  # the unpaid hold given up
    paid = held_consult(world, 1, 12, patient=1)
    quoted_desk_payment(admin, paid.master_id, "R-1")

    quoted_admin_cancel(admin, paid.id, "Clinic closing", mode="clinic")
    update_clinic(admin, world.clinic, active=False)
    assert _clinic(world).active is False


def test_a_booking_that_has_ended_or_a_hold_run_out_does_not_count(world, users, clock):
    admin = users(world.admin)
    earlier = held_consult(world, 1, 10)  # Tuesday 10:00–10:30
    quoted_desk_payment(admin, earlier.master_id, "R-1")
    held_consult(world, 1, 11, patient=1)  # a hold: 15 minutes to pay
    clock.move_to(at(1, 10, 30) + timedelta(seconds=1))  # the first has ended
    update_clinic(users(world.admin), world.clinic, active=False)
    assert _clinic(world).active is False


def test_opening_hours_narrowed_over_a_booking_are_refused_and_around_it_saved(world, users):
    """Tuesdays from 12 would leave the Tuesday 10:00 booking outside the clinic's hours:
    refused above the hours; Tuesdays until 11 (the booking inside) and other days changed
    are saved."""
    admin = users(world.admin)
    item = _booked(world, users, day=1, hour=10)  # Tuesday 2 June, 10:00–10:30
    later = {**WEEK, 1: (time(12), time(18))}
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, hours=later, name="Renamed")
    assert exc.value.errors["hours"] == (
        f"There is 1 booking ahead at this clinic outside the new opening hours (Tue 02 Jun "
        f"2026, 10:00, visit {_number(item)}). Cancel or move it first (a cancelled patient is "
        "refunded in full), then change the hours."
    )
    clinic = _clinic(world)
    assert (clinic.business_hours(), clinic.name) == (WEEK, "Indiranagar Clinic")
    with pytest.raises(ValidationError) as closed_tuesdays:
        update_clinic(admin, world.clinic, hours={d: h for d, h in WEEK.items() if d != 1})
    assert "outside the new opening hours" in closed_tuesdays.value.errors["hours"]
    with pytest.raises(ValidationError) as closing_early:  # before the booking ends
        update_clinic(admin, world.clinic, hours={**WEEK, 1: (time(9), time(10, 15))})
    assert "outside the new opening hours" in closing_early.value.errors["hours"]
    assert _audits() == 0
    kept = {**WEEK, 1: (time(10), time(10, 30)), 0: (time(12), time(13)), 5: (time(9), time(12))}
    update_clinic(admin, world.clinic, hours=kept)
    assert _clinic(world).business_hours() == kept and _audits() == 1


def test_a_new_time_zone_that_moves_a_booking_out_of_the_hours_is_refused(world, users):
    """Review rev4: the hours untouched, the refusal spoke of "the new opening hours …
    then change the hours", at the form's top: it is said of the time zone, beside it."""
    item = _booked(world, users, day=1, hour=10)  # 10:00 in India: 08:30 in Dubai, before 09:00
    with pytest.raises(ValidationError) as exc:
        update_clinic(users(world.admin), world.clinic, timezone="Asia/Dubai")
    assert set(exc.value.errors) == {"timezone"}
    assert exc.value.errors["timezone"] == (
        "There is 1 booking ahead at this clinic that the new time zone leaves outside the "
        f"opening hours (Tue 02 Jun 2026, 10:00, visit {_number(item)}). Cancel or move it "
        "first (a cancelled patient is refunded in full), then change the time zone."
    )
    assert _clinic(world).timezone == "Asia/Kolkata"


def test_new_hours_and_a_new_time_zone_together_are_refused_on_the_hours(world, users):
    _booked(world, users, day=1, hour=10)
    with pytest.raises(ValidationError) as exc:
        update_clinic(
            users(world.admin),
            world.clinic,
            timezone="Asia/Dubai",
            hours={**WEEK, 1: (time(9), time(17))},
        )
    assert "outside the new opening hours" in exc.value.errors["hours"]


def test_the_refusal_counts_every_booking_and_lists_the_first_three(world, users):
    admin = users(world.admin)
    items = [_booked(world, users, day=d, hour=10, patient=d % 3) for d in (1, 8, 15, 22)]
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, hours={**WEEK, 1: (time(11), time(18))})
    numbers = [_number(i) for i in items]
    assert exc.value.errors["hours"] == (
        "There are 4 bookings ahead at this clinic outside the new opening hours (Tue 02 Jun "
        f"2026, 10:00, visit {numbers[0]}; Tue 09 Jun 2026, 10:00, visit {numbers[1]}; Tue 16 "
        f"Jun 2026, 10:00, visit {numbers[2]}; …). Cancel or move them first (a cancelled "
        "patient is refunded in full), then change the hours."
    )


def test_a_booking_already_outside_the_old_hours_is_not_this_changes_doing(world, users):
    """A booking left outside by an edit made before the rule (written here by hand) does
    not block every later change of the hours: only the bookings a change removes count."""
    from portal.catalog.models import ClinicHours

    held_consult(world, 1, 10)
    tuesday = db.session.scalar(
        sa.select(ClinicHours).where(
            ClinicHours.clinic_id == world.clinic, ClinicHours.weekday == 1
        )
    )
    tuesday.opens = time(12)
    db.session.commit()
    hours = {**WEEK, 1: (time(12), time(17))}
    update_clinic(users(world.admin), world.clinic, hours=hours)
    assert _clinic(world).business_hours() == hours


def test_a_closed_clinic_is_not_offered_nor_its_hours_outside_its_opening(world, users):
    """The patient's find page and day's times read the clinic's state: a deactivated
    clinic is not offered, and narrowed opening hours cut the provider's weekly hours."""
    from portal.catalog import slots
    from portal.catalog.models import Provider, Service

    admin = users(world.admin)
    update_clinic(admin, world.clinic, hours={**WEEK, 1: (time(14), time(16))})
    doctor = db.session.get(Provider, world.doctors[0])
    service = db.session.get(Service, world.consult)
    tuesday = (NOW + timedelta(days=1)).date()
    free = slots.next_free_slots(doctor, service, _clinic(world), tuesday, days=1, limit=None)
    assert [s.astimezone(NOW.tzinfo).strftime("%H:%M") for s in free] == [
        "14:00",
        "14:30",
        "15:00",
        "15:30",
    ]
    update_clinic(admin, world.clinic, active=False)
    assert world.doctors[0] not in {p.id for p in slots.search_providers(clinic_id=world.clinic)}
    offers = slots.find_offers([doctor], from_date=tuesday, days=1)
    assert offers[doctor.id] == []
    with time_machine.travel(NOW, tick=False):
        assert slots.check_booking_slot([doctor], service, _clinic(world), at(1, 14)) == [
            slots.slot_rules.MSG_SERVICE_UNAVAILABLE
        ]


# --- unpaid holds: named apart, with when they lapse (as a provider's refusal) -------------


def test_a_clinic_over_a_booking_and_a_hold_counts_the_booking_and_names_the_hold(world, users):
    """Review finding (the provider's refusals; the clinic's share the count): a hold is
    only greyed on the provider's schedule and lapses by itself unless paid, so it is not
    counted as a booking to cancel. It still refuses the change, named apart with its
    visit and when it lapses (review: it was said to be "on no schedule")."""
    admin = users(world.admin)
    paid = _booked(world, users, day=2, hour=15, patient=1, doctor=1)
    held = held_consult(world, 1, 10)  # 08:00 + 15 minutes to pay
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, active=False)
    assert exc.value.errors["active"] == (
        f"There is 1 booking ahead at this clinic (Wed 03 Jun 2026, 15:00, visit "
        f"{_number(paid)}). Cancel it first (the patient is refunded in full; moving it would "
        "keep this clinic), then deactivate the clinic. There is also 1 time held while a patient pays (Tue 02 "
        f"Jun 2026, 10:00, visit {_number(held)}), greyed on the provider's schedule; it lapses "
        "by itself at 08:15 unless paid."
    )
    assert _clinic(world).active is True and _audits() == 0


def test_a_clinic_over_a_booking_and_two_holds_says_whose_schedules(world, users, clock):
    """Re-read finding: the clinic's refusal said a hold was greyed on "the doctor's
    schedule" ("their doctors' schedules"), the provider refusals "the provider's": a lab's
    hold is on no doctor's. Now the providers' wording, singular (above) and plural."""
    admin = users(world.admin)
    paid = _booked(world, users, day=2, hour=15, patient=1, doctor=1)
    first = held_consult(world, 1, 10)
    clock.shift(timedelta(minutes=5))
    second = held_consult(world, 1, 11, patient=1)  # lapses 08:20
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, active=False)
    assert exc.value.errors["active"] == (
        f"There is 1 booking ahead at this clinic (Wed 03 Jun 2026, 15:00, visit "
        f"{_number(paid)}). Cancel it first (the patient is refunded in full; moving it would "
        "keep this clinic), then deactivate the clinic. There are also 2 times held while patients pay (Tue 02 "
        f"Jun 2026, 10:00, visit {_number(first)}; Tue 02 Jun 2026, 11:00, visit "
        f"{_number(second)}), greyed on their providers' schedules; each lapses by itself "
        "unless paid, the last at 08:20."
    )
    assert "doctor" not in exc.value.errors["active"]


def test_a_clinic_over_only_holds_says_to_wait_and_changes_once_they_lapse(world, users, clock):
    admin = users(world.admin)
    first = held_consult(world, 1, 10)
    clock.shift(timedelta(minutes=5))
    second = held_consult(world, 1, 11, patient=1)  # lapses 08:20
    later = {**WEEK, 1: (time(12), time(18))}
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, hours=later)
    assert exc.value.errors["hours"] == (
        "2 times at this clinic in the way of this change are held while they are paid for "
        f"(Tue 02 Jun 2026, 10:00, visit {_number(first)}; Tue 02 Jun 2026, 11:00, visit "
        f"{_number(second)}); the last hold lapses at 08:20. Try again after it."
    )
    clock.shift(timedelta(minutes=16))  # both lapsed, the sweep not run
    update_clinic(admin, world.clinic, hours=later)
    assert _clinic(world).business_hours() == later


BEGUN_ONE = (
    "too late to move: complete it first (or, if the patient never came, cancel it) on its "
    "visit's page, or {then} after it ends."
)


def test_the_clinics_refusals_count_begun_bookings_apart_with_what_an_admin_can_do(
    world, users, clock
):
    """Re-read finding: a clinic's deactivation, hours or time zone refused over bookings
    that had already begun told the admin to "cancel or move" them, which no one can (a
    reschedule only before the start, a started one not even cancelled). As the provider's
    refusals (``checks.admin_begun``), they are counted apart with what an admin can do, the
    counts together the clinic's; and the advice works."""
    from portal.payouts import completion

    admin = users(world.admin)
    started = _booked(world, users, day=0, hour=10)  # Mon 1 Jun, 10:00-10:30
    late = _booked(world, users, day=0, hour=12, patient=1)
    next_week = _booked(world, users, day=7, hour=10, patient=2)  # Mon 8 Jun
    clock.shift(timedelta(hours=2, minutes=5))  # 10:05
    completion.start_booking(admin, started.id)
    begun = f"1 more has already begun (Mon 01 Jun 2026, 10:00, visit {_number(started)}), "
    ahead = (
        f"(Mon 01 Jun 2026, 12:00, visit {_number(late)}; Mon 08 Jun 2026, 10:00, visit "
        f"{_number(next_week)})"
    )
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, active=False)
    assert exc.value.errors["active"] == (
        f"There are 2 bookings ahead at this clinic {ahead}. Cancel them first (each patient "
        "is refunded in full; moving them would keep this clinic), then deactivate the "
        "clinic. " + begun + BEGUN_ONE.format(then="deactivate the clinic")
    )
    with pytest.raises(ValidationError) as exc:  # Mondays closed
        update_clinic(admin, world.clinic, hours={d: h for d, h in WEEK.items() if d != 0})
    assert exc.value.errors["hours"] == (
        f"There are 2 bookings ahead at this clinic outside the new opening hours {ahead}. "
        "Cancel or move them first (a cancelled patient is refunded in full), then change "
        "the hours. " + begun + BEGUN_ONE.format(then="change the hours")
    )
    with pytest.raises(ValidationError) as exc:  # 10:00 in India: 08:30 in Dubai
        update_clinic(admin, world.clinic, timezone="Asia/Dubai")
    assert exc.value.errors["timezone"] == (
        "There is 1 booking ahead at this clinic that the new time zone leaves outside the "
        f"opening hours (Mon 08 Jun 2026, 10:00, visit {_number(next_week)}). Cancel or move "
        "it first (a cancelled patient is refunded in full), then change the time zone. "
        + begun
        + BEGUN_ONE.format(then="change the time zone")
    )
    # Completed, it is out of the way; next week's cancelled (a full refund).
    completion.complete_booking(admin, started.id)
    quoted_admin_cancel(admin, next_week.id, "Clinic closing", mode="clinic")
    # 12:10, the patient never came: begun, alone.
    clock.shift(timedelta(hours=2, minutes=5))
    with pytest.raises(ValidationError) as exc:
        update_clinic(admin, world.clinic, active=False)
    assert exc.value.errors["active"] == (
        "There is 1 booking at this clinic that has already begun (Mon 01 Jun 2026, 12:00, "
        f"visit {_number(late)}), " + BEGUN_ONE.format(then="deactivate the clinic")
    )
    assert _clinic(world).active is True and _audits() == 0
    quoted_admin_cancel(admin, late.id, "The patient never came", mode="patient")
    update_clinic(admin, world.clinic, active=False)
    assert _clinic(world).active is False
