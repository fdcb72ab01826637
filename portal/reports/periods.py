"""Report filters read from the query string: each parser returns plain values or raises
``ExportError`` with the message the form shows beside the field."""

import unicodedata
from datetime import date, datetime, time, timedelta

from portal.accounts.service import without_direction
from portal.domain.dates import in_span
from portal.domain.rates import financial_year_bounds
from portal.domain.timezone import CLINIC_TZ
from portal.exports import ExportError

MSG_DATE = "Enter the date as YYYY-MM-DD, e.g. 2026-11-30"
MSG_MONTH = "Enter the month as YYYY-MM, e.g. 2026-11"
MSG_FY = "Enter the financial year as YYYY-YY, e.g. 2026-27"
MSG_QUARTER = "Choose a quarter: Q1 (Apr–Jun), Q2 (Jul–Sep), Q3 (Oct–Dec) or Q4 (Jan–Mar)"

MSG_TEXT = "Use letters, digits and punctuation only (no control characters)"
MAX_TEXT = 200

QUARTERS = ("Q1", "Q2", "Q3", "Q4")


def clean_text(text, field, limit=MAX_TEXT):
    """A free-text filter, trimmed and cut to ``limit``; control characters (a NUL would
    make PostgreSQL refuse the query) are a message, not a 500. Direction controls and
    marks (a term pasted from a phone app comes wrapped in them) are dropped, as every
    search or filter form drops them (``web.forms.base``): the audit viewer reads its
    filters here, and its form had matched the term without them."""
    text = without_direction(text or "").strip()[:limit]
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ExportError(MSG_TEXT, field=field)
    return text


def clinic_midnight(day):
    """00:00 clinic time on ``day`` as an aware datetime (compared with UTC columns)."""
    return datetime.combine(day, time(0), CLINIC_TZ)


def parse_day(text, field):
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        day = date.fromisoformat(text)
        if not in_span(day):
            raise ValueError
        return day
    except ValueError:
        raise ExportError(MSG_DATE, field=field) from None


def bounds(start, end):
    """The UTC-comparable half-open interval ``[start 00:00, end+1 00:00)`` clinic time."""
    return (
        clinic_midnight(start) if start else None,
        clinic_midnight(end + timedelta(days=1)) if end else None,
    )


def parse_month(text):
    """``"2026-11" -> date(2026, 11, 1)``."""
    text = (text or "").strip()
    try:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        first = date(int(year), int(month), 1)
        if not in_span(first):
            raise ValueError
        return first
    except ValueError:
        raise ExportError(MSG_MONTH, field="month") from None


def month_bounds(first):
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return clinic_midnight(first), clinic_midnight(following)


def parse_financial_year(text):
    text = (text or "").strip()
    try:
        start, end = financial_year_bounds(text)
        if not (in_span(start) and in_span(end)):
            raise ValueError
    except (ValueError, AttributeError):
        raise ExportError(MSG_FY, field="fy") from None
    return text


def quarter_bounds(fy, quarter):
    """Clinic-time bounds of ``Q1``…``Q4`` of financial year ``fy`` ("2026-27")."""
    start, _end = financial_year_bounds(fy)
    index = QUARTERS.index(quarter)
    first = date(start.year + (index == 3), (4 + 3 * index - 1) % 12 + 1, 1)
    following = date(first.year + (first.month >= 10), (first.month + 2) % 12 + 1, 1)
    return clinic_midnight(first), clinic_midnight(following)


def quarter_months(fy, quarter):
    """``"Apr–Jun 2026"``: the months of ``Q1``…``Q4`` of ``fy`` and their calendar year
    (Q4's is the next one: ``"Jan–Mar 2027"``), month names as strftime writes them (a
    page says them in Hindi with ``day_names``)."""
    low, high = quarter_bounds(fy, quarter)
    first, last = low.date(), (high - timedelta(days=1)).date()
    return f"{first:%b}–{last:%b} {first.year}"


def parse_quarters(text):
    text = (text or "").strip().upper()
    if not text:
        return QUARTERS
    if text not in QUARTERS:
        raise ExportError(MSG_QUARTER, field="quarter")
    return (text,)
