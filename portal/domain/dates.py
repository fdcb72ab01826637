"""The span of dates a person may type: a date of birth of 1900 to a booking, a report or
a coupon's end in 2099. Beyond it nothing the portal keeps can be found, and the date
arithmetic of a filter (the day after, midnight IST in UTC) leaves Python's date range."""

from datetime import date

EARLIEST = date(1900, 1, 1)
LATEST = date(2099, 12, 31)


def in_span(day):
    """Whether ``day`` (a date, or a datetime's date) lies in [EARLIEST, LATEST]."""
    return EARLIEST <= (day.date() if hasattr(day, "date") else day) <= LATEST
