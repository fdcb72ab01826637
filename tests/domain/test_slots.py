"""Slot maths: business hours ∩ availability − leave − busy, in the clinic's zone."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.domain.slots import (
    BOOK_DAYS_AHEAD,
    LIST_DAYS_AHEAD,
    LIST_SPAN_DAYS,
    MSG_CLOSED_DAY,
    MSG_HOURS,
    MSG_LEAD,
    MSG_OFF_GRID,
    MSG_PAST,
    MSG_PROVIDER_UNAVAILABLE,
    MSG_TAKEN,
    MSG_WEEKEND,
    WeeklyWindow,
    check_slot,
    format_hours,
    free_slots,
    last_bookable_day,
    listed_day,
    on_grid,
    team_free_slots,
    within_weekly_hours,
)

UTC = UTC
IST = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")
DEFAULT_HOURS = {d: (time(9), time(18)) for d in range(5)}
ALL_WEEK_9_TO_6 = [WeeklyWindow(d, time(9), time(18)) for d in range(7)]
HALF_HOUR = timedelta(minutes=30)
MONDAY = date(2026, 3, 2)  # a Monday


def before(day):
    """A "now" a week before ``day``: no lead time in the way, and ``day`` well inside the
    booking horizon (a list never reaches past it: "now" in 2000 lists nothing in 2026)."""
    return datetime.combine(day - timedelta(days=7), time(0), tzinfo=UTC)


def ist(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=IST).astimezone(UTC)


def local_times(slots, zone=IST):
    return [s.astimezone(zone).strftime("%a %H:%M") for s in slots]


def slots_for(day, **kw):
    args = dict(
        date_range=(day, day),
        clinic_tz="Asia/Kolkata",
        business_hours=DEFAULT_HOURS,
        availability=ALL_WEEK_9_TO_6,
        duration=HALF_HOUR,
        now=before(day),
    )
    args.update(kw)
    return free_slots(**args)


# --- free_slots: examples -----------------------------------------------------------------


def test_a_full_default_day_has_18_half_hour_slots_from_opening_to_closing():
    slots = slots_for(MONDAY)
    assert len(slots) == 18
    assert slots[0] == ist(MONDAY, 9) and slots[-1] == ist(MONDAY, 17, 30)
    assert all(s.tzinfo == UTC for s in slots)


def test_slots_end_at_or_before_closing():
    slots = slots_for(MONDAY, duration=timedelta(minutes=45), step=timedelta(minutes=15))
    assert slots[-1] + timedelta(minutes=45) == ist(MONDAY, 18)
    assert all(s + timedelta(minutes=45) <= ist(MONDAY, 18) for s in slots)


def test_no_slots_on_the_default_weekend():
    saturday, sunday = MONDAY + timedelta(days=5), MONDAY + timedelta(days=6)
    assert (
        free_slots(
            (saturday, sunday),
            IST,
            DEFAULT_HOURS,
            ALL_WEEK_9_TO_6,
            duration=HALF_HOUR,
            now=before(saturday),
        )
        == []
    )


def test_availability_is_intersected_with_business_hours():
    availability = [WeeklyWindow(0, time(7), time(10)), WeeklyWindow(0, time(17), time(21))]
    assert local_times(slots_for(MONDAY, availability=availability)) == [
        "Mon 09:00",
        "Mon 09:30",
        "Mon 17:00",
        "Mon 17:30",
    ]


def test_touching_availability_windows_are_joined():
    availability = [(0, time(9), time(10)), (0, time(10), time(11))]
    slots = slots_for(
        MONDAY, availability=availability, duration=timedelta(hours=1), step=HALF_HOUR
    )
    assert local_times(slots) == ["Mon 09:00", "Mon 09:30", "Mon 10:00"]


def test_leave_and_busy_remove_overlapping_slots_but_touching_is_fine():
    leave = [(ist(MONDAY, 9), ist(MONDAY, 12))]
    busy = [(ist(MONDAY, 13), ist(MONDAY, 13, 30)), (ist(MONDAY, 14, 10), ist(MONDAY, 14, 20))]
    slots = local_times(slots_for(MONDAY, leaves=leave, busy=busy))
    assert slots[0] == "Mon 12:00"  # starts as the leave ends
    assert "Mon 12:30" in slots and "Mon 13:30" in slots
    assert "Mon 13:00" not in slots and "Mon 14:00" not in slots


def test_past_and_lead_time_are_excluded_and_the_grid_is_kept():
    now = ist(MONDAY, 10, 5)
    slots = slots_for(MONDAY, now=now)
    assert local_times(slots)[0] == "Mon 10:30"
    slots = slots_for(MONDAY, now=now, min_lead=timedelta(hours=2))
    assert local_times(slots)[0] == "Mon 12:30"


def test_a_slot_starting_exactly_now_is_offered():
    assert slots_for(MONDAY, now=ist(MONDAY, 17, 30)) == [ist(MONDAY, 17, 30)]


def test_several_days_and_split_business_hours():
    hours = {0: [(time(9), time(13)), (time(14), time(18))], 5: (time(10), time(12))}
    slots = free_slots(
        (MONDAY, MONDAY + timedelta(days=6)),
        "Asia/Kolkata",
        hours,
        ALL_WEEK_9_TO_6,
        duration=timedelta(hours=1),
        now=before(MONDAY),
    )
    assert local_times(slots) == [
        "Mon 09:00",
        "Mon 10:00",
        "Mon 11:00",
        "Mon 12:00",
        "Mon 14:00",
        "Mon 15:00",
        "Mon 16:00",
        "Mon 17:00",
        "Sat 10:00",
        "Sat 11:00",
    ]


def test_team_slots_are_the_intersection_of_everyone_free():
    a = [WeeklyWindow(0, time(9), time(13))]
    b = [WeeklyWindow(0, time(11), time(18))]
    busy_b = [(ist(MONDAY, 11), ist(MONDAY, 11, 30))]
    slots = team_free_slots(
        (MONDAY, MONDAY),
        IST,
        DEFAULT_HOURS,
        [a, b],
        busy=busy_b,
        duration=HALF_HOUR,
        now=before(MONDAY),
    )
    assert local_times(slots) == ["Mon 11:30", "Mon 12:00", "Mon 12:30"]


def test_now_is_required_and_must_be_aware():
    with pytest.raises(ValueError):
        free_slots((MONDAY, MONDAY), IST, DEFAULT_HOURS, ALL_WEEK_9_TO_6, duration=HALF_HOUR)
    with pytest.raises(ValueError):
        free_slots(
            (MONDAY, MONDAY),
            IST,
            DEFAULT_HOURS,
            ALL_WEEK_9_TO_6,
            duration=HALF_HOUR,
            now=datetime(2026, 1, 1),
        )


def test_bad_windows_are_refused():
    with pytest.raises(ValueError):
        WeeklyWindow(0, time(10), time(9))
    with pytest.raises(ValueError):
        WeeklyWindow(7, time(9), time(10))


# --- DST: the clinic's zone, not UTC arithmetic ------------------------------------------


def test_london_slots_follow_local_time_across_the_spring_change():
    # BST starts on Sunday 29 March 2026: 09:00 local is 09:00 UTC before, 08:00 UTC after.
    friday, monday = date(2026, 3, 27), date(2026, 3, 30)
    slots = free_slots(
        (friday, monday),
        "Europe/London",
        DEFAULT_HOURS,
        ALL_WEEK_9_TO_6,
        duration=timedelta(hours=1),
        now=before(friday),
    )
    assert slots[0] == datetime(2026, 3, 27, 9, tzinfo=UTC)
    assert datetime(2026, 3, 30, 8, tzinfo=UTC) in slots
    assert len(slots) == 18  # 9 per open day, none lost or invented
    assert {s.astimezone(LONDON).hour for s in slots} == set(range(9, 18))


def test_a_window_across_the_autumn_change_has_its_real_length():
    # GMT returns at 02:00 BST on Sunday 25 October 2026: 00:00–04:00 local lasts 5 hours.
    sunday = date(2026, 10, 25)
    hours = {6: (time(0), time(4))}
    slots = free_slots(
        (sunday, sunday),
        LONDON,
        hours,
        [(6, time(0), time(4))],
        duration=timedelta(hours=1),
        now=before(sunday),
    )
    assert len(slots) == 5
    assert all(b - a == timedelta(hours=1) for a, b in zip(slots, slots[1:]))
    for start in slots:
        assert check_slot(start, timedelta(hours=1), LONDON, hours, [[(6, time(0), time(4))]]) == []


# --- check_slot: the policy's messages ----------------------------------------------------


def check(start, **kw):
    args = dict(
        duration=HALF_HOUR,
        clinic_tz=IST,
        business_hours=DEFAULT_HOURS,
        availabilities=[ALL_WEEK_9_TO_6],
    )
    args.update(kw)
    return check_slot(start, **args)


def test_check_accepts_a_good_slot():
    assert check(ist(MONDAY, 9)) == []
    assert check(ist(MONDAY, 17, 30)) == []


def test_check_weekend_message():
    assert check(ist(MONDAY + timedelta(days=5), 10)) == [MSG_WEEKEND]
    assert MSG_WEEKEND == "Appointments not available on weekends"


def test_check_other_closed_day_message():
    hours = {d: (time(9), time(18)) for d in (0, 1, 3, 4, 5)}  # closed Wednesday and Sunday
    assert check(ist(MONDAY + timedelta(days=2), 10), business_hours=hours) == [MSG_CLOSED_DAY]
    assert check(ist(MONDAY + timedelta(days=6), 10), business_hours=hours) == [MSG_CLOSED_DAY]


def test_check_business_hours_message_built_from_the_hours():
    assert check(ist(MONDAY, 8, 30)) == ["Appointments only available 9 AM - 6 PM"]
    assert check(ist(MONDAY, 17, 45)) == ["Appointments only available 9 AM - 6 PM"]
    hours = {0: [(time(8, 30), time(12)), (time(13), time(20))]}
    assert check(ist(MONDAY, 12), business_hours=hours) == [
        "Appointments only available 8:30 AM - 12 PM, 1 PM - 8 PM"
    ]


def test_check_uses_the_local_day_not_the_utc_day():
    # 00:30 IST on Saturday is 19:00 UTC on Friday.
    saturday_early = ist(MONDAY + timedelta(days=5), 0, 30)
    assert saturday_early.weekday() == 4
    assert check(saturday_early) == [MSG_WEEKEND]


def test_check_provider_hours_and_leave():
    morning = [[WeeklyWindow(0, time(9), time(12))]]
    assert check(ist(MONDAY, 14), availabilities=morning) == [MSG_PROVIDER_UNAVAILABLE]
    assert check(ist(MONDAY, 11, 45), availabilities=morning) == [MSG_PROVIDER_UNAVAILABLE]
    leave = [(ist(MONDAY, 10), ist(MONDAY, 11))]
    assert check(ist(MONDAY, 10, 30), leaves=leave) == [MSG_PROVIDER_UNAVAILABLE]
    assert check(ist(MONDAY, 11), leaves=leave) == []


def test_check_team_needs_everyone():
    a, b = [(0, time(9), time(18))], [(0, time(13), time(18))]
    assert check(ist(MONDAY, 10), availabilities=[a, b]) == [MSG_PROVIDER_UNAVAILABLE]
    assert check(ist(MONDAY, 13), availabilities=[a, b]) == []


def test_check_busy_means_taken():
    busy = [(ist(MONDAY, 10), ist(MONDAY, 10, 30))]
    assert check(ist(MONDAY, 10, 15), busy=busy) == [MSG_TAKEN]
    assert check(ist(MONDAY, 10, 30), busy=busy) == []
    assert MSG_TAKEN == "Slot no longer available"


def test_check_past_and_lead_time():
    now = ist(MONDAY, 12)
    assert check(ist(MONDAY, 11), now=now) == [MSG_PAST]
    assert check(ist(MONDAY, 12, 30), now=now, min_lead=timedelta(hours=1)) == [
        "Appointments must be booked at least 60 minutes ahead"
    ]
    assert check(ist(MONDAY, 13), now=now, min_lead=timedelta(hours=1)) == []


def test_the_hours_and_lead_messages_are_translatable_texts():
    """Both read as POLICY.md words them and keep their template and values, so a Hindi
    page says them in Hindi (``t``); built as plain f-strings they were in no catalogue."""
    [hours] = check(ist(MONDAY, 8, 30))
    assert (hours.template, hours.values) == (MSG_HOURS, {"hours": "9 AM - 6 PM"})
    now = ist(MONDAY, 12)
    [lead] = check(ist(MONDAY, 12, 30), now=now, min_lead=timedelta(hours=1))
    assert lead == "Appointments must be booked at least 60 minutes ahead"
    assert (lead.template, lead.values) == (MSG_LEAD, {"minutes": 60})


# --- the grid a list shows ------------------------------------------------------------------


def test_with_a_step_a_start_off_the_lists_grid_is_refused():
    """A start the free times never show (between two, or seconds past one) is refused when
    the step is given (the patient's paths); without it, the desk's, any start in the rules."""
    assert check(ist(MONDAY, 10, 15), step=HALF_HOUR) == [MSG_OFF_GRID]
    assert check(ist(MONDAY, 10) + timedelta(seconds=7), step=HALF_HOUR) == [MSG_OFF_GRID]
    assert check(ist(MONDAY, 10) + timedelta(microseconds=1), step=HALF_HOUR) == [MSG_OFF_GRID]
    assert check(ist(MONDAY, 10), step=HALF_HOUR) == []
    assert check(ist(MONDAY, 10, 15)) == []
    assert MSG_OFF_GRID == "Choose one of the times shown"


def test_the_grid_starts_at_each_window_of_the_team():
    """The grid starts where the clinic's hours and every provider's meet (09:15 here; the
    afternoon window at 14:10), as the list's: 09:45 and 14:40 are on it, 10:00 is not."""
    a = [WeeklyWindow(0, time(9, 15), time(12)), WeeklyWindow(0, time(14, 10), time(18))]
    b = [WeeklyWindow(0, time(8), time(17))]
    listed = team_free_slots(
        (MONDAY, MONDAY), IST, DEFAULT_HOURS, [a, b], step=HALF_HOUR, now=before(MONDAY)
    )
    assert "Mon 09:45" in local_times(listed) and "Mon 14:40" in local_times(listed)
    for hh, mm, shown in ((9, 45, True), (10, 0, False), (14, 40, True), (14, 30, False)):
        start = ist(MONDAY, hh, mm)
        assert on_grid(start, HALF_HOUR, HALF_HOUR, IST, DEFAULT_HOURS, [a, b]) is shown
        assert (check(start, availabilities=[a, b], step=HALF_HOUR) == []) is shown
        assert (start in listed) is shown


def test_an_off_grid_start_outside_the_providers_hours_says_so_first():
    """Off the grid and outside the provider's hours: the hours' message, as without a step."""
    morning = [[WeeklyWindow(0, time(9), time(12))]]
    start = ist(MONDAY, 14, 15)
    assert check(start, availabilities=morning, step=HALF_HOUR) == [MSG_PROVIDER_UNAVAILABLE]


# --- the booking horizon ------------------------------------------------------------------


def test_the_horizon_is_the_last_day_a_list_can_show():
    """A list starts at most LIST_DAYS_AHEAD days ahead and shows LIST_SPAN_DAYS days: its
    last day is the last bookable one, and a one-day list may start there."""
    today = MONDAY
    assert BOOK_DAYS_AHEAD == LIST_DAYS_AHEAD + LIST_SPAN_DAYS - 1
    last = last_bookable_day(today)
    assert last == today + timedelta(days=BOOK_DAYS_AHEAD)
    far = date(2099, 12, 31)
    assert listed_day(far, today) + timedelta(days=LIST_SPAN_DAYS - 1) == last
    assert listed_day(far, today) == today + timedelta(days=LIST_DAYS_AHEAD)
    assert listed_day(far, today, span=1) == last
    assert listed_day(date(2000, 1, 1), today) == today


def test_check_refuses_a_start_beyond_the_horizon_first():
    """A start on the day after the last bookable one is refused before anything else (a
    weekend, the hours), a start on the last day is bookable to its last slot; the day is
    the clinic's (00:30 IST on the day after is still the last day in UTC)."""
    now = ist(MONDAY, 12)
    last = last_bookable_day(MONDAY)
    hours = {d: (time(0), time(23, 59)) for d in range(7)}
    every_day = [[WeeklyWindow(d, time(0), time(23, 59)) for d in range(7)]]
    beyond = check(
        ist(last + timedelta(days=1), 0, 30),
        now=now,
        business_hours=hours,
        availabilities=every_day,
    )
    assert beyond == [f"Appointments can be booked at most {BOOK_DAYS_AHEAD} days ahead"]
    assert beyond[0].template == "Appointments can be booked at most %(days)s days ahead"
    assert check(ist(last, 23), now=now, business_hours=hours, availabilities=every_day) == []
    # Beyond it, the horizon is the one message, whatever else the day is.
    assert len(check(ist(last + timedelta(days=7), 3), now=now)) == 1
    assert check(datetime(2099, 12, 1, 5, tzinfo=UTC), now=now) == [beyond[0]]
    # Without "now" (a check of the hours alone) there is no horizon.
    assert check(datetime(2099, 12, 1, 5, tzinfo=UTC)) == []


def test_the_horizon_is_the_clinics_day():
    """In London, 23:00 local on the horizon's day is the next day in IST: bookable, and
    listed; the following local day is neither."""
    hours = {d: (time(9), time(23, 59)) for d in range(7)}
    every_day = [[WeeklyWindow(d, time(9), time(23, 59)) for d in range(7)]]
    now = datetime.combine(MONDAY, time(12), tzinfo=LONDON)
    last = last_bookable_day(MONDAY)
    late = datetime.combine(last, time(23), tzinfo=LONDON)
    assert late.astimezone(IST).date() == last + timedelta(days=1)
    assert (
        check(late, clinic_tz=LONDON, business_hours=hours, availabilities=every_day, now=now) == []
    )
    slots = team_free_slots(
        (last - timedelta(days=1), last + timedelta(days=3)),
        LONDON,
        hours,
        every_day,
        duration=HALF_HOUR,
        now=now,
    )
    assert slots[-1] == late.astimezone(UTC)
    assert {s.astimezone(LONDON).date() for s in slots} == {last - timedelta(days=1), last}


def test_a_list_stops_at_the_horizon():
    """However far a list is asked to run, it shows nothing past the last bookable day."""
    now = ist(MONDAY, 8)
    last = last_bookable_day(MONDAY)
    slots = free_slots(
        (last - timedelta(days=10), last + timedelta(days=30)),
        IST,
        {d: (time(9), time(18)) for d in range(7)},
        ALL_WEEK_9_TO_6,
        duration=HALF_HOUR,
        now=now,
    )
    assert slots[-1] == ist(last, 17, 30)
    assert all(
        check(s, business_hours={d: (time(9), time(18)) for d in range(7)}, now=now) == []
        for s in slots
    )


def test_format_hours():
    assert format_hours([(time(9), time(18))]) == "9 AM - 6 PM"
    assert format_hours([(time(0), time(12, 15))]) == "12 AM - 12:15 PM"


# --- properties ---------------------------------------------------------------------------

ZONES = st.sampled_from(["Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Adelaide"])
QUARTERS = st.integers(min_value=0, max_value=95).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def windows(draw, max_size=3):
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        weekday = draw(st.integers(0, 6))
        a, b = draw(QUARTERS), draw(QUARTERS)
        if a != b:
            out.append((weekday, min(a, b), max(a, b)))
    return out


@st.composite
def scenario(draw):
    zone = draw(ZONES)
    first = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 364)))
    last = first + timedelta(days=draw(st.integers(0, 6)))
    hours = {}
    for weekday, opens, closes in draw(windows(max_size=7)):
        hours.setdefault(weekday, []).append((opens, closes))
    availability = draw(windows(max_size=6))
    base = datetime.combine(first, time(0), tzinfo=UTC)
    minute = st.integers(0, 8 * 24 * 60)

    def intervals(n):
        out = []
        for _ in range(draw(st.integers(0, n))):
            s = base + timedelta(minutes=draw(minute))
            out.append((s, s + timedelta(minutes=draw(st.integers(1, 600)))))
        return out

    duration = timedelta(minutes=15 * draw(st.integers(1, 8)))
    now = base + timedelta(minutes=draw(st.integers(-2000, 8 * 24 * 60)))
    lead = timedelta(minutes=draw(st.sampled_from([0, 15, 60, 120])))
    return dict(
        zone=zone,
        range=(first, last),
        hours=hours,
        availability=availability,
        leaves=intervals(3),
        busy=intervals(6),
        duration=duration,
        now=now,
        lead=lead,
    )


def _overlaps(start, end, intervals):
    return any(s < end and start < e for s, e in intervals)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_every_free_slot_passes_check_slot_and_avoids_busy_and_leave(sc):
    slots = free_slots(
        sc["range"],
        sc["zone"],
        sc["hours"],
        sc["availability"],
        sc["leaves"],
        sc["busy"],
        sc["duration"],
        step=timedelta(minutes=15),
        now=sc["now"],
        min_lead=sc["lead"],
    )
    assert slots == sorted(set(slots))
    zone = ZoneInfo(sc["zone"])
    for start in slots:
        end = start + sc["duration"]
        assert start >= sc["now"] + sc["lead"]
        assert not _overlaps(start, end, sc["leaves"] + sc["busy"])
        assert sc["range"][0] <= start.astimezone(zone).date() <= sc["range"][1]
        assert (
            check_slot(
                start,
                sc["duration"],
                sc["zone"],
                sc["hours"],
                [sc["availability"]],
                sc["leaves"],
                sc["busy"],
                now=sc["now"],
                min_lead=sc["lead"],
            )
            == []
        )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_every_bookable_quarter_hour_is_offered(sc):
    """Completeness in India (no DST, 15-minute grid): a quarter-hour start that passes
    check_slot is among the free slots."""
    zone = "Asia/Kolkata"
    step = timedelta(minutes=15)
    slots = set(
        free_slots(
            sc["range"],
            zone,
            sc["hours"],
            sc["availability"],
            sc["leaves"],
            sc["busy"],
            sc["duration"],
            step=step,
            now=sc["now"],
            min_lead=sc["lead"],
        )
    )
    first, last = sc["range"]
    t = datetime.combine(first, time(0), tzinfo=IST).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=IST).astimezone(UTC)
    while t < end:
        ok = (
            check_slot(
                t,
                sc["duration"],
                zone,
                sc["hours"],
                [sc["availability"]],
                sc["leaves"],
                sc["busy"],
                now=sc["now"],
                min_lead=sc["lead"],
            )
            == []
        )
        # A candidate starting in the past is skipped by the grid only if it is not aligned;
        # every local quarter hour is aligned here, so both must agree.
        assert ok == (t in slots), t.astimezone(IST)
        t += step


@settings(max_examples=150, deadline=None)
@given(scenario(), windows(max_size=4))
def test_team_slots_are_free_for_each_member(sc, other):
    team = team_free_slots(
        sc["range"],
        sc["zone"],
        sc["hours"],
        [sc["availability"], other],
        sc["leaves"],
        sc["busy"],
        sc["duration"],
        now=sc["now"],
    )
    for start in team:
        assert (
            check_slot(
                start,
                sc["duration"],
                sc["zone"],
                sc["hours"],
                [sc["availability"], other],
                sc["leaves"],
                sc["busy"],
                now=sc["now"],
            )
            == []
        )
        for member in (sc["availability"], other):  # and each member on their own
            assert (
                check_slot(
                    start,
                    sc["duration"],
                    sc["zone"],
                    sc["hours"],
                    [member],
                    sc["leaves"],
                    sc["busy"],
                    now=sc["now"],
                )
                == []
            )


def test_within_weekly_hours_reads_the_days_windows_joined_in_the_clinics_zone():
    """What a change of weekly hours asks of each booking ahead (and the claims' trigger of
    each new claim): inside the windows of its local day, touching ones joined."""
    tuesday = MONDAY + timedelta(days=1)
    hours = [WeeklyWindow(1, time(9), time(12)), WeeklyWindow(1, time(12), time(14))]

    def inside(h, m, minutes=30, day=tuesday, zone=IST):
        start = datetime.combine(day, time(h, m), tzinfo=zone)
        return within_weekly_hours(start, start + timedelta(minutes=minutes), zone, hours)

    assert inside(9, 0) and inside(11, 45) and inside(13, 30)  # across the seam too
    assert not inside(8, 45) and not inside(13, 45) and not inside(14, 0)
    assert not inside(10, 0, day=MONDAY)  # no Monday hours
    assert within_weekly_hours(ist(tuesday, 9), ist(tuesday, 14), "Asia/Kolkata", hours)
    assert not within_weekly_hours(ist(tuesday, 10), ist(tuesday, 10, 30), "Asia/Kolkata", [])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.sampled_from([10, 15, 20, 30, 45]))
def test_with_a_step_check_slot_accepts_exactly_the_listed_starts(sc, minutes):
    """Every five minutes of the first day, in any zone (DST too): with the list's step,
    ``check_slot`` accepts a start if and only if the list shows it (one grid function)."""
    step = timedelta(minutes=minutes)
    first = sc["range"][0]
    slots = set(
        free_slots(
            (first, first),
            sc["zone"],
            sc["hours"],
            sc["availability"],
            sc["leaves"],
            sc["busy"],
            sc["duration"],
            step=step,
            now=sc["now"],
            min_lead=sc["lead"],
        )
    )
    zone = ZoneInfo(sc["zone"])
    t = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(first + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    while t < end:
        ok = (
            check_slot(
                t,
                sc["duration"],
                sc["zone"],
                sc["hours"],
                [sc["availability"]],
                sc["leaves"],
                sc["busy"],
                now=sc["now"],
                min_lead=sc["lead"],
                step=step,
            )
            == []
        )
        assert ok == (t in slots), t.astimezone(zone)
        t += timedelta(minutes=5)
