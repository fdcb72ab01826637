"""What pages show a value as: clinic times, status badges and labels (registered as Jinja
filters once, in ``portal.templating``; views use them for flash messages and choices)."""

from zoneinfo import ZoneInfo

from portal.catalog.models import DEFAULT_TIMEZONE

# The badge class (ok / warn / bad) for a status of any machine; StrEnum members are their
# stored strings, so one table serves bookings, visits, payments, refunds and payouts.
STATUS_BADGES = {
    "CONFIRMED": "ok",
    "COMPLETED": "ok",
    "STARTED": "ok",
    "SUCCESSFUL": "ok",
    "PROCESSED": "ok",
    "VALIDATED": "ok",
    "DONE": "ok",
    "PENDING_PAYMENT": "warn",
    "PENDING": "warn",
    "SCHEDULED": "warn",
    "DRAFT": "warn",
    "PARTIALLY_CANCELLED": "warn",
    "QUEUED": "warn",
    "PROCESSING": "warn",
    "FAILED": "bad",
    "REVERSED": "bad",
    "CANCELLED": "bad",
    "EXPIRED": "bad",
    "REJECTED": "bad",
}


def clinic_time(value, tz=None, fmt="%a %d %b %Y, %H:%M %Z"):
    """An aware datetime in the clinic's zone with its abbreviation: "Mon 02 Mar 2026,
    10:00 IST"."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(tz or DEFAULT_TIMEZONE)).strftime(fmt)


def status_badge(status):
    return STATUS_BADGES.get(str(status), "")


def status_label(status):
    """``PARTIALLY_CANCELLED`` → "Partially cancelled"."""
    return str(status or "").replace("_", " ").capitalize()
