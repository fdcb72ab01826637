"""The start a page showed for a booking, checked when the page's action is confirmed:
an appointment moved meanwhile (another tab, the desk, the patient) is not acted on for a
page about its old time. A move carries it (``reschedule(..., shown_start=…)``); so does a
provider's cancellation (``refunds.shown``), which shares the stamp and the wording of
where the appointment is now."""

from zoneinfo import ZoneInfo

from portal.domain.text import DateText
from portal.domain.timezone import CLINIC_TZ


def start_stamp(item):
    """The start as whole seconds since the epoch: what a page's hidden field carries."""
    return int(item.start_at.timestamp())


def start_text(item):
    """The start at the clinic, as a message names where the appointment is now."""
    zone = ZoneInfo(item.clinic.timezone) if item.clinic and item.clinic.timezone else CLINIC_TZ
    return DateText(item.start_at.astimezone(zone).strftime("%a %d %b %Y, %H:%M"))
