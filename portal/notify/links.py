"""Portal paths for notices (relative; mails make them absolute with PUBLIC_URL).

Built from the URL map without a request, so they work inside jobs. Each audience has a
list of candidate endpoints, most specific first: the first that exists is used, so a
notice links to the visit page once that page exists and to the home page until then."""

from zoneinfo import ZoneInfo

from flask import current_app
from werkzeug.routing import BuildError

CANDIDATES = {
    "patient": (("patient.visit", "visit_id"), ("patient.visits", None), ("patient.home", None)),
    "provider": (
        ("provider.appointment", "booking_id"),
        ("provider.schedule", None),
        ("provider.home", None),
    ),
    "admin": (("admin.visit", "visit_id"), ("admin.visits", None), ("admin.home", None)),
}


def path(endpoint, **values):
    try:
        return current_app.url_map.bind("localhost").build(endpoint, values)
    except BuildError:
        return None


def visit_path(role, *, visit_id=None, booking_id=None, day=None):
    """The first candidate path of ``role`` that exists. ``day`` (the appointment's date at
    its clinic): the provider's schedule opens at that day (``?from=``), not at today's 14
    days, which a booking weeks ahead is not on."""
    ids = {"visit_id": visit_id, "booking_id": booking_id}
    for endpoint, arg in CANDIDATES.get(role, ()):
        if arg is not None and ids.get(arg) is None:
            continue
        values = {arg: ids[arg]} if arg else {}
        if endpoint == "provider.schedule" and day is not None:
            values["from"] = day.isoformat()
        found = path(endpoint, **values)
        if found:
            return found
    return None


def clinic_day(booking):
    """The booking's date at its clinic (where the provider's schedule puts it)."""
    return booking.start_at.astimezone(ZoneInfo(booking.clinic.timezone)).date()
