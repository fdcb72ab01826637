"""How one CSV cell is written: money as rupees from integer paise, times in clinic time
with their offset, and text that a spreadsheet would run as a formula neutralised."""

from portal.domain.timezone import CLINIC_TZ

# A spreadsheet treats a cell starting with one of these as a formula (or, for tab and
# carriage return, strips it and then does): OWASP "CSV injection".
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Text as a spreadsheet will show it, never run: a leading ``'`` before a formula
    character. ``None`` is an empty cell."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def rupees(paise):
    """``123456 -> "1234.56"``, ``-5 -> "-0.05"``: integer arithmetic, never a float.
    Our own numbers, so a leading minus is a number, not a formula."""
    if paise is None:
        return ""
    paise = int(paise)
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(paise), 100)
    return f"{sign}{whole}.{part:02d}"


def clinic_time(value, tz=CLINIC_TZ):
    """An aware UTC datetime as clinic wall-clock time with its offset:
    ``2026-11-03 14:05:00+05:30``. ``None`` is an empty cell."""
    if value is None:
        return ""
    return value.astimezone(tz).isoformat(sep=" ", timespec="seconds")


def day(value):
    return "" if value is None else value.isoformat()


def whole(value):
    return "" if value is None else str(int(value))
