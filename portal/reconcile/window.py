"""Reconciliation windows: whole clinic days, at most a year (plain functions)."""

from datetime import UTC, date, datetime, time, timedelta

from portal.domain.timezone import CLINIC_TZ

MAX_DAYS = 366  # "any range, at most a year" (a leap year's days included)


class WindowError(ValueError):
    """A range a run cannot have; the message is for the person who asked."""

    def __init__(self, message, field="first_day"):
        super().__init__(message)
        self.field = field


def day_window(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in clinic time, as aware UTC datetimes."""
    if last < first:
        raise WindowError("The last day must not be before the first day.", "last_day")
    if (last - first).days + 1 > MAX_DAYS:
        raise WindowError("A run covers at most a year (366 days).", "last_day")
    start = datetime.combine(first, time(0), CLINIC_TZ).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), CLINIC_TZ).astimezone(UTC)
    return start, end


def clinic_day(moment: datetime) -> date:
    """The clinic day a moment falls on (a day window's start is its day)."""
    return moment.astimezone(CLINIC_TZ).date()


def previous_clinic_day(now: datetime) -> date:
    return now.astimezone(CLINIC_TZ).date() - timedelta(days=1)


def daily_run_due(now: datetime, run_time: time) -> bool:
    """The daily run (for the day before) starts at the policy's run time, clinic time
    (02:00 by default)."""
    return now.astimezone(CLINIC_TZ).time() >= run_time


def days_due(yesterday: date, run_due: bool, first_run_day: date | None, catch_up_days: int):
    """The clinic days the daily schedule may run, newest first: ``yesterday`` once its run
    time has come (``run_due``), then the missed days before it back to the first
    scheduled run's day (``first_run_day``; None: none finished yet, so a first install
    does not run a week of empty days), at most ``catch_up_days`` back (further: an admin's
    range run)."""
    days = [yesterday] if run_due else []
    if first_run_day is None:
        return days
    first = max(first_run_day, yesterday - timedelta(days=catch_up_days))
    return days + [yesterday - timedelta(days=k) for k in range(1, (yesterday - first).days + 1)]
