"""iCalendar (RFC 5545) files for confirmed visits, written by hand (no dependency).

What RFC 5545 asks and this honours: CRLF line ends (3.1); lines folded at 75 octets with
CRLF + one space, never inside a UTF-8 sequence (3.1); TEXT values escape backslash,
semicolon, comma and newline (3.3.11); UTC times as ``YYYYMMDDTHHMMSSZ`` (3.3.5);
VCALENDAR needs PRODID and VERSION (3.6); VEVENT needs UID and DTSTAMP (3.6.1).
UIDs are stable per individual booking, so a re-sent file (after a reschedule, with a
higher SEQUENCE) updates the entry already in the patient's calendar."""
from datetime import timezone

from flask import current_app

from portal.db import utcnow

PRODID = "-//Clinic Portal//Visits//EN"


def escape_text(value):
    return (str(value or "").replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold(line):
    """Fold one content line to at most 75 octets per physical line."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts, current, limit = [], b"", 75
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            parts.append(current.decode("utf-8"))
            current, limit = b"", 74  # continuation lines start with a space
        current += encoded
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def format_utc(value):
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def uid_for(booking_id):
    host = current_app.config.get("PUBLIC_URL", "").split("://")[-1].split("/")[0].split(":")[0]
    return f"booking-{booking_id}@{host or 'clinic-portal'}"


def event_lines(booking, *, sequence=0, url=None, stamp=None):
    providers = ", ".join(p.display_name for p in booking.providers)
    clinic = booking.clinic
    location = ", ".join(x for x in (clinic.name, clinic.address, clinic.city) if x)
    description = [f"{booking.service.name} with {providers}" if providers
                   else booking.service.name]
    if booking.meet_link:
        description.append(f"Join online: {booking.meet_link}")
    if url:
        description.append(f"Details: {url}")
    online = booking.meet_link if booking.service.is_online else None
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid_for(booking.id)}",
        f"DTSTAMP:{format_utc(stamp or utcnow())}",
        f"DTSTART:{format_utc(booking.start_at)}",
        f"DTEND:{format_utc(booking.end_at)}",
        f"SEQUENCE:{int(sequence)}",
        "STATUS:CONFIRMED",
        f"SUMMARY:{escape_text(booking.service.name + ' – ' + clinic.name)}",
        f"LOCATION:{escape_text(online if online else location)}",
        f"DESCRIPTION:{escape_text(chr(10).join(description))}",
    ]
    if url:
        lines.append(f"URL:{url}")
    lines.append("END:VEVENT")
    return lines


def calendar(bookings, *, url=None, sequence=0, method="PUBLISH"):
    """The text of a VCALENDAR with one VEVENT per booking."""
    stamp = utcnow()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN",
             f"METHOD:{method}"]
    for booking in bookings:
        lines.extend(event_lines(booking, sequence=sequence, url=url, stamp=stamp))
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def attachment(bookings, *, url=None, sequence=0, filename="visit.ics"):
    """A mail attachment (see ``queue_mail(attachments=...)``)."""
    return {"filename": filename, "content_type": "text/calendar; method=PUBLISH",
            "content": calendar(bookings, url=url, sequence=sequence)}
