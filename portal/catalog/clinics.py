"""Clinics and their opening hours, and specializations (admin only)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from portal.audit.service import record
from portal.catalog import busy, time_lock
from portal.catalog.checks import (
    AHEAD,
    LISTED,
    WHEN,
    admin_begun,
    bump_versions,
    changing,
    clean_name,
    has_begun,
    lapse_text,
    lock_for_edit,
    raise_errors,
    require_admin,
    snapshot,
)
from portal.catalog.models import (
    DEFAULT_HOURS,
    DEFAULT_TIMEZONE,
    WEEKDAYS,
    Availability,
    Clinic,
    ClinicHours,
    Specialization,
    gstin_error,
)
from portal.db import utcnow
from portal.domain.slots import within_weekly_hours
from portal.domain.text import PluralText
from portal.extensions import db


def _hours_snapshot(hours):
    return {
        str(d): [o.strftime("%H:%M"), c.strftime("%H:%M")] for d, (o, c) in sorted(hours.items())
    }


def _check_hours(hours, errors):
    """``{weekday: (opens, closes) | None}`` → cleaned dict; errors keyed ``hours_<weekday>``."""
    cleaned = {}
    for weekday, window in (hours or {}).items():
        if not window or not all(window):
            continue
        opens, closes = window
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            errors["hours"] = "Weekdays run from 0 (Monday) to 6 (Sunday)."
        elif not opens < closes:
            errors[f"hours_{weekday}"] = f"{WEEKDAYS[weekday]}: opening must be before closing."
        else:
            cleaned[weekday] = (opens, closes)
    if (
        hours is not None
        and not cleaned
        and "hours" not in errors
        and not any(k.startswith("hours_") for k in errors)
    ):
        errors["hours"] = "Open the clinic on at least one day."
    return cleaned


def _check_clinic(data, errors, clinic_id=None):
    data["name"] = clean_name(data.get("name"), "name", errors, "the clinic's name", 120)
    data["city"] = clean_name(data.get("city"), "city", errors, "the city", 80)
    data["address"] = (data.get("address") or "").strip()
    tz = (data.get("timezone") or DEFAULT_TIMEZONE).strip()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = "Choose a time zone such as Asia/Kolkata."
    data["timezone"] = tz
    gstin = (data.get("gstin") or "").replace(" ", "").upper() or None
    if gstin:
        problem = gstin_error(gstin)
        if problem:
            errors["gstin"] = problem
    data["gstin"] = gstin
    if "name" not in errors and "city" not in errors:
        clash = sa.select(Clinic.id).where(
            sa.func.lower(Clinic.name) == data["name"].lower(),
            sa.func.lower(Clinic.city) == data["city"].lower(),
        )
        if clinic_id:
            clash = clash.where(Clinic.id != clinic_id)
        if db.session.scalar(clash):
            errors["name"] = f"A clinic with this name already exists in {data['city']}."
    return data


def _set_hours(clinic, hours):
    by_day = {h.weekday: h for h in clinic.hours}
    for weekday in range(7):
        window = hours.get(weekday)
        row = by_day.get(weekday)
        if window is None and row is not None:
            clinic.hours.remove(row)
        elif window is not None and row is None:
            clinic.hours.append(ClinicHours(weekday=weekday, opens=window[0], closes=window[1]))
        elif window is not None:
            row.opens, row.closes = window


CLINIC_FIELDS = ("name", "city", "address", "timezone", "gstin", "active")


def create_clinic(
    actor, *, name, city, address="", timezone=DEFAULT_TIMEZONE, gstin=None, hours=None
):
    """A new clinic; ``hours`` = ``{weekday: (opens, closes)}`` (default Mon–Fri 09–18)."""
    with changing({"name": "A clinic with this name already exists in that city."}):
        require_admin(actor)
        errors = {}
        data = _check_clinic(
            dict(name=name, city=city, address=address, timezone=timezone, gstin=gstin), errors
        )
        hours = _check_hours(DEFAULT_HOURS if hours is None else hours, errors)
        raise_errors(errors)
        clinic = Clinic(**data)
        _set_hours(clinic, hours)
        db.session.add(clinic)
        db.session.flush()
        record(
            actor,
            "clinic.create",
            "clinic",
            clinic.id,
            after={**snapshot(clinic, *CLINIC_FIELDS), "hours": _hours_snapshot(hours)},
        )
        return clinic


# A clinic's deactivation, or opening hours (or a time zone) that leave bookings ahead
# outside them, over the live bookings there: each patient must first be told, as for a
# provider's (catalog.checks). Admin pages are English. A move keeps its clinic, so only a
# cancellation clears the way of a deactivation (review finding: it said "Cancel or move");
# one to other hours, or another time, can clear the hours' and the zone's.
MSG_CLOSE_OVER_ONE = (
    "There is 1 booking ahead at this clinic ({listed}). Cancel it first (the patient is "
    "refunded in full; moving it would keep this clinic), then deactivate the clinic."
)
MSG_CLOSE_OVER_MANY = (
    "There are {count} bookings ahead at this clinic ({listed}). Cancel them first (each "
    "patient is refunded in full; moving them would keep this clinic), then deactivate the "
    "clinic."
)
MSG_HOURS_OVER_ONE = (
    "There is 1 booking ahead at this clinic outside the new opening hours ({listed}). "
    "Cancel or move it first (a cancelled patient is refunded in full), then change the "
    "hours."
)
MSG_HOURS_OVER_MANY = (
    "There are {count} bookings ahead at this clinic outside the new opening hours "
    "({listed}). Cancel or move them first (a cancelled patient is refunded in full), then "
    "change the hours."
)
# The time zone alone changed (the hours as they were): said of the time zone, beside it.
MSG_ZONE_HOURS_OVER_ONE = (
    "There is 1 booking ahead at this clinic that the new time zone leaves outside the "
    "opening hours ({listed}). Cancel or move it first (a cancelled patient is refunded in "
    "full), then change the time zone."
)
MSG_ZONE_HOURS_OVER_MANY = (
    "There are {count} bookings ahead at this clinic that the new time zone leaves outside "
    "the opening hours ({listed}). Cancel or move them first (a cancelled patient is "
    "refunded in full), then change the time zone."
)
MSG_ZONE_OVER_ONE = (
    "There is 1 booking ahead at this clinic that the new time zone leaves outside its "
    "provider's weekly hours here ({listed}). Cancel or move it first (a cancelled patient "
    "is refunded in full), then change the time zone."
)
MSG_ZONE_OVER_MANY = (
    "There are {count} bookings ahead at this clinic that the new time zone leaves outside "
    "their providers' weekly hours here ({listed}). Cancel or move them first (a cancelled "
    "patient is refunded in full), then change the time zone."
)

# Bookings in the way that have already begun: counted apart, in the words of a provider's
# refusals with what an admin can do (``checks.admin_begun``: "cancel or move" cannot be
# followed). (review finding: the clinic's said "cancel or move" of them too.)
CLOSE_BEGUN = admin_begun("", "deactivate the clinic", whose="at this clinic")
HOURS_BEGUN = admin_begun("outside the new opening hours", "change the hours", "at this clinic")
ZONE_HOURS_BEGUN = admin_begun(
    "outside the opening hours in the new time zone", "change the time zone", "at this clinic"
)
ZONE_BEGUN = admin_begun(
    "outside its providers' weekly hours in the new time zone",
    "change the time zone",
    "at this clinic",
)

# Unpaid holds in the way (a patient paying for a time, or for a move's new time): greyed
# on the provider's schedule (a doctor's or a lab's, as catalog.checks says), nothing to
# cancel, each lapsing by itself unless paid; named apart after the bookings, or alone
# (try again once they lapse). They still refuse the change. (Review finding: they were
# said to be "on no schedule".)
MSG_ALSO_ONE = (
    "There is also 1 time held while a patient pays ({listed}), greyed on the provider's "
    "schedule; it lapses by itself at {lapses} unless paid."
)
MSG_ALSO_MANY = (
    "There are also {count} times held while patients pay ({listed}), greyed on their "
    "providers' schedules; each lapses by itself unless paid, the last at {lapses}."
)
MSG_HELD_ONE = (
    "1 patient is paying for a time at this clinic in the way of this change ({listed}); "
    "the hold lapses at {lapses}. Try again after it."
)
MSG_HELD_MANY = (
    "{count} times at this clinic in the way of this change are held while they are paid "
    "for ({listed}); the last hold lapses at {lapses}. Try again after it."
)


def _weekly(hours):
    return [(d, opens, closes) for d, (opens, closes) in hours.items()]


def _provider_windows(clinic_id, provider_ids):
    """``{provider_id: [(weekday, start, end), …]}``: their weekly hours at the clinic."""
    out = {pid: [] for pid in provider_ids}
    for pid, weekday, start, end in db.session.execute(
        sa.select(
            Availability.provider_id,
            Availability.weekday,
            Availability.start_time,
            Availability.end_time,
        ).where(Availability.clinic_id == clinic_id, Availability.provider_id.in_(provider_ids))
    ):
        out[pid].append((weekday, start, end))
    return out


def _listed(taken, zone):
    def one(b):
        said = f"visit {b.label}"
        if b.start is not None:
            said = f"{b.start.astimezone(zone):{WHEN}}, {said}"
        if b.moving_to:
            said += f", moving to {b.moving_to[0].astimezone(zone):{WHEN}}"
        return said

    return "; ".join(one(b) for b in taken[:LISTED]) + ("; …" if len(taken) > LISTED else "")


def _bookings_in_the_way(clinic, closing, old_hours, new_hours, new_zone):
    """The refusal of the clinic's change as ``(field, message)``, or None: its
    deactivation (``closing``) over any live booking ahead there; its opening hours
    (``old_hours`` → ``new_hours``, read in the zone ``new_zone``) over those ahead inside
    the old hours and not inside the new (a booking already outside the old hours is not
    this change's doing; the hours unchanged, the new zone is what left them outside, and
    it is said of the time zone); and a new time zone over those it leaves outside their providers'
    weekly hours here (wall-clock times in the clinic's zone, so they move with it: inside
    them in the old zone, not in the new). A booking counts once, its own time and a
    move's new time held for it both read (either one left out refuses), listed as
    "…, visit V…, moving to …". An unpaid hold counts (it may still be paid) but is named
    apart, with when the last lapses (``booked_refusal``); a booking ahead is one not yet ended.
    Times are said in the clinic's zone as the patients were told them (before a change
    of zone), each with its visit's number.

    Stale holds (``busy.release_stale_at_clinic``): a hold at the clinic whose time ran
    out by ``now`` but which the sweep has not reached, a visit's or a move's, is released
    (a capture arriving later is then a late payment), and the bookings are read live at
    the same ``now``, so no hold is neither counted nor released. Their visits and moves
    are locked before the providers' time locks (a hold locks its visit before that lock),
    and released after them (the money after the time, docs/booking.md).

    Locks (catalog.checks, "Lock order"; the caller holds the catalog's lock and the
    clinic's row): the lock on the time of every provider who could be booked here, taken
    last, before the bookings are read. A hold at this clinic needs the provider's weekly
    hours here (its slot check and the claims' trigger), so those providers, and those with
    live bookings ahead here (the set read first), are everyone whose claim here could be
    in flight: a hold that took its provider's lock first is committed and read, or one
    that comes after waits for this commit and its claims' trigger refuses it at a clinic
    now inactive or outside its hours. Their weekly hours here cannot change meanwhile (a
    change of them takes the catalog's lock first)."""
    now = utcnow()
    window = (now, now + AHEAD)
    # Read before the stale holds are released: it counts none of them either way.
    at_clinic = busy.clinic_bookings(clinic.id, *window, now=now)
    providers = set(
        db.session.scalars(
            sa.select(Availability.provider_id).where(Availability.clinic_id == clinic.id)
        )
    )
    providers.update(pid for b in at_clinic for pid in b.provider_ids)
    busy.release_stale_at_clinic(
        clinic.id, *window, now, lambda: time_lock.lock_providers(providers)
    )
    live = busy.clinic_bookings(clinic.id, *window, now=now)
    zone = ZoneInfo(clinic.timezone)
    # (booking, its times the change leaves out), for those it leaves out any.
    taken = [(b, b.spans) for b in live]
    field, words = "active", (MSG_CLOSE_OVER_ONE, MSG_CLOSE_OVER_MANY, CLOSE_BEGUN)
    if not closing:
        old, new = _weekly(old_hours), _weekly(new_hours)

        def left(which, outside):
            return [
                (b, spans) for b in which if (spans := [sp for sp in b.spans if outside(b, *sp)])
            ]

        outside_hours = left(
            live,
            lambda b, s, e: (
                within_weekly_hours(s, e, zone, old)
                and not within_weekly_hours(s, e, new_zone, new)
            ),
        )
        outside_providers = []
        if new_zone.key != zone.key:
            windows = _provider_windows(clinic.id, {p for b in live for p in b.provider_ids})
            counted = {id(b) for b, _ in outside_hours}
            outside_providers = left(
                [b for b in live if id(b) not in counted],
                lambda b, s, e: any(
                    within_weekly_hours(s, e, zone, windows[p])
                    and not within_weekly_hours(s, e, new_zone, windows[p])
                    for p in b.provider_ids
                ),
            )
        if outside_hours and new_hours == old_hours:
            taken = outside_hours
            words = (MSG_ZONE_HOURS_OVER_ONE, MSG_ZONE_HOURS_OVER_MANY, ZONE_HOURS_BEGUN)
            field = "timezone"
        elif outside_hours:
            taken = outside_hours
            field, words = "hours", (MSG_HOURS_OVER_ONE, MSG_HOURS_OVER_MANY, HOURS_BEGUN)
        else:
            taken = outside_providers
            field, words = "timezone", (MSG_ZONE_OVER_ONE, MSG_ZONE_OVER_MANY, ZONE_BEGUN)
    return booked_refusal(field, words, taken, zone, now)


def booked_refusal(field, words, taken, zone, now, held_words=(MSG_HELD_ONE, MSG_HELD_MANY)):
    """``(field, message)`` naming the bookings ahead in the way (``words``: one, many),
    apart those already begun (``checks.has_begun``; ``words``' ``admin_begun`` pairs,
    alone or after those ahead) and the unpaid holds (a booking whose times in the way all
    lapse by themselves: ``Booked.lapses``), or None; only holds: try again once the last
    lapses (``held_words``: one, many; a clinic's ``MSG_HELD_*``), as a provider's refusal
    says it
    (``checks.bookings_in_the_way``)."""
    one, many, (begun_words, also_begun) = words
    held = [(b, lapse) for b, spans in taken if (lapse := b.lapses(spans)) is not None]
    booked = [b for b, spans in taken if b.lapses(spans) is None]
    if not held and not booked:
        return None
    # Begun by its own time (a move's new time alone in the window: not begun).
    begun = [b for b in booked if b.start is not None and has_begun(b, now)]
    ahead = [b for b in booked if b not in begun]
    message = ""
    if ahead:
        message = (one if len(ahead) == 1 else many).format(
            count=len(ahead), listed=_listed(ahead, zone)
        )
    if begun:
        listed = _listed(begun, zone)
        if message:
            message = str(PluralText(*also_begun, len(begun), refusal=message, listed=listed))
        else:
            message = str(PluralText(*begun_words, len(begun), listed=listed))
    if held:
        lapses = lapse_text(max(lapse for _, lapse in held), zone, now)
        words = held_words if not booked else (MSG_ALSO_ONE, MSG_ALSO_MANY)
        said = (words[0] if len(held) == 1 else words[1]).format(
            count=len(held), listed=_listed([b for b, _ in held], zone), lapses=lapses
        )
        message = f"{message} {said}" if message else said
    return field, message


def update_clinic(actor, clinic, *, base_version=None, **changes):
    """Change any of name, city, address, timezone, gstin, active, hours. ``base_version``:
    the ``version`` the edit form was filled from; a clinic changed since is refused
    (``StaleEdit``: the form sends every field, so saving it would put back what the other
    administrator changed, a closed clinic reopened). A deactivation
    is refused over live bookings ahead at the clinic, and so are opening hours (or a time
    zone) that leave bookings ahead outside them, and a time zone that leaves them outside
    their providers' weekly hours here (``_bookings_in_the_way``, under the lock
    on the time of every provider who could be booked here: a hold at the same moment is
    read, or refused for the change by the claims' trigger). Locks in the catalog's order
    (``catalog.checks``, "Lock order"): the catalog's, the clinic's row, the providers'
    time."""
    with (
        time_lock.serialized(),
        changing({"name": "A clinic with this name already exists in that city."}),
    ):
        require_admin(actor)
        clinic = lock_for_edit(Clinic, clinic, "clinic", base_version)
        unknown = set(changes) - set(CLINIC_FIELDS) - {"hours"}
        if unknown:
            raise TypeError(f"unknown clinic fields: {sorted(unknown)}")
        old_hours = clinic.business_hours()
        before = {**snapshot(clinic, *CLINIC_FIELDS), "hours": _hours_snapshot(old_hours)}
        errors = {}
        current = snapshot(clinic, "name", "city", "address", "timezone", "gstin")
        data = _check_clinic(
            {**current, **{k: v for k, v in changes.items() if k not in ("hours", "active")}},
            errors,
            clinic.id,
        )
        hours = _check_hours(changes["hours"], errors) if "hours" in changes else None
        raise_errors(errors)
        closing = clinic.active and "active" in changes and not changes["active"]
        new_hours = old_hours if hours is None else hours
        if closing or new_hours != old_hours or data["timezone"] != clinic.timezone:
            clash = _bookings_in_the_way(
                clinic, closing, old_hours, new_hours, ZoneInfo(data["timezone"])
            )
            if clash:
                raise_errors(dict([clash]))
        for key, value in data.items():
            setattr(clinic, key, value)
        if "active" in changes:
            clinic.active = bool(changes["active"])
        if hours is not None:
            _set_hours(clinic, hours)
        db.session.flush()
        after = {
            **snapshot(clinic, *CLINIC_FIELDS),
            "hours": _hours_snapshot(hours if hours is not None else clinic.business_hours()),
        }
        if after != before:
            bump_versions([clinic])  # an edit form opened before would put it back
            record(actor, "clinic.update", "clinic", clinic.id, before=before, after=after)
            db.session.flush()
        return clinic


def _check_specialization(name, errors, spec_id=None):
    name = clean_name(name, "name", errors, "a name", 80)
    if "name" not in errors:
        clash = sa.select(Specialization.id).where(
            sa.func.lower(Specialization.name) == name.lower()
        )
        if spec_id:
            clash = clash.where(Specialization.id != spec_id)
        if db.session.scalar(clash):
            errors["name"] = "This specialization already exists."
    return name


def create_specialization(actor, name):
    with changing({"name": "This specialization already exists."}):
        require_admin(actor)
        errors = {}
        name = _check_specialization(name, errors)
        raise_errors(errors)
        spec = Specialization(name=name)
        db.session.add(spec)
        db.session.flush()
        record(actor, "specialization.create", "specialization", spec.id, after={"name": name})
        return spec


def update_specialization(actor, spec, name, *, base_version=None):
    """Rename a specialization (admin only); ``base_version`` as :func:`update_clinic`'s."""
    with changing({"name": "This specialization already exists."}):
        require_admin(actor)
        spec = lock_for_edit(Specialization, spec, "specialization", base_version)
        errors = {}
        name = _check_specialization(name, errors, spec.id)
        raise_errors(errors)
        if name != spec.name:
            record(
                actor,
                "specialization.update",
                "specialization",
                spec.id,
                before={"name": spec.name},
                after={"name": name},
            )
            spec.name = name
            bump_versions([spec])
            db.session.flush()
        return spec
