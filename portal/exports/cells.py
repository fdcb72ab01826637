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
    Our own numbers, so a leading minus is a number, not a formula. (On the hot path of a
    million-row export: ``%`` formatting is the cheapest.)"""
    if paise.__class__ is not int:
        if paise is None:
            return ""
        paise = int(paise)  # a SUM comes back as Decimal on PostgreSQL
    if paise >= 0:
        return "%d.%02d" % divmod(paise, 100)  # noqa: UP031 (fastest here)
    return "-%d.%02d" % divmod(-paise, 100)  # noqa: UP031


_OFFSETS = {}


def _offset_text(offset):
    text = _OFFSETS.get(offset)
    if text is None:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        text = _OFFSETS[offset] = f"{sign}{hours:02d}:{rest:02d}"
    return text


def clinic_time(value, tz=CLINIC_TZ):
    """An aware UTC datetime as clinic wall-clock time with its offset:
    ``2026-11-03 14:05:00+05:30``. ``None`` is an empty cell."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    return "%04d-%02d-%02d %02d:%02d:%02d%s" % (  # noqa: UP031 (fastest here)
        local.year,
        local.month,
        local.day,
        local.hour,
        local.minute,
        local.second,
        _offset_text(local.utcoffset()),
    )


def day(value):
    return "" if value is None else value.isoformat()


def whole(value):
    return "" if value is None else str(int(value))
