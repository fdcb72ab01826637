"""Slot maths (POLICY.md "People and catalog", "Master booking"): plain Python and zoneinfo.

Bookable slots = clinic business hours ∩ the provider's weekly availability − leave − busy
(live holds and bookings), not in the past and not sooner than the lead time.

Weekly hours are wall-clock times in the clinic's zone. Each day's windows are turned into
absolute UTC intervals first and every later step (the slot grid, overlaps, "now") is
interval arithmetic on aware UTC datetimes, so a DST change (Europe/London, …) can neither
invent nor lose an hour. India has no DST; clinics elsewhere may.

Shapes accepted everywhere:

* ``business_hours``: ``{weekday: (opens, closes)}`` or ``{weekday: [(opens, closes), …]}``
  (``date.weekday()``: 0 = Monday); a weekday that is missing or empty is closed.
* ``availability``: weekly windows, ``WeeklyWindow`` or ``(weekday, start, end)`` tuples.
* ``leaves`` and ``busy``: ``(start, end)`` pairs of aware datetimes, half-open.

Intervals are half-open: a slot may start exactly when a booking ends.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.domain.text import N_, Text

__all__ = [
    "WeeklyWindow",
    "free_slots",
    "team_free_slots",
    "check_slot",
    "on_grid",
    "window_starts",
    "day_windows",
    "within_weekly_hours",
    "format_hours",
    "normalise_hours",
    "MSG_WEEKEND",
    "MSG_CLOSED_DAY",
    "MSG_PROVIDER_UNAVAILABLE",
    "MSG_TAKEN",
    "MSG_PAST",
    "MSG_HOURS",
    "MSG_LEAD",
    "MSG_OFF_GRID",
    "MSG_CHOOSE_PROVIDER",
    "MSG_SERVICE_UNAVAILABLE",
    "hours_message",
    "LIST_DAYS_AHEAD",
    "listed_day",
    "MSG_BEYOND_LISTED",
    "LIST_SPAN_DAYS",
    "BOOK_DAYS_AHEAD",
    "last_bookable_day",
    "MSG_BEYOND_HORIZON",
]

UTC = UTC

MSG_WEEKEND = N_("Appointments not available on weekends")
MSG_CLOSED_DAY = N_("Appointments not available on that day")
MSG_PROVIDER_UNAVAILABLE = N_("Provider is not available at that time")
MSG_TAKEN = N_("Slot no longer available")
MSG_PAST = N_("That time has already passed")
MSG_HOURS = N_("Appointments only available %(hours)s")
MSG_LEAD = N_("Appointments must be booked at least %(minutes)s minutes ahead")
# A start the free-times list never shows (a crafted post, or a page from before the hours
# changed): on the patient's paths only (docs/booking.md "The grid").
MSG_OFF_GRID = N_("Choose one of the times shown")
MSG_CHOOSE_PROVIDER = N_("Choose a provider")
MSG_SERVICE_UNAVAILABLE = N_("This service is not available at that clinic")
MSG_BEYOND_LISTED = N_("Free times are shown at most %(days)s days ahead.")
MSG_BEYOND_HORIZON = N_("Appointments can be booked at most %(days)s days ahead")

# How far ahead a list of LIST_SPAN_DAYS days starts at most (the search, the admin's
# picker, a move page; a day's times page, one day long, up to the horizon): a day asked
# beyond is the last one, so that no date arithmetic on a typed day (9999-12-31 + 7 days)
# leaves Python's date range.
LIST_DAYS_AHEAD = 90
# How many days a free-times list shows from the day it starts on (the search, the admin's
# picker, the move and rebook pages; a day's times page shows one).
LIST_SPAN_DAYS = 7
# The booking horizon: a start is bookable only on a day (at the clinic) no later than
# today + BOOK_DAYS_AHEAD, the last day a list can show (one starting LIST_DAYS_AHEAD days
# ahead, LIST_SPAN_DAYS long). Every time a list shows is bookable and nothing beyond is:
# a typed or crafted start in 2099 would escape the checks that look a bounded distance
# ahead (catalog.checks.AHEAD), and reminders, payouts and policy versions assume a
# clinic's months, not decades (docs/booking.md "Rules and messages").
BOOK_DAYS_AHEAD = LIST_DAYS_AHEAD + LIST_SPAN_DAYS - 1


def last_bookable_day(today: date) -> date:
    """The last local day a start may be booked on, ``today`` being the clinic's."""
    return today + timedelta(days=BOOK_DAYS_AHEAD)


def listed_day(asked: date, today: date, span: int = LIST_SPAN_DAYS) -> date:
    """The day a free-times list of ``span`` days starts on: ``asked`` kept within today …
    the day from which the list ends on the horizon (today + ``LIST_DAYS_AHEAD`` for the
    usual span; a one-day list may start on the last bookable day)."""
    return min(max(asked, today), last_bookable_day(today) - timedelta(days=span - 1))


@dataclass(frozen=True)
class WeeklyWindow:
    """A provider's recurring working window on one weekday, local wall-clock time."""

    weekday: int
    start: time
    end: time

    def __post_init__(self):
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) … 6 (Sunday)")
        if not self.start < self.end:
            raise ValueError("a window must start before it ends")


Interval = tuple[datetime, datetime]


# --- normalising inputs -------------------------------------------------------------------


def _zone(tz) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(str(tz))


def normalise_hours(business_hours: Mapping) -> dict[int, list[tuple[time, time]]]:
    """``{weekday: [(opens, closes), …]}`` sorted, whatever shape came in."""
    out: dict[int, list[tuple[time, time]]] = {}
    for weekday, value in (business_hours or {}).items():
        if not value:
            continue
        windows = [value] if isinstance(value[0], time) else list(value)
        for opens, closes in windows:
            if not opens < closes:
                raise ValueError("opening must be before closing")
        out[int(weekday)] = _merge_times(windows)
    return out


def _merge_times(windows) -> list[tuple[time, time]]:
    """Sorted windows with touching or overlapping ones joined (9–12 + 12–15 = 9–15), so a
    slot may run across the seam."""
    merged: list[list[time]] = []
    for s, e in sorted(windows):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _windows(availability: Iterable) -> dict[int, list[tuple[time, time]]]:
    out: dict[int, list[tuple[time, time]]] = {}
    for w in availability:
        if not isinstance(w, WeeklyWindow):
            w = (
                WeeklyWindow(*w)
                if isinstance(w, (tuple, list))
                else WeeklyWindow(w.weekday, w.start, w.end)
            )
        out.setdefault(w.weekday, []).append((w.start, w.end))
    return {weekday: _merge_times(ws) for weekday, ws in out.items()}


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of aware intervals (empty ones dropped)."""
    items = sorted((_aware(s, "interval start"), _aware(e, "interval end")) for s, e in intervals)
    merged: list[list[datetime]] = []
    for s, e in items:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


class _Blocked:
    """Merged blocked intervals with an O(log n) overlap test."""

    def __init__(self, intervals: Iterable[Interval]):
        self.intervals = _merge(intervals)
        self.starts = [s for s, _ in self.intervals]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # The last blocked interval starting before `end` is the only one that can overlap
        # (they are disjoint and sorted).
        i = bisect_right(self.starts, end) - 1
        while i >= 0:
            s, e = self.intervals[i]
            if s < end and start < e:
                return True
            if e <= start:
                return False
            i -= 1
        return False


def _intersect(a: list[tuple], b: list[tuple]) -> list[tuple]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return sorted(out)


def _local_to_utc(day: date, t: time, zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time is its first occurrence; a non-existent one (spring
    # forward gap) maps to the instant the pre-transition offset gives it.
    return datetime.combine(day, t, tzinfo=zone).astimezone(UTC)


def day_windows(
    day: date, clinic_tz, business_hours: Mapping, availabilities: Sequence[Iterable]
) -> list[Interval]:
    """The absolute UTC intervals of ``day`` (local date) in which the clinic is open and
    every given provider works: business hours ∩ availability₁ ∩ availability₂ …"""
    zone = _zone(clinic_tz)
    windows = normalise_hours(business_hours).get(day.weekday(), [])
    for availability in availabilities:
        windows = _intersect(windows, _windows(availability).get(day.weekday(), []))
    return [(_local_to_utc(day, s, zone), _local_to_utc(day, e, zone)) for s, e in windows]


def within_weekly_hours(start: datetime, end: datetime, clinic_tz, availability: Iterable) -> bool:
    """Whether the provider works for the whole of [start, end): it lies inside one of the
    weekly windows (touching ones joined) on ``start``'s local day in the clinic's zone.
    (A change of weekly hours is refused over the bookings it would leave outside them;
    the claims' trigger asks the same of every new claim: docs/booking.md.)"""
    zone = _zone(clinic_tz)
    start, end = _aware(start, "start"), _aware(end, "end")
    day = start.astimezone(zone).date()
    return any(
        _local_to_utc(day, s, zone) <= start and end <= _local_to_utc(day, e, zone)
        for s, e in _windows(availability).get(day.weekday(), [])
    )


def _dates(date_range) -> Iterable[date]:
    first, last = date_range
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# --- free slots ---------------------------------------------------------------------------


def team_free_slots(
    date_range: tuple[date, date],
    clinic_tz,
    business_hours: Mapping,
    availabilities: Sequence[Iterable],
    leaves: Iterable[Interval] = (),
    busy: Iterable[Interval] = (),
    duration: timedelta = timedelta(minutes=30),
    step: timedelta | None = None,
    now: datetime | None = None,
    min_lead: timedelta = timedelta(0),
) -> list[datetime]:
    """Start times (aware UTC, ascending) of slots in which *every* provider is free.

    ``availabilities`` holds one weekly-window list per provider (their hours at this
    clinic); ``leaves`` and ``busy`` are everyone's blocked intervals together (one
    provider away or busy blocks the team). ``date_range`` is an inclusive pair of local
    dates. The slot grid starts at each window's start and moves by ``step`` (default:
    ``duration``). ``now`` (required) plus ``min_lead`` is the earliest allowed start; the
    last day is at most the booking horizon's (``last_bookable_day`` of ``now``'s date at
    the clinic), so every slot listed passes :func:`check_slot`.
    """
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    step = step or duration
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    if now is None:
        raise ValueError("now is required (pass the app's clock)")
    earliest = _aware(now, "now") + min_lead
    # Never past the horizon check_slot enforces: a list from the search's last listed day
    # in IST would show a day more at a clinic west of India (its today is IST's yesterday).
    horizon = last_bookable_day(_aware(now, "now").astimezone(_zone(clinic_tz)).date())
    date_range = (date_range[0], min(date_range[1], horizon))
    blocked = _Blocked(list(leaves) + list(busy))
    slots: list[datetime] = []
    for day in _dates(date_range):
        for open_at, close_at in day_windows(day, clinic_tz, business_hours, availabilities):
            for start in window_starts(open_at, close_at, duration, step, earliest):
                if not blocked.overlaps(start, start + duration):
                    slots.append(start)
    return sorted(set(slots))


def window_starts(
    open_at: datetime,
    close_at: datetime,
    duration: timedelta,
    step: timedelta,
    earliest: datetime | None = None,
) -> Iterable[datetime]:
    """The slot grid of one window (aware UTC): its opening, then every ``step`` while a
    slot of ``duration`` fits, from the first not before ``earliest``. The one grid: the
    free-times lists and :func:`on_grid` both walk it, so they cannot disagree."""
    start = open_at
    if earliest is not None and start < earliest:
        # Jump along this window's grid to the first start not in the past.
        behind = -(-(earliest - start) // step)
        start = start + behind * step
    while start + duration <= close_at:
        yield start
        start += step


def on_grid(
    start: datetime,
    duration: timedelta,
    step: timedelta,
    clinic_tz,
    business_hours: Mapping,
    availabilities: Sequence[Iterable],
) -> bool:
    """Whether a free-times list with this ``step`` could show ``start``: a start of the
    grid (:func:`window_starts`) of the window of its local day (the clinic's hours ∩
    every provider's, as :func:`team_free_slots` builds them) that holds the slot."""
    start = _aware(start, "start")
    zone = _zone(clinic_tz)
    day = start.astimezone(zone).date()
    for open_at, close_at in day_windows(day, zone, business_hours, availabilities):
        if open_at <= start < close_at:
            return (
                next(iter(window_starts(open_at, close_at, duration, step, start)), None) == start
            )
    return False


def free_slots(
    date_range: tuple[date, date],
    clinic_tz,
    business_hours: Mapping,
    availability: Iterable,
    leaves: Iterable[Interval] = (),
    busy: Iterable[Interval] = (),
    duration: timedelta = timedelta(minutes=30),
    step: timedelta | None = None,
    now: datetime | None = None,
    min_lead: timedelta = timedelta(0),
) -> list[datetime]:
    """Start times (aware UTC, ascending) of one provider's free slots; see
    :func:`team_free_slots`."""
    return team_free_slots(
        date_range,
        clinic_tz,
        business_hours,
        [list(availability)],
        leaves,
        busy,
        duration,
        step,
        now,
        min_lead,
    )


# --- checking one requested slot ----------------------------------------------------------


def _clock(t: time) -> str:
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def format_hours(windows: Sequence[tuple[time, time]]) -> str:
    """``[(09:00, 18:00)]`` → ``"9 AM - 6 PM"``; several windows joined with commas."""
    return ", ".join(f"{_clock(s)} - {_clock(e)}" for s, e in windows)


def hours_message(windows: Sequence[tuple[time, time]]) -> Text:
    return Text(MSG_HOURS, hours=format_hours(windows))


def _closed_message(weekday: int, hours: Mapping[int, list]) -> str:
    # The policy's wording when the clinic keeps the usual weekend; a clinic closed on
    # another day (or open on Saturday but not Sunday) gets the neutral wording.
    if weekday in (5, 6) and not hours.get(5) and not hours.get(6):
        return MSG_WEEKEND
    return MSG_CLOSED_DAY


def check_slot(
    start: datetime,
    duration: timedelta,
    clinic_tz,
    business_hours: Mapping,
    availabilities: Sequence[Iterable],
    leaves: Iterable[Interval] = (),
    busy: Iterable[Interval] = (),
    now: datetime | None = None,
    min_lead: timedelta = timedelta(0),
    step: timedelta | None = None,
) -> list[str]:
    """The policy's messages for a requested slot, most fundamental first; ``[]`` = bookable.

    ``availabilities``: one weekly-window list per provider (a team passes several). The
    messages: closed day (weekends / that day), outside the clinic's hours ("Appointments
    only available 9 AM - 6 PM", built from that day's hours), in the past or inside the
    lead time, "Provider is not available at that time" (outside a provider's weekly
    hours or on leave), "Slot no longer available" (overlaps a live hold or booking).
    Before all of them (with ``now``): a day beyond the booking horizon
    (``BOOK_DAYS_AHEAD``, the clinic's today) is refused whatever else it is.
    ``step`` (the list's): a start off the grid the free-times list shows is refused, "Choose
    one of the times shown" (:func:`on_grid`), after the provider's hours and before busy;
    without it (the admin's desk) any start inside the rules may be booked.
    """
    start = _aware(start, "start")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    end = start + duration
    zone = _zone(clinic_tz)
    day = start.astimezone(zone).date()
    if now is not None and day > last_bookable_day(_aware(now, "now").astimezone(zone).date()):
        return [Text(MSG_BEYOND_HORIZON, days=BOOK_DAYS_AHEAD)]
    hours = normalise_hours(business_hours)
    todays = hours.get(day.weekday(), [])
    if not todays:
        return [_closed_message(day.weekday(), hours)]

    def inside(intervals):
        return any(s <= start and end <= e for s, e in intervals)

    messages = []
    if not inside(day_windows(day, zone, hours, [])):
        messages.append(hours_message(todays))
    if now is not None:
        now = _aware(now, "now")
        if start < now:
            messages.append(MSG_PAST)
        elif start < now + min_lead:
            minutes = int(min_lead.total_seconds() // 60)
            messages.append(Text(MSG_LEAD, minutes=minutes))
    if messages:
        return messages
    provider_free = all(inside(day_windows(day, zone, hours, [a])) for a in availabilities)
    if not provider_free or _Blocked(leaves).overlaps(start, end):
        messages.append(MSG_PROVIDER_UNAVAILABLE)
    elif step is not None and not on_grid(start, duration, step, zone, hours, availabilities):
        messages.append(MSG_OFF_GRID)
    elif _Blocked(busy).overlaps(start, end):
        messages.append(MSG_TAKEN)
    return messages
