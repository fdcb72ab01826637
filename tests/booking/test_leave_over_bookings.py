"""Leave over a provider's bookings is refused until each patient has been told (the
booking cancelled with a full refund, or moved): no patient comes to an absent provider.
An unpaid hold refuses it too, but is named apart (greyed on the doctor's schedule,
nothing to cancel: it lapses by itself unless paid): the refusal counts only the bookings."""

import re
from datetime import time

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from portal.booking import visits
from portal.catalog import availability
from portal.catalog.checks import FORM, ValidationError
from portal.catalog.models import Leave
from portal.extensions import db
from portal.web.filters import translate
from tests.booking.factories import IST, at, held_consult, quoted_desk_payment
from tests.refunds.helpers import quoted_admin_cancel


def _booked(world, users, day=1, hour=10, patient=0):
    """A paid booking (at the desk) with the first doctor: on their schedule."""
    item = held_consult(world, day, hour, patient=patient)
    quoted_desk_payment(users(world.admin), item.master_id, f"R-{item.id}")
    return item


def _leave_refused(world, users, day=1):
    """A whole day's leave (09:00–18:00 IST, as the form sends it) for the first doctor,
    asked by the admin and refused: what the form says at its start."""
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(
            users(world.admin),
            world.doctors[0],
            at(day, 9).astimezone(IST),
            at(day, 18).astimezone(IST),
        )
    return exc.value.errors["starts_at"]


def _leaves():
    return db.session.scalar(sa.select(sa.func.count(Leave.id)))


def test_leave_over_bookings_is_refused_with_the_first_booking_named(world, users):
    _booked(world, users, day=1, hour=10)
    _booked(world, users, day=1, hour=12)
    message = _leave_refused(world, users)
    assert message.startswith(
        "There are 2 bookings with this provider in this period, the first on Tue 02 Jun 2026,"
        " 10:00. Cancel or move them first"
    )
    assert message.endswith("then add the leave.")
    assert _leaves() == 0


def test_leave_beside_a_booking_and_after_its_cancellation_is_added(world, users):
    item = held_consult(world, 1, 10)
    admin = users(world.admin)
    # Ends when the booking starts (half-open periods): no clash.
    availability.add_leave(admin, world.doctors[0], at(1, 9), at(1, 10))
    # Another provider's leave over the same time: not this provider's booking.
    availability.add_leave(admin, world.doctors[1], at(1, 9), at(1, 18))
    assert _leaves() == 2
    with pytest.raises(ValidationError):
        availability.add_leave(admin, world.doctors[0], at(1, 10, 15), at(1, 11))
    visits.remove_item(users(world.patients[0]), item.id)  # the unpaid hold given up
    availability.add_leave(admin, world.doctors[0], at(1, 10), at(1, 18))
    assert _leaves() == 3


def test_a_provider_with_bookings_ahead_is_not_deactivated_until_they_are_handled(world, users):
    from portal.catalog.models import Provider
    from portal.catalog.providers import update_provider

    item = held_consult(world, 3, 11)
    admin = users(world.admin)
    with pytest.raises(ValidationError) as exc:
        update_provider(admin, world.doctors[0], active=False, registration_no="KMC-4242")
    # Only an unpaid hold (15 minutes from 08:00 to pay): nothing to cancel, wait for it.
    assert exc.value.errors["active"] == (
        "1 patient is paying for a time with this provider ahead; the hold lapses at 08:15."
        " Try again after it."
    )
    assert db.session.get(Provider, world.doctors[0]).active is True
    update_provider(
        admin, world.doctors[1], active=False, registration_no="KMC-4242"
    )  # nothing booked with them
    visits.remove_item(users(world.patients[0]), item.id)
    update_provider(admin, world.doctors[0], active=False, registration_no="KMC-4242")
    assert db.session.get(Provider, world.doctors[0]).active is False


def test_the_refusal_is_said_in_the_doctors_language(app, world, users):
    """The doctor's availability page is translated (docs/i18n.md): the refusal is a Text
    the page says in the reader's language, its day and month names with it."""
    _booked(world, users, day=3, hour=11)  # Thursday 4 June
    message = _leave_refused(world, users, day=3)
    with app.test_request_context(), force_locale("hi"):
        said = translate(message)
    assert said.startswith("इस अवधि में इस डॉक्टर या लैब के साथ 1 बुकिंग है, गुरु 04 जून 2026, 11:00 को।")


@pytest.mark.parametrize("what", ["leave", "deactivation", "hours", "edit"])
def test_a_leave_and_a_deactivation_check_under_the_lock_on_the_providers_time(
    world, users, monkeypatch, what
):
    """Review finding: a leave (or deactivation, or a change of weekly hours) and a hold at
    once could both win. The leave's check runs under the lock on the provider's time,
    which every hold takes (catalog.time_lock): on SQLite the process lock a hold holds
    from its check to its commit, on PostgreSQL the provider's advisory lock (and the
    claims' trigger; test_booking_postgres.py's races). Probed from another thread, as a
    hold would."""
    import threading

    import sqlalchemy as sa

    from portal.booking import claims
    from portal.catalog import providers
    from portal.catalog.time_lock import provider_subject
    from portal.db import SQLITE_LOCK as _SQLITE_LOCK

    module = providers if what == "deactivation" else availability
    real = module.bookings_in_the_way
    engine, subject = db.engine, provider_subject(world.doctors[0])
    postgres, seen = claims.is_postgres(), {}

    def try_the_lock():
        if postgres:
            with engine.connect() as other:
                seen["free"] = other.execute(
                    sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:s, 0))"),
                    {"s": subject},
                ).scalar()
                other.rollback()
            return
        seen["free"] = _SQLITE_LOCK.acquire(blocking=False)
        if seen["free"]:
            _SQLITE_LOCK.release()

    def check(*args, **kwargs):
        probe = threading.Thread(target=try_the_lock)
        probe.start()
        probe.join(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "bookings_in_the_way", check)
    admin = users(world.admin)
    if what == "leave":
        availability.add_leave(admin, world.doctors[0], at(1, 9), at(1, 18))
    elif what == "hours":
        availability.set_availability(admin, world.doctors[0], world.clinic, WEEK[:3])
    elif what == "edit":
        availability.change_availability(admin, _window(world.doctors[0], 1), time(12), time(18))
    else:
        providers.update_provider(admin, world.doctors[0], active=False, registration_no="KMC-4242")
    assert seen == {"free": False}


# --- weekly hours: removing or shortening them over bookings ahead ------------------------

WEEK = [(d, time(9), time(18)) for d in range(5)]  # the world's doctors: Mon–Fri 09–18


def _windows(provider_id):
    from portal.catalog.models import Availability

    return sorted(
        (w.weekday, w.start_time, w.end_time)
        for w in db.session.scalars(
            sa.select(Availability).where(Availability.provider_id == provider_id)
        )
    )


def _window(provider_id, weekday):
    from portal.catalog.models import Availability

    return db.session.scalar(
        sa.select(Availability).where(
            Availability.provider_id == provider_id, Availability.weekday == weekday
        )
    )


def test_weekly_hours_over_bookings_ahead_are_neither_removed_nor_shortened(world, users):
    """Review finding: a provider (or an admin) could remove or shorten weekly hours while
    held or paid appointments ahead fell in the hours removed, and the patients would come
    to a doctor who no longer works then. Refused as a leave is, naming the bookings."""
    _booked(world, users, day=1, hour=10)  # Tue 2 Jun
    _booked(world, users, day=1, hour=12)
    _booked(world, users, day=8, hour=16)  # Tue 9 Jun
    from portal.catalog.models import Provider

    admin = users(world.admin)
    doctor = users(db.session.get(Provider, world.doctors[0]).user_id)
    shortened = [w if w[0] != 1 else (1, time(9), time(11)) for w in WEEK]
    with pytest.raises(ValidationError) as exc:
        availability.set_availability(admin, world.doctors[0], world.clinic, shortened)
    assert exc.value.errors == {
        FORM: "There are 2 bookings with this provider in the hours being removed (Tue 02 Jun"
        " 2026, 12:00; Tue 09 Jun 2026, 16:00). Cancel or move them first (a cancelled patient"
        " is refunded in full), then change the hours."
    }
    with pytest.raises(ValidationError) as exc:  # the doctor removing their Tuesdays
        availability.remove_availability(doctor, _window(world.doctors[0], 1))
    assert exc.value.errors[FORM].startswith(
        "You have 3 appointments in the hours being removed (Tue 02 Jun 2026, 10:00; Tue 02"
        " Jun 2026, 12:00; Tue 09 Jun 2026, 16:00). Ask the clinic to move them"
    )
    assert _windows(world.doctors[0]) == WEEK
    # Hours that still hold every booking, or other days', or another doctor's: changed.
    split = [w for w in WEEK if w[0] != 1] + [(1, time(9), time(12)), (1, time(12), time(18))]
    availability.set_availability(admin, world.doctors[0], world.clinic, split)
    availability.remove_availability(admin, _window(world.doctors[0], 2))
    availability.remove_availability(admin, _window(world.doctors[1], 1))
    assert (1, time(9), time(12)) in _windows(world.doctors[0])
    assert 2 not in {w[0] for w in _windows(world.doctors[0])}


def test_a_window_narrowed_over_a_booking_is_refused_and_around_it_is_changed(world, users):
    """The doctor's edit of one window (change_availability): shortening Tuesdays 09–18 to
    09–10 takes the 12:00 booking's hours away, refused as a removal is and nothing
    changed; 10:00–13:00 would leave the 10:00 and 12:00 bookings inside and is changed."""
    _booked(world, users, day=1, hour=10)  # Tue 2 Jun, 10:00–10:30
    _booked(world, users, day=1, hour=12)
    from portal.catalog.models import Provider

    doctor = users(db.session.get(Provider, world.doctors[0]).user_id)
    window = _window(world.doctors[0], 1)
    with pytest.raises(ValidationError) as exc:
        availability.change_availability(doctor, window, time(9), time(10))
    assert exc.value.errors == {
        FORM: "You have 2 appointments in the hours being removed (Tue 02 Jun 2026, 10:00; Tue"
        " 02 Jun 2026, 12:00). Ask the clinic to move them, or cancel them from your schedule"
        " (each costs you a cancellation penalty, shown on the cancel page before you confirm)."
    }
    with pytest.raises(ValidationError) as exc:
        availability.change_availability(doctor, window.id, time(10, 30), time(18))
    assert exc.value.errors[FORM].startswith(
        "You have 1 appointment in the hours being removed, on Tue 02 Jun 2026, 10:00. Ask the"
        " clinic to move it"
    )
    assert _windows(world.doctors[0]) == WEEK
    availability.change_availability(doctor, window.id, time(10), time(13))
    assert (1, time(10), time(13)) in _windows(world.doctors[0])
    # Another doctor's Tuesday, with nothing booked: changed by an admin.
    availability.change_availability(
        users(world.admin), _window(world.doctors[1], 1), time(9), time(10)
    )
    assert (1, time(9), time(10)) in _windows(world.doctors[1])


def test_the_hours_refusal_counts_every_booking_and_lists_the_first_few(app, world, users):
    """Review finding: the list's "…" was followed by the sentence's full stop ("…." in
    English, "…।" in Hindi); the list now sits in brackets."""
    for day in (1, 8, 15, 22):  # four Tuesdays
        _booked(world, users, day=day, hour=10)
    with pytest.raises(ValidationError) as exc:
        availability.remove_availability(users(world.admin), _window(world.doctors[0], 1))
    message = exc.value.errors[FORM]
    assert message.startswith(
        "There are 4 bookings with this provider in the hours being removed (Tue 02 Jun 2026,"
        " 10:00; Tue 09 Jun 2026, 10:00; Tue 16 Jun 2026, 10:00; …). Cancel or move them first"
    )
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(message)
    assert "(मंगल 02 जून 2026, 10:00;" in hindi and "; …)। पहले" in hindi, hindi
    for said in (message, hindi):
        assert not re.search(r"…[.।]|[.।]{2}", said), said


def test_hours_over_a_booking_are_removed_once_it_is_given_up(world, users):
    item = held_consult(world, 1, 10)
    one = [w for w in WEEK if w[0] != 1]
    with pytest.raises(ValidationError) as exc:
        availability.set_availability(users(world.admin), world.doctors[0], world.clinic, one)
    assert exc.value.errors[FORM] == (
        "1 patient is paying for a time in the hours being removed; the hold lapses at 08:15."
        " Try again after it."
    )
    visits.remove_item(users(world.patients[0]), item.id)  # the unpaid hold given up
    availability.set_availability(users(world.admin), world.doctors[0], world.clinic, one)
    assert 1 not in {w[0] for w in _windows(world.doctors[0])}


def test_a_clinic_taken_from_a_provider_with_bookings_there_ahead_is_refused(app, world, users):
    """The provider's hours at a clinic they leave go with it (update_provider): refused
    the same way while bookings there are ahead, in words of its own (it said "in the hours
    being removed ... then change the hours" on a form that changes no hours)."""
    from portal.catalog.models import Clinic, Provider
    from portal.catalog.providers import update_provider

    item = _booked(world, users, day=3, hour=11)
    other = db.session.scalar(sa.select(Clinic.id).where(Clinic.id != world.clinic))
    admin = users(world.admin)
    with pytest.raises(ValidationError) as exc:
        update_provider(admin, world.doctors[0], clinic_ids=[other], registration_no="KMC-4242")
    # Its own words: no hours are being changed on the provider's form.
    message = exc.value.errors["clinic_ids"]
    assert message == (
        "There is 1 booking ahead with this provider at Indiranagar Clinic, on Thu 04 Jun 2026,"
        " 11:00. Cancel it first (the patient is refunded in full; moving it would keep this"
        " provider and clinic), then remove the clinic."
    )
    with app.test_request_context(), force_locale("hi"):
        assert translate(message) == (
            "Indiranagar Clinic में इस डॉक्टर या लैब के साथ आगे 1 बुकिंग है, गुरु 04 जून 2026, 11:00 को।"
            " पहले उसे रद्द करें (मरीज़ को पूरा पैसा लौटाया जाता है; समय बदलने पर भी वह इसी"
            " डॉक्टर या लैब और क्लिनिक में रहेगी), फिर क्लिनिक हटाएँ।"
        )
    assert [c.id for c in db.session.get(Provider, world.doctors[0]).clinics] == [world.clinic]
    assert _windows(world.doctors[0]) == WEEK
    quoted_admin_cancel(admin, item.id, "Doctor leaving the clinic", mode="clinic")
    update_provider(admin, world.doctors[0], clinic_ids=[other], registration_no="KMC-4242")
    assert _windows(world.doctors[0]) == []


def test_the_hours_refusal_is_said_in_the_doctors_language(app, world, users):
    _booked(world, users, day=3, hour=11)  # Thursday 4 June
    with pytest.raises(ValidationError) as exc:
        availability.remove_availability(users(world.admin), _window(world.doctors[0], 3))
    with app.test_request_context(), force_locale("hi"):
        said = translate(exc.value.errors[FORM])
    assert said.startswith(
        "हटाए जा रहे घंटों में इस डॉक्टर या लैब के साथ 1 बुकिंग है, गुरु 04 जून 2026, 11:00 को।"
    )


# --- unpaid holds: named apart from the bookings the doctor's schedule shows ----------------


def test_leave_over_bookings_and_a_hold_counts_the_bookings_and_names_the_hold(app, world, users):
    """Review finding: the refusal counted the provider's bookings and patients' unpaid
    holds together ("There are 3 bookings…") while the doctor's schedule showed 2
    appointments: a hold is only greyed there, and the doctor cannot act on it (it lapses
    by itself unless paid). The bookings are counted as the schedule shows them, and the
    hold is named apart with when it lapses; it still refuses the leave."""
    _booked(world, users, day=1, hour=12)
    _booked(world, users, day=1, hour=10, patient=1)
    held_consult(world, 1, 11)  # patient 0's hold: 08:00 + 15 minutes to pay
    message = _leave_refused(world, users)
    assert message == (
        "There are 2 bookings with this provider in this period, the first on Tue 02 Jun 2026,"
        " 10:00. Cancel or move them first (a cancelled patient is refunded in full), then add"
        " the leave. There is also 1 time held while a patient pays, greyed on the provider's"
        " schedule; it lapses by itself at 08:15 unless paid."
    )
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(message)
    assert hindi.startswith(
        "इस अवधि में इस डॉक्टर या लैब के साथ 2 बुकिंग हैं, पहली मंगल 02 जून 2026, 10:00 को।"
    )
    assert hindi.endswith(
        " इसके अलावा 1 समय किसी मरीज़ के भुगतान तक रोका गया है, जो डॉक्टर या लैब के शेड्यूल पर"
        " हल्के रंग में दिखता है; भुगतान न होने पर यह 08:15 पर अपने-आप ख़त्म हो जाएगा।"
    ), hindi
    assert _leaves() == 0


def test_leave_over_only_holds_says_to_wait_for_them_and_is_added_once_they_lapse(
    app, world, users, clock
):
    """Only unpaid holds in the way: nothing for the doctor to cancel. The refusal says a
    patient is paying and when the (last) hold lapses; once it has, the leave is added
    (the stale hold released first, ``release_stale_then_lock``)."""
    from datetime import timedelta

    held_consult(world, 1, 10)  # lapses 08:15
    admin = users(world.admin)
    assert _leave_refused(world, users) == (
        "1 patient is paying for a time in this period; the hold lapses at 08:15. Try again"
        " after it."
    )
    clock.shift(timedelta(minutes=5))
    held_consult(world, 1, 14, patient=1)  # another patient's hold: lapses 08:20, the last
    message = _leave_refused(world, users)
    assert message == (
        "2 times in this period are held while they are paid for; the last hold lapses at"
        " 08:20. Try again after it."
    )
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(message)
    assert "08:20" in hindi and "फिर से कोशिश करें" in hindi, hindi
    assert _leaves() == 0
    clock.shift(timedelta(minutes=16))  # 08:21: both lapsed, the sweep not run
    availability.add_leave(
        admin, world.doctors[0], at(1, 9).astimezone(IST), at(1, 18).astimezone(IST)
    )
    assert _leaves() == 1


def test_a_hold_lapsing_on_another_day_is_said_with_its_date(world, users):
    """A payment link's hold may last into the next day: its lapse is said with its date."""
    from datetime import timedelta

    from portal.booking.models import MasterBooking

    item = held_consult(world, 2, 10)
    visit = db.session.get(MasterBooking, item.master_id)
    visit.hold_expires_at = at(1, 9)
    db.session.commit()
    assert visit.hold_expires_at - at(0, 8) > timedelta(hours=24)
    assert _leave_refused(world, users, day=2) == (
        "1 patient is paying for a time in this period; the hold lapses at Tue 02 Jun 2026,"
        " 09:00. Try again after it."
    )


def test_the_hours_refusal_lists_the_bookings_and_names_the_holds_apart(app, world, users):
    _booked(world, users, day=1, hour=12)  # Tue 2 Jun
    held_consult(world, 1, 10)
    held_consult(world, 8, 10)  # the same visit: one lapse, 08:15
    with pytest.raises(ValidationError) as exc:
        availability.remove_availability(users(world.admin), _window(world.doctors[0], 1))
    message = exc.value.errors[FORM]
    assert message == (
        "There is 1 booking with this provider in the hours being removed, on Tue 02 Jun 2026,"
        " 12:00. Cancel or move it first (a cancelled patient is refunded in full), then change"
        " the hours. There are also 2 times held while patients pay, greyed on the provider's"
        " schedule; each lapses by itself unless paid, the last at 08:15."
    )
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(message)
    assert "इसके अलावा 2 समय मरीज़ों के भुगतान तक रोके गए हैं" in hindi and "08:15" in hindi, hindi
    assert _windows(world.doctors[0]) == WEEK


def test_a_deactivation_over_a_booking_and_a_hold_names_both(world, users):
    from portal.catalog.providers import update_provider

    _booked(world, users, day=3, hour=11)
    held_consult(world, 4, 11)
    with pytest.raises(ValidationError) as exc:
        update_provider(
            users(world.admin), world.doctors[0], active=False, registration_no="KMC-4242"
        )
    assert exc.value.errors["active"] == (
        "There is 1 booking with this provider ahead, on Thu 04 Jun 2026, 11:00. Cancel it first"
        " (the patient is refunded in full; moving it would keep this provider), then"
        " deactivate the provider."
        " There is also 1 time held while a patient pays, greyed on the provider's schedule;"
        " it lapses by itself at 08:15 unless paid."
    )


def _move_by_the_admin(admin, item_id, day, hour):
    """The clinic moves the booking to another time (of the same provider and clinic: a
    move keeps both)."""
    from portal.booking import reschedule
    from portal.booking.models import IndividualBooking

    db.session.expire_all()
    item = db.session.get(IndividualBooking, item_id)
    _, fee = reschedule.quote(admin, item.id, admin_override=True)
    reschedule.reschedule(
        admin,
        item.id,
        at(day, hour),
        pay_with="DESK",
        receipt_no="R-move",
        admin_override=True,
        expected_fee=fee.total,
        shown_start=item.start_at,
    )
    db.session.expire_all()
    assert db.session.get(IndividualBooking, item_id).start_at == at(day, hour)


@pytest.mark.parametrize("change", ["deactivate", "remove_clinic", "close_clinic"])
def test_the_refusal_advises_what_clears_the_way_and_a_move_does_not(world, users, change):
    """Review finding: a provider's deactivation over their bookings ahead said "Cancel or
    move it first", but a move keeps its provider (and its clinic), so the booking moved to
    another time was still in the way. Only a cancellation clears it, and the words say so.
    The same for the provider's clinic taken away and the clinic's deactivation (a move
    keeps the clinic)."""
    from portal.catalog.clinics import update_clinic
    from portal.catalog.models import Clinic
    from portal.catalog.providers import update_provider

    item = _booked(world, users, day=3, hour=11)  # Thu 04 Jun, 11:00
    admin = users(world.admin)
    other = db.session.scalar(sa.select(Clinic.id).where(Clinic.id != world.clinic))

    def attempt():
        if change == "deactivate":
            update_provider(admin, world.doctors[0], active=False, registration_no="KMC-4242")
        elif change == "remove_clinic":
            update_provider(admin, world.doctors[0], clinic_ids=[other], registration_no="KMC-4242")
        else:
            update_clinic(admin, world.clinic, active=False)

    def refused():
        db.session.expire_all()
        with pytest.raises(ValidationError) as exc:
            attempt()
        db.session.rollback()
        (message,) = exc.value.errors.values()
        return str(message)

    first = refused()
    assert "Cancel it first (the patient is refunded in full; moving it would keep this" in (
        first
    ), first
    assert "Cancel or move" not in first
    _move_by_the_admin(admin, item.id, 3, 14)
    assert "14:00" in refused()  # moved, and still in the way
    quoted_admin_cancel(admin, item.id, "Provider leaving", mode="clinic")
    db.session.expire_all()
    attempt()  # cancelled: the way is clear


def test_the_refusal_reads_the_holds_in_the_same_query(world, users):
    """No statement per interval: a hold's lapse is a column of the busy rows, so three
    holds more cost the refusal no statement."""
    from tests.querycount import counted_queries

    def refused():
        db.session.expire_all()
        admin = users(world.admin)
        with counted_queries() as statements, pytest.raises(ValidationError):
            availability.add_leave(
                admin, world.doctors[0], at(1, 9).astimezone(IST), at(1, 18).astimezone(IST)
            )
        return len(statements)

    _booked(world, users, day=1, hour=12)
    before = refused()
    for hour in (9, 10, 11):
        held_consult(world, 1, hour)
    assert refused() == before


def test_the_doctor_is_told_what_they_can_do_and_an_admin_what_an_admin_does(app, world, users):
    """Review: the refusals said "Cancel or move them first (a cancelled patient is refunded
    in full)" to the doctor too, who cannot move a booking and pays a penalty for each they
    cancel. The doctor reads their own words; an admin's are unchanged. No amount is named
    (re-read finding: "₹400 now" after a policy change, where each booking is charged its
    own version's ₹250): the cancel page states the booking's own before the doctor
    confirms."""
    from portal.catalog.models import Provider
    from portal.domain.policy import DEFAULT_POLICY

    _booked(world, users, day=1, hour=10)  # Tue 2 Jun
    _booked(world, users, day=1, hour=12)
    doctor = users(db.session.get(Provider, world.doctors[0]).user_id)
    starts, ends = at(1, 9).astimezone(IST), at(1, 18).astimezone(IST)
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(doctor, world.doctors[0], starts, ends)
    leave = exc.value.errors["starts_at"]
    assert leave == (
        "You have 2 appointments in this period (Tue 02 Jun 2026, 10:00; Tue 02 Jun 2026, "
        "12:00). Ask the clinic to move them, or cancel them from your schedule (each costs "
        "you a cancellation penalty, shown on the cancel page before you confirm)."
    )
    with app.test_request_context(), force_locale("hi"):
        assert translate(leave) == (
            "इस अवधि में आपके 2 अपॉइंटमेंट हैं (मंगल 02 जून 2026, 10:00; मंगल 02 जून 2026, "
            "12:00)। क्लिनिक से उन्हें बदलने को कहें, या अपने शेड्यूल से उन्हें रद्द करें (हर "
            "रद्दीकरण पर आपसे रद्द करने का जुर्माना लिया जाता है, जो पुष्टि से पहले रद्द करने के पेज "
            "पर दिखता है)।"
        )
    with pytest.raises(ValidationError) as exc:  # the admin's words stay an admin's
        availability.add_leave(users(world.admin), world.doctors[0], starts, ends)
    assert exc.value.errors["starts_at"].startswith(
        "There are 2 bookings with this provider in this period"
    )
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(provider_cancellation_penalty=40_000)
    try:
        with pytest.raises(ValidationError) as exc:  # the doctor's Tuesday 09–18 shortened
            availability.change_availability(
                doctor, _window(world.doctors[0], 1), time(9), time(11)
            )
    finally:
        app.config["POLICY"] = saved
    hours = exc.value.errors[FORM]
    assert "₹" not in hours  # the policy in force (₹400) is not what these bookings cost
    assert hours == (
        "You have 1 appointment in the hours being removed, on Tue 02 Jun 2026, 12:00. Ask "
        "the clinic to move it, or cancel it from your schedule (it costs you a "
        "cancellation penalty, shown on the cancel page before you confirm)."
    )
    with app.test_request_context(), force_locale("hi"):
        assert translate(hours) == (
            "हटाए जा रहे घंटों में आपका 1 अपॉइंटमेंट है, मंगल 02 जून 2026, 12:00 को। क्लिनिक से "
            "उसे बदलने को कहें, या अपने शेड्यूल से उसे रद्द करें (इस पर आपसे रद्द करने का "
            "जुर्माना लिया जाता है, जो पुष्टि से पहले रद्द करने के पेज पर दिखता है)।"
        )
    with pytest.raises(ValidationError) as exc:
        availability.change_availability(
            users(world.admin), _window(world.doctors[0], 1), time(9), time(11)
        )
    assert exc.value.errors[FORM].startswith(
        "There is 1 booking with this provider in the hours being removed"
    )


def test_the_doctor_reads_that_the_holds_are_greyed_on_their_own_schedule(app, world, users):
    """Review finding: the refusal said a hold "is not on the schedule" while the doctor's
    schedule shows it greyed ("Awaiting payment — held until …"). The doctor reads where
    it is (their schedule) and that it lapses by itself unless paid; an admin reads the
    provider's schedule. In Hindi too."""
    from portal.catalog.models import Provider

    _booked(world, users, day=1, hour=12)
    held_consult(world, 1, 10)  # lapses 08:15
    held_consult(world, 1, 11, patient=1)  # another patient's: 08:15 too
    doctor = users(db.session.get(Provider, world.doctors[0]).user_id)
    starts, ends = at(1, 9).astimezone(IST), at(1, 18).astimezone(IST)
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(doctor, world.doctors[0], starts, ends)
    leave = exc.value.errors["starts_at"]
    assert leave.endswith(
        " There are also 2 times held while patients pay, greyed on your schedule; each lapses"
        " by itself unless paid, the last at 08:15."
    ), leave
    assert "not on the schedule" not in leave
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(leave)
    assert hindi.endswith(
        " इसके अलावा 2 समय मरीज़ों के भुगतान तक रोके गए हैं, जो आपके शेड्यूल पर हल्के रंग में"
        " दिखते हैं; भुगतान न होने पर हर एक अपने-आप ख़त्म हो जाएगा, आख़िरी 08:15 पर।"
    ), hindi
    assert _leave_refused(world, users).endswith(
        " There are also 2 times held while patients pay, greyed on the provider's schedule;"
        " each lapses by itself unless paid, the last at 08:15."
    )
    assert _leaves() == 0


# --- appointments already begun: no longer the clinic's to move or the doctor's to cancel ---


def _doctor(world, users):
    from portal.catalog.models import Provider

    return users(db.session.get(Provider, world.doctors[0]).user_id)


def test_a_started_appointment_is_named_apart_with_what_the_doctor_can_do(app, world, users, clock):
    """Review finding (a doctor's week): the lab started its 09:30 appointment early, then
    added leave today 09:00-13:00; the refusal counted the started appointment among those
    to "Ask the clinic to move them, or cancel them from your schedule", but a started
    appointment has no Cancel link and cannot be moved. It is named apart, with what the
    doctor can do (complete it, or start the leave after it ends); the appointment still
    ahead keeps its words, and the two counts add up to what the schedule shows."""
    from datetime import timedelta

    from portal.payouts import completion

    started = _booked(world, users, day=0, hour=10)  # Mon 1 Jun, 10:00-10:30
    _booked(world, users, day=0, hour=12, patient=1)
    doctor = _doctor(world, users)
    clock.shift(timedelta(hours=1, minutes=30))  # 09:30: started early
    completion.start_booking(doctor, started.id)
    starts, ends = at(0, 9).astimezone(IST), at(0, 13).astimezone(IST)
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(doctor, world.doctors[0], starts, ends)
    leave = exc.value.errors["starts_at"]
    assert leave == (
        "You have 1 appointment in this period, on Mon 01 Jun 2026, 12:00. Ask the clinic to "
        "move it, or cancel it from your schedule (it costs you a cancellation penalty, shown "
        "on the cancel page before you confirm). 1 more has already begun (Mon 01 Jun 2026, "
        "10:00), too late to cancel or move: complete it first (if the patient never came, "
        "ask the clinic to cancel it), or start your leave after it ends."
    )
    with app.test_request_context(), force_locale("hi"):
        assert translate(leave).endswith(
            " 1 और अपॉइंटमेंट पहले ही शुरू हो चुका है (सोम 01 जून 2026, 10:00), अब उसे रद्द"
            " करने या बदलने में देर हो चुकी है: पहले उसे पूरा करें (अगर मरीज़ आया ही नहीं, तो"
            " क्लिनिक से उसे रद्द करने को कहें), या अपनी छुट्टी उसके ख़त्म होने के बाद से शुरू"
            " करें।"
        ), translate(leave)
    # The leave up to the 12:00 appointment: the started one alone is in the way.
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(doctor, world.doctors[0], starts, at(0, 12).astimezone(IST))
    alone = exc.value.errors["starts_at"]
    assert alone == (
        "You have 1 appointment in this period that has already begun (Mon 01 Jun 2026, "
        "10:00), too late to cancel or move: complete it first (if the patient never came, "
        "ask the clinic to cancel it), or start your leave after it ends."
    )
    with app.test_request_context(), force_locale("hi"):
        assert translate(alone) == (
            "इस अवधि में आपका 1 अपॉइंटमेंट पहले ही शुरू हो चुका है (सोम 01 जून 2026, 10:00),"
            " अब उसे रद्द करने या बदलने में देर हो चुकी है: पहले उसे पूरा करें (अगर मरीज़ आया"
            " ही नहीं, तो क्लिनिक से उसे रद्द करने को कहें), या अपनी छुट्टी उसके ख़त्म होने के"
            " बाद से शुरू करें।"
        )
    # The admin's words are an admin's, the begun one counted apart too (the admin's
    # own test below).
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(users(world.admin), world.doctors[0], starts, ends)
    assert exc.value.errors["starts_at"].startswith(
        "There is 1 booking with this provider in this period, on Mon 01 Jun 2026, 12:00."
    )
    # The advice works: the leave after it ends is refused only over the 12:00 one, and
    # once it is completed the leave up to 12:00 is added.
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(doctor, world.doctors[0], at(0, 10, 30), ends)
    assert exc.value.errors["starts_at"].startswith("You have 1 appointment in this period, on")
    clock.shift(timedelta(minutes=35))  # 10:05: from its start it can be completed
    completion.complete_booking(doctor, started.id)
    availability.add_leave(doctor, world.doctors[0], starts, at(0, 12).astimezone(IST))
    assert _leaves() == 1


def test_appointments_whose_time_has_begun_are_counted_apart_in_leave_and_hours(
    app, world, users, clock
):
    """A confirmed appointment whose time has begun (not started: perhaps the patient is
    late, or never came) can no longer be cancelled by the doctor (cancellation.py:
    "only before the appointment starts") nor moved: named apart too, in the plural, and
    in the hours refusal in its own words."""
    from datetime import timedelta

    _booked(world, users, day=0, hour=10)  # Mon 1 Jun, 10:00-10:30
    _booked(world, users, day=0, hour=11, patient=1)
    _booked(world, users, day=7, hour=10, patient=2)  # Mon 8 Jun: ahead
    doctor = _doctor(world, users)
    clock.shift(timedelta(hours=3, minutes=10))  # 11:10: both today's have begun
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(
            doctor, world.doctors[0], at(0, 9).astimezone(IST), at(0, 13).astimezone(IST)
        )
    assert exc.value.errors["starts_at"] == (
        "You have 2 appointments in this period that have already begun (Mon 01 Jun 2026, "
        "10:00; Mon 01 Jun 2026, 11:00), too late to cancel or move: complete them first (if "
        "a patient never came, ask the clinic to cancel that one), or start your leave after "
        "they end."
    )
    with pytest.raises(ValidationError) as exc:  # the doctor's Mondays removed
        availability.remove_availability(doctor, _window(world.doctors[0], 0))
    hours = exc.value.errors[FORM]
    # From now on: the 10:00 one has ended; the 11:00 one (until 11:30) has begun.
    assert hours == (
        "You have 1 appointment in the hours being removed, on Mon 08 Jun 2026, 10:00. Ask "
        "the clinic to move it, or cancel it from your schedule (it costs you a cancellation "
        "penalty, shown on the cancel page before you confirm). 1 more has already begun (Mon "
        "01 Jun 2026, 11:00), too late to cancel or move: complete it first (if the patient "
        "never came, ask the clinic to cancel it), or change the hours after it ends."
    )
    with app.test_request_context(), force_locale("hi"):
        assert translate(hours).endswith(
            " 1 और अपॉइंटमेंट पहले ही शुरू हो चुका है (सोम 01 जून 2026, 11:00), अब उसे रद्द"
            " करने या बदलने में देर हो चुकी है: पहले उसे पूरा करें (अगर मरीज़ आया ही नहीं, तो"
            " क्लिनिक से उसे रद्द करने को कहें), या उसके ख़त्म होने के बाद घंटे बदलें।"
        ), translate(hours)
    assert _windows(world.doctors[0]) == WEEK


ADMIN_BEGUN_ONE = (
    "1 more has already begun (Mon 01 Jun 2026, 10:00), too late to move: complete it first "
    "(or, if the patient never came, cancel it) on its visit's page, or {then} after it ends."
)


def test_the_admin_reads_begun_appointments_apart_with_what_an_admin_can_do(world, users, clock):
    """Review finding: the admin's refusals (leave, weekly hours, a deactivation, a clinic
    taken from the provider) told the admin to "cancel or move" appointments that had
    already begun, which no one can move any more (reschedule: "Appointment has already
    started") and a started one not even cancel (STARTED -> CANCELLED is refused). The
    doctor's words count them apart; the admin's now do too, with what an admin can do:
    complete it, cancel one the patient never came to, or make the change after it ends.
    The counts together are the schedule's, and the advice works."""
    from datetime import timedelta

    from portal.catalog.models import Clinic
    from portal.catalog.providers import update_provider
    from portal.payouts import completion

    started = _booked(world, users, day=0, hour=10)  # Mon 1 Jun, 10:00-10:30
    late = _booked(world, users, day=0, hour=12, patient=1)  # ahead of it
    _booked(world, users, day=7, hour=10, patient=2)  # Mon 8 Jun: ahead
    admin = users(world.admin)
    clock.shift(timedelta(hours=2, minutes=5))  # 10:05
    completion.start_booking(admin, started.id)
    starts, ends = at(0, 9).astimezone(IST), at(0, 13).astimezone(IST)
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(admin, world.doctors[0], starts, ends)
    assert exc.value.errors["starts_at"] == (
        "There is 1 booking with this provider in this period, on Mon 01 Jun 2026, 12:00. "
        "Cancel or move it first (a cancelled patient is refunded in full), then add the "
        "leave. " + ADMIN_BEGUN_ONE.format(then="start the leave")
    )
    with pytest.raises(ValidationError) as exc:
        update_provider(admin, world.doctors[0], active=False, registration_no="KMC-4242")
    assert exc.value.errors["active"] == (
        "There are 2 bookings with this provider ahead, the first on Mon 01 Jun 2026, 12:00. "
        "Cancel them first (each patient is refunded in full; moving them would keep this "
        "provider), then deactivate the provider. "
        + ADMIN_BEGUN_ONE.format(then="deactivate the provider")
    )
    other = db.session.scalar(sa.select(Clinic.id).where(Clinic.id != world.clinic))
    with pytest.raises(ValidationError) as exc:
        update_provider(admin, world.doctors[0], clinic_ids=[other], registration_no="KMC-4242")
    assert exc.value.errors["clinic_ids"] == (
        "There are 2 bookings ahead with this provider at Indiranagar Clinic (Mon 01 Jun 2026, "
        "12:00; Mon 08 Jun 2026, 10:00). Cancel them first (each patient is refunded in full; "
        "moving them would keep this provider and clinic), then remove the clinic. "
        + ADMIN_BEGUN_ONE.format(then="remove the clinic")
    )
    with pytest.raises(ValidationError) as exc:  # the doctor's Mondays removed
        availability.remove_availability(admin, _window(world.doctors[0], 0))
    assert exc.value.errors[FORM] == (
        "There are 2 bookings with this provider in the hours being removed (Mon 01 Jun 2026, "
        "12:00; Mon 08 Jun 2026, 10:00). Cancel or move them first (a cancelled patient is "
        "refunded in full), then change the hours. "
        + ADMIN_BEGUN_ONE.format(then="change the hours")
    )
    # Completed, it is out of the way: the leave up to 12:00 is added.
    completion.complete_booking(admin, started.id)
    availability.add_leave(admin, world.doctors[0], starts, at(0, 12).astimezone(IST))
    # 12:10, the patient never came: begun, alone, in the plural's singular.
    clock.shift(timedelta(hours=2, minutes=5))
    later = at(0, 12).astimezone(IST), ends
    with pytest.raises(ValidationError) as exc:
        availability.add_leave(admin, world.doctors[0], *later)
    assert exc.value.errors["starts_at"] == (
        "There is 1 booking with this provider in this period that has already begun (Mon 01 "
        "Jun 2026, 12:00), too late to move: complete it first (or, if the patient never came, "
        "cancel it) on its visit's page, or start the leave after it ends."
    )
    quoted_admin_cancel(admin, late.id, "The patient never came", mode="patient")
    availability.add_leave(admin, world.doctors[0], *later)
    assert _leaves() == 2
