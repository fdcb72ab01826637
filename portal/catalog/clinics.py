"""Clinics and their opening hours, and specializations (admin only)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from portal.audit.service import record
from portal.catalog.checks import changing, clean_text, load, raise_errors, require_admin, snapshot
from portal.catalog.models import (
    DEFAULT_HOURS,
    DEFAULT_TIMEZONE,
    WEEKDAYS,
    Clinic,
    ClinicHours,
    Specialization,
    gstin_error,
)
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
    data["name"] = clean_text(data.get("name"), "name", errors, "the clinic's name", 120)
    data["city"] = clean_text(data.get("city"), "city", errors, "the city", 80)
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


def update_clinic(actor, clinic, **changes):
    """Change any of name, city, address, timezone, gstin, active, hours."""
    with changing({"name": "A clinic with this name already exists in that city."}):
        require_admin(actor)
        clinic = load(Clinic, clinic, "clinic")
        unknown = set(changes) - set(CLINIC_FIELDS) - {"hours"}
        if unknown:
            raise TypeError(f"unknown clinic fields: {sorted(unknown)}")
        before = {
            **snapshot(clinic, *CLINIC_FIELDS),
            "hours": _hours_snapshot(clinic.business_hours()),
        }
        errors = {}
        current = snapshot(clinic, "name", "city", "address", "timezone", "gstin")
        data = _check_clinic(
            {**current, **{k: v for k, v in changes.items() if k not in ("hours", "active")}},
            errors,
            clinic.id,
        )
        hours = _check_hours(changes["hours"], errors) if "hours" in changes else None
        raise_errors(errors)
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
            record(actor, "clinic.update", "clinic", clinic.id, before=before, after=after)
        return clinic


def _check_specialization(name, errors, spec_id=None):
    name = clean_text(name, "name", errors, "a name", 80)
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


def update_specialization(actor, spec, name):
    with changing({"name": "This specialization already exists."}):
        require_admin(actor)
        spec = load(Specialization, spec, "specialization")
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
        return spec
