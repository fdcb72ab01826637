"""The console's filters as plain values, and the date windows they stand for (clinic
days). Parsing what a person typed is the form's job (``web/forms/transactions.py``); the
rules (presets, the one-year limit, the window a reference reads) are here, testable
without a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from portal.domain.rates import financial_year_start
from portal.domain.timezone import CLINIC_TZ

TODAY, LAST_7_DAYS, THIS_MONTH, THIS_FY = "today", "7d", "month", "fy"
PRESETS = {
    TODAY: "Today",
    LAST_7_DAYS: "Last 7 days",
    THIS_MONTH: "This month",
    THIS_FY: "This financial year",
}
DEFAULT_PRESET = LAST_7_DAYS
MAX_RANGE_DAYS = 366  # "at most a year": a leap year's 366 days included

RECON_STATUSES = ("matched", "pending", "discrepancy", "resolved", "unchecked")


class FilterError(ValueError):
    pass


def preset_window(preset: str, today: date) -> tuple[date, date]:
    """First and last clinic day (inclusive) of a preset."""
    if preset == TODAY:
        return today, today
    if preset == LAST_7_DAYS:
        return today - timedelta(days=6), today
    if preset == THIS_MONTH:
        return today.replace(day=1), today
    if preset == THIS_FY:
        return financial_year_start(today), today
    raise FilterError(f"unknown preset {preset!r}")


def window_for(
    start: date | None, end: date | None, preset: str | None, today: date, *, reference: bool
) -> tuple[date | None, date | None]:
    """The clinic days a filter reads, from what was typed: typed dates first (only a
    start: up to today; only an end: that one day); else, with a reference, every date
    (``None, None``); else the preset's (the default: the last 7 days).

    A reference reads every date because it names its movements, read by index whatever
    their date (docs/transactions.md, "Finding a reference"): the one-year limit bounds
    what a sum reads, and a reference's rows are a handful. Re-read finding: it read the
    last 366 days, so a reference paid over a year ago found its visit on /admin/visits
    (no date bound) but the console that page links to listed nothing. The period select
    is ignored with it: it says "Last 7 days" on every page, so it comes with every submit."""
    if start is not None or end is not None:
        end = end or today
        return start or end, end
    if reference:
        return None, None
    return preset_window(preset or DEFAULT_PRESET, today)


def check_window(start: date, end: date) -> None:
    if start > end:
        raise FilterError("The start date is after the end date.")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise FilterError("A date range can cover at most a year (366 days).")


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in clinic time, as aware datetimes."""
    return (
        datetime.combine(start, time.min, CLINIC_TZ),
        datetime.combine(end + timedelta(days=1), time.min, CLINIC_TZ),
    )


@dataclass(frozen=True)
class MovementFilter:
    start: date | None  # None and None: every date (only with a reference: window_for)
    end: date | None
    type: str | None = None
    status: str | None = None
    party: str | None = None  # a patient's or provider's name or e-mail (part of it)
    visit_number: str | None = None
    reference: str | None = None  # a Razorpay id or a portal number (``references.parse``)
    recon: str | None = None
    min_amount: int | None = None  # paise
    max_amount: int | None = None

    @property
    def every_date(self) -> bool:
        return self.start is None

    def __post_init__(self):
        if self.start is None or self.end is None:
            # unbounded only where the rows are bounded by something else: a reference
            if self.start is not None or self.end is not None or not self.reference:
                raise FilterError("Choose a period or dates.")
        else:
            check_window(self.start, self.end)
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise FilterError("The smallest amount is above the largest.")
        if self.recon is not None and self.recon not in RECON_STATUSES:
            raise FilterError(f"unknown reconciliation status {self.recon!r}")
