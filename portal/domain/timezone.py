"""The clinic time zone, named once.

Each clinic row carries its own zone (``Clinic.timezone``); this is the default for new
clinics and the zone of rules that are Indian by law (the financial year, TDS)."""

from zoneinfo import ZoneInfo

CLINIC_TIMEZONE = "Asia/Kolkata"
CLINIC_TZ = ZoneInfo(CLINIC_TIMEZONE)
