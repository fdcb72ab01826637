"""iCalendar (RFC 5545) files for confirmed visits, built with ``icalendar``.

The library does the RFC's part (CRLF line ends, folding at 75 octets without splitting a
UTF-8 sequence, TEXT escaping, UTC times as ``YYYYMMDDTHHMMSSZ``); this module says what a
visit's event holds. UIDs are stable per individual booking, so a re-sent file (after a
reschedule, with a higher SEQUENCE: ``next_sequence``) updates the entry already in the
patient's calendar, and a cancellation's (METHOD:CANCEL, higher still) removes it.

Its words are the current language's: callers build the file inside
``wording.speaking_to(recipient)``, as the notice it goes with. An online visit's LOCATION
is its meeting link, or "Online" until it has one (never the clinic's street address).
A dependent's event names them, in its title and its description, as the notice does:
a guardian of two children booked at one clinic can tell from the calendar whom to take.
The files go to the account holder only (providers get notices, no calendar files)."""

from datetime import UTC
from functools import cache

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from icalendar import Calendar, Event
from icalendar.parser import Contentline

from portal.db import insert_for, utcnow
from portal.extensions import db
from portal.notify.models import CalendarSequence
from portal.notify.wording import place, whose

PRODID = "-//Clinic Portal//Visits//EN"


def fold(line):
    """One content line folded to at most 75 octets per physical line."""
    return Contentline(line).to_ical().decode("utf-8")


def uid_for(booking_id):
    host = current_app.config.get("PUBLIC_URL", "").split("://")[-1].split("/")[0].split(":")[0]
    return f"booking-{booking_id}@{host or 'clinic-portal'}"


def _utc(value):
    return value.astimezone(UTC)


def event(booking, *, sequence=0, url=None, stamp=None, status="CONFIRMED"):
    providers = ", ".join(p.display_name for p in booking.providers)
    clinic = booking.clinic
    location = place(booking)
    description = (
        [_("For %(name)s", name=booking.visit.for_name)] if booking.visit.dependent_id else []
    )
    description.append(
        _("%(service)s with %(providers)s", service=booking.service.name, providers=providers)
        if providers
        else booking.service.name
    )
    if booking.meet_link:
        description.append(_("Join online: %(link)s", link=booking.meet_link))
    if url:
        description.append(_("Details: %(link)s", link=url))
    entry = Event()
    entry.add("uid", uid_for(booking.id))
    entry.add("dtstamp", _utc(stamp or utcnow()))
    entry.add("dtstart", _utc(booking.start_at))
    entry.add("dtend", _utc(booking.end_at))
    entry.add("sequence", int(sequence))
    entry.add("status", status)
    entry.add("summary", f"{whose(booking)} – {clinic.name}")
    entry.add("location", location)
    entry.add("description", "\n".join(description))
    if url:
        entry.add("url", url)
    return entry


def calendar(bookings, *, url=None, sequence=0, method="PUBLISH"):
    """The text of a VCALENDAR with one VEVENT per booking. ``method="CANCEL"``: the
    events are cancelled (STATUS:CANCELLED, same UIDs), so a calendar that took the
    confirmation's file removes them."""
    status = "CANCELLED" if method == "CANCEL" else "CONFIRMED"
    stamp = utcnow()
    cal = Calendar()
    cal.add("version", "2.0")
    cal.add("prodid", PRODID)
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    for booking in bookings:
        cal.add_component(event(booking, sequence=sequence, url=url, stamp=stamp, status=status))
    return cal.to_ical().decode("utf-8")


def attachment(bookings, *, url=None, sequence=0, filename="visit.ics", method="PUBLISH"):
    """A mail attachment (see ``queue_mail(attachments=...)``)."""
    return {
        "filename": filename,
        "content_type": f"text/calendar; method={method}",
        "content": calendar(bookings, url=url, sequence=sequence, method=method),
    }


def next_sequence(booking_id):
    """A SEQUENCE above any sent before for the booking's UID: an update or a cancellation
    must outrank the file it replaces (RFC 5546), even within the same second. One more
    than the booking's last (``calendar_sequences``, one upsert in the caller's
    transaction, which holds the row until it commits), and never below the minutes since
    the epoch that files sent before that table carried: about 29.7 million in 2026,
    still under 2^31 (RFC 5545's INTEGER) in the year 6000."""
    floor = int(utcnow().timestamp() // 60)
    return db.session.execute(
        _next_sequence(db.engine.dialect.name), {"booking_id": booking_id, "floor": floor}
    ).scalar_one()


@cache
def _next_sequence(dialect_name):
    table = CalendarSequence.__table__
    floor = sa.bindparam("floor", type_=sa.Integer)
    insert = insert_for(dialect_name)(table).values(
        booking_id=sa.bindparam("booking_id", type_=sa.Integer), sequence=floor
    )
    return insert.on_conflict_do_update(
        index_elements=[table.c.booking_id],
        set_={
            "sequence": sa.case(
                (table.c.sequence >= floor, table.c.sequence + 1),
                else_=floor,
            )
        },
    ).returning(table.c.sequence)
