"""Catalog use cases: clinics, specializations, providers, services, weekly availability,
leave, and the slot queries the find-a-doctor page and booking use.

Conventions are those of ``portal.accounts.service``: the acting user is passed explicitly;
each mutating function validates, changes, writes its audit row and commits once; a broken
rule raises ``ValidationError({field: message})`` (``FORM`` for the whole form) and nothing
is committed; a missing object (or another provider's row) raises ``NotFound``; a role that
may not act raises ``PermissionDenied``.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.accounts.models import ADMIN, PROVIDER
from portal.accounts.service import FORM, NotFound, PermissionDenied, ValidationError
from portal.audit.service import record
from portal.catalog import busy as busy_registry
from portal.catalog.models import (
    DEFAULT_HOURS, DEFAULT_TIMEZONE, DOCTOR, LAB_TEST, ONLINE, PAYOUT_SCHEDULES,
    PROVIDER_KINDS, SERVICE_KINDS, SERVICE_MODES, WEEKDAYS, WEEKLY, Availability, Clinic,
    ClinicHours, Leave, Provider, Service, Specialization, gstin_error, provider_clinics,
    provider_services, provider_specializations)
from portal.config import setting
from portal.db import utcnow
from portal.domain import slots as slot_rules
from portal.extensions import db

__all__ = [
    "FORM", "NotFound", "PermissionDenied", "ValidationError",
    "create_clinic", "update_clinic", "create_specialization", "update_specialization",
    "create_provider", "update_provider", "create_service", "update_service",
    "set_availability", "add_availability", "remove_availability", "add_leave", "remove_leave",
    "provider_for_user", "search_providers", "next_free_slots", "team_next_free_slots",
    "find_offers", "check_booking_slot", "slot_settings",
]

MAX_LEAVE = timedelta(days=366)
MIN_DURATION, MAX_DURATION = 5, 480


# --- helpers ------------------------------------------------------------------------------

def _require_admin(actor):
    if getattr(actor, "role", None) != ADMIN:
        raise PermissionDenied("Only administrators can change the catalog.")


def _load(model, obj_or_id, what):
    if isinstance(obj_or_id, model):
        return obj_or_id
    obj = db.session.get(model, obj_or_id) if obj_or_id is not None else None
    if obj is None:
        raise NotFound(what)
    return obj


def _provider_for_actor(actor, provider_or_id):
    """The provider row if the actor is an admin or that provider's own user; another
    provider's row is reported as missing, never as forbidden."""
    provider = _load(Provider, provider_or_id, "provider")
    role = getattr(actor, "role", None)
    if role == ADMIN:
        return provider
    if role == PROVIDER and provider.user_id == actor.id:
        return provider
    raise NotFound("provider")


def _text(value, field_name, errors, what, max_length, required=True):
    value = " ".join((value or "").split())
    if required and not value:
        errors[field_name] = f"Enter {what}."
    elif len(value) > max_length:
        errors[field_name] = f"Use at most {max_length} characters."
    return value


def _choice(value, choices, field_name, errors, what):
    if value not in choices:
        errors[field_name] = f"Choose {what}."
    return value


def _int(value, field_name, errors, low, high, message):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[field_name] = message
    return value


def _raise(errors):
    if errors:
        db.session.rollback()
        raise ValidationError(errors)


def _commit(unique_errors=None):
    """Commit; a unique constraint lost to a concurrent request becomes a field message."""
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise ValidationError(unique_errors or {FORM: "That conflicts with an existing entry."}) \
            from None


def _snapshot(obj, *names):
    out = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = value.isoformat() if isinstance(value, (time, date, datetime)) else value
    return out


def _hours_snapshot(hours):
    return {str(d): [o.strftime("%H:%M"), c.strftime("%H:%M")]
            for d, (o, c) in sorted(hours.items())}


# --- clinics ------------------------------------------------------------------------------

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
    if hours is not None and not cleaned and "hours" not in errors and not any(
            k.startswith("hours_") for k in errors):
        errors["hours"] = "Open the clinic on at least one day."
    return cleaned


def _check_clinic(data, errors, clinic_id=None):
    data["name"] = _text(data.get("name"), "name", errors, "the clinic's name", 120)
    data["city"] = _text(data.get("city"), "city", errors, "the city", 80)
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
        clash = sa.select(Clinic.id).where(sa.func.lower(Clinic.name) == data["name"].lower(),
                                           sa.func.lower(Clinic.city) == data["city"].lower())
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


def create_clinic(actor, *, name, city, address="", timezone=DEFAULT_TIMEZONE, gstin=None,
                  hours=None):
    """A new clinic; ``hours`` = ``{weekday: (opens, closes)}`` (default Mon–Fri 09–18)."""
    _require_admin(actor)
    errors = {}
    data = _check_clinic(dict(name=name, city=city, address=address, timezone=timezone,
                              gstin=gstin), errors)
    hours = _check_hours(DEFAULT_HOURS if hours is None else hours, errors)
    _raise(errors)
    clinic = Clinic(**data)
    _set_hours(clinic, hours)
    db.session.add(clinic)
    db.session.flush()
    record(actor, "clinic.create", "clinic", clinic.id,
           after={**_snapshot(clinic, *CLINIC_FIELDS), "hours": _hours_snapshot(hours)})
    _commit({"name": "A clinic with this name already exists in that city."})
    return clinic


def update_clinic(actor, clinic, **changes):
    """Change any of name, city, address, timezone, gstin, active, hours."""
    _require_admin(actor)
    clinic = _load(Clinic, clinic, "clinic")
    unknown = set(changes) - set(CLINIC_FIELDS) - {"hours"}
    if unknown:
        raise TypeError(f"unknown clinic fields: {sorted(unknown)}")
    before = {**_snapshot(clinic, *CLINIC_FIELDS),
              "hours": _hours_snapshot(clinic.business_hours())}
    errors = {}
    current = _snapshot(clinic, "name", "city", "address", "timezone", "gstin")
    data = _check_clinic({**current, **{k: v for k, v in changes.items()
                                        if k not in ("hours", "active")}}, errors, clinic.id)
    hours = _check_hours(changes["hours"], errors) if "hours" in changes else None
    _raise(errors)
    for key, value in data.items():
        setattr(clinic, key, value)
    if "active" in changes:
        clinic.active = bool(changes["active"])
    if hours is not None:
        _set_hours(clinic, hours)
    db.session.flush()
    after = {**_snapshot(clinic, *CLINIC_FIELDS),
             "hours": _hours_snapshot(hours if hours is not None else clinic.business_hours())}
    if after != before:
        record(actor, "clinic.update", "clinic", clinic.id, before=before, after=after)
    _commit({"name": "A clinic with this name already exists in that city."})
    return clinic


# --- specializations ----------------------------------------------------------------------

def _check_specialization(name, errors, spec_id=None):
    name = _text(name, "name", errors, "a name", 80)
    if "name" not in errors:
        clash = sa.select(Specialization.id).where(
            sa.func.lower(Specialization.name) == name.lower())
        if spec_id:
            clash = clash.where(Specialization.id != spec_id)
        if db.session.scalar(clash):
            errors["name"] = "This specialization already exists."
    return name


def create_specialization(actor, name):
    _require_admin(actor)
    errors = {}
    name = _check_specialization(name, errors)
    _raise(errors)
    spec = Specialization(name=name)
    db.session.add(spec)
    db.session.flush()
    record(actor, "specialization.create", "specialization", spec.id, after={"name": name})
    _commit({"name": "This specialization already exists."})
    return spec


def update_specialization(actor, spec, name):
    _require_admin(actor)
    spec = _load(Specialization, spec, "specialization")
    errors = {}
    name = _check_specialization(name, errors, spec.id)
    _raise(errors)
    if name != spec.name:
        record(actor, "specialization.update", "specialization", spec.id,
               before={"name": spec.name}, after={"name": name})
        spec.name = name
    _commit({"name": "This specialization already exists."})
    return spec


# --- providers ----------------------------------------------------------------------------

PROVIDER_FIELDS = ("kind", "display_name", "registration_no", "commission_bps",
                   "payout_schedule", "active", "bio")


def _rows(model, ids, field_name, errors, what):
    try:
        ids = [int(i) for i in (ids or ())]
    except (TypeError, ValueError):
        errors[field_name] = f"Choose {what} from the list."
        return []
    if not ids:
        return []
    rows = db.session.scalars(sa.select(model).where(model.id.in_(ids))).all()
    if len(rows) != len(set(ids)):
        errors[field_name] = f"Choose {what} from the list."
    return rows


def _check_provider(data, errors):
    data["kind"] = _choice(data.get("kind"), PROVIDER_KINDS, "kind", errors, "doctor or lab")
    data["display_name"] = _text(data.get("display_name"), "display_name", errors,
                                 "the name patients see", 120)
    reg = " ".join((data.get("registration_no") or "").split()) or None
    if data["kind"] == DOCTOR and not reg:
        errors["registration_no"] = "Enter the medical council registration number."
    elif reg and len(reg) > 40:
        errors["registration_no"] = "Use at most 40 characters."
    data["registration_no"] = reg
    data["commission_bps"] = _int(data.get("commission_bps"), "commission_bps", errors, 0, 10_000,
                                  "Enter a commission between 0% and 100%.")
    data["payout_schedule"] = _choice(data.get("payout_schedule"), PAYOUT_SCHEDULES,
                                      "payout_schedule", errors, "a payout schedule")
    data["bio"] = (data.get("bio") or "").strip()
    return data


def _check_links(clinics, specializations, services, errors):
    if not clinics and "clinic_ids" not in errors:
        errors["clinic_ids"] = "Choose at least one clinic."
    if not specializations and "specialization_ids" not in errors:
        errors["specialization_ids"] = "Choose at least one specialization."
    spec_ids = {s.id for s in specializations}
    wrong = [s.name for s in services if s.specialization_id not in spec_ids]
    if wrong and specializations:
        errors["service_ids"] = ("These services need a specialization the provider does not "
                                 "have: " + ", ".join(sorted(wrong)) + ".")


def create_provider(actor, *, email, name, kind=DOCTOR, display_name=None, registration_no=None,
                    clinic_ids=(), specialization_ids=(), service_ids=(), commission_bps=500,
                    payout_schedule=WEEKLY, bio="", phone=None, active=True):
    """Invite the provider's login (role provider) and create the profile, in one commit."""
    from portal.accounts import service as accounts
    _require_admin(actor)
    errors = {}
    data = _check_provider(dict(kind=kind, display_name=display_name or name,
                                registration_no=registration_no, commission_bps=commission_bps,
                                payout_schedule=payout_schedule, bio=bio), errors)
    clinics = _rows(Clinic, clinic_ids, "clinic_ids", errors, "clinics")
    specs = _rows(Specialization, specialization_ids, "specialization_ids", errors,
                  "specializations")
    services = _rows(Service, service_ids, "service_ids", errors, "services")
    _check_links(clinics, specs, services, errors)
    try:
        user = accounts.invite_user(email, name, PROVIDER, actor, phone=phone, commit=False)
    except ValidationError as exc:
        errors.update(exc.errors)
    _raise(errors)
    provider = Provider(user=user, active=bool(active), **data)
    provider.clinics, provider.specializations, provider.services = clinics, specs, services
    db.session.add(provider)
    db.session.flush()
    record(actor, "provider.create", "provider", provider.id,
           after={**_snapshot(provider, *PROVIDER_FIELDS), "user_id": user.id,
                  **_link_snapshot(provider)})
    _commit({"email": "An account with this email already exists."})
    return provider


def _link_snapshot(provider):
    return {"clinic_ids": sorted(c.id for c in provider.clinics),
            "specialization_ids": sorted(s.id for s in provider.specializations),
            "service_ids": sorted(s.id for s in provider.services)}


def update_provider(actor, provider, **changes):
    """Change profile fields and the clinic/specialization/service links (admin only)."""
    _require_admin(actor)
    provider = _load(Provider, provider, "provider")
    links = {"clinic_ids", "specialization_ids", "service_ids"}
    unknown = set(changes) - set(PROVIDER_FIELDS) - links
    if unknown:
        raise TypeError(f"unknown provider fields: {sorted(unknown)}")
    before = {**_snapshot(provider, *PROVIDER_FIELDS), **_link_snapshot(provider)}
    errors = {}
    data = _check_provider({**_snapshot(provider, *PROVIDER_FIELDS), **changes}, errors)
    clinics = (_rows(Clinic, changes["clinic_ids"], "clinic_ids", errors, "clinics")
               if "clinic_ids" in changes else list(provider.clinics))
    specs = (_rows(Specialization, changes["specialization_ids"], "specialization_ids", errors,
                   "specializations")
             if "specialization_ids" in changes else list(provider.specializations))
    services = (_rows(Service, changes["service_ids"], "service_ids", errors, "services")
                if "service_ids" in changes else list(provider.services))
    _check_links(clinics, specs, services, errors)
    _raise(errors)
    for key in PROVIDER_FIELDS:
        if key == "active":
            if "active" in changes:
                provider.active = bool(changes["active"])
        else:
            setattr(provider, key, data[key])
    provider.clinics, provider.specializations, provider.services = clinics, specs, services
    # Weekly hours at a clinic the provider no longer works at would be dead rows.
    clinic_ids = {c.id for c in clinics}
    for window in [w for w in provider.availability if w.clinic_id not in clinic_ids]:
        provider.availability.remove(window)
    db.session.flush()
    after = {**_snapshot(provider, *PROVIDER_FIELDS), **_link_snapshot(provider)}
    if after != before:
        record(actor, "provider.update", "provider", provider.id, before=before, after=after)
    _commit()
    return provider


def provider_for_user(user):
    """The provider profile of a signed-in provider user, or None."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(sa.select(Provider).where(Provider.user_id == user.id))


# --- services -----------------------------------------------------------------------------

SERVICE_FIELDS = ("name", "kind", "duration_minutes", "fee_paise", "mode", "specialization_id",
                  "taxable", "active", "description")


def _check_service(data, errors):
    data["name"] = _text(data.get("name"), "name", errors, "the service's name", 120)
    data["kind"] = _choice(data.get("kind"), SERVICE_KINDS, "kind", errors, "a kind of service")
    data["mode"] = _choice(data.get("mode"), SERVICE_MODES, "mode", errors, "in person or online")
    data["duration_minutes"] = _int(
        data.get("duration_minutes"), "duration_minutes", errors, MIN_DURATION, MAX_DURATION,
        f"Enter a duration from {MIN_DURATION} to {MAX_DURATION} minutes.")
    # Money is integer paise: a float here is a bug upstream, not a rounding question.
    data["fee_paise"] = _int(data.get("fee_paise"), "fee_paise", errors, 1, 10**12,
                             "Enter a fee above ₹0.")
    if data["kind"] == LAB_TEST and data["mode"] == ONLINE:
        errors["mode"] = "A lab test needs the patient in person."
    try:
        spec_id = int(data.get("specialization_id"))
    except (TypeError, ValueError):
        spec_id = None
    if spec_id is None or db.session.get(Specialization, spec_id) is None:
        errors["specialization_id"] = "Choose a specialization."
    else:
        data["specialization_id"] = spec_id
    data["taxable"] = bool(data.get("taxable"))
    data["description"] = (data.get("description") or "").strip()
    return data


def _check_service_providers(providers, spec_id, errors):
    wrong = [p.display_name for p in providers
             if spec_id not in {s.id for s in p.specializations}]
    if wrong:
        errors["provider_ids"] = ("These providers lack the service's specialization: "
                                  + ", ".join(sorted(wrong)) + ".")


def create_service(actor, *, name, kind, duration_minutes, fee_paise, mode, specialization_id,
                   taxable=False, description="", provider_ids=(), active=True):
    _require_admin(actor)
    errors = {}
    data = _check_service(dict(name=name, kind=kind, duration_minutes=duration_minutes,
                               fee_paise=fee_paise, mode=mode, taxable=taxable,
                               specialization_id=specialization_id, description=description),
                          errors)
    providers = _rows(Provider, provider_ids, "provider_ids", errors, "providers")
    if "specialization_id" not in errors:
        _check_service_providers(providers, data["specialization_id"], errors)
    _raise(errors)
    service = Service(active=bool(active), **data)
    service.providers = providers
    db.session.add(service)
    db.session.flush()
    record(actor, "service.create", "service", service.id,
           after={**_snapshot(service, *SERVICE_FIELDS),
                  "provider_ids": sorted(p.id for p in providers)})
    _commit()
    return service


def update_service(actor, service, **changes):
    _require_admin(actor)
    service = _load(Service, service, "service")
    unknown = set(changes) - set(SERVICE_FIELDS) - {"provider_ids"}
    if unknown:
        raise TypeError(f"unknown service fields: {sorted(unknown)}")
    snapshot = _snapshot(service, *SERVICE_FIELDS)
    before = {**snapshot, "provider_ids": sorted(p.id for p in service.providers)}
    errors = {}
    data = _check_service({**snapshot, **changes}, errors)
    providers = (_rows(Provider, changes["provider_ids"], "provider_ids", errors, "providers")
                 if "provider_ids" in changes else list(service.providers))
    if "specialization_id" not in errors:
        _check_service_providers(providers, data["specialization_id"], errors)
    _raise(errors)
    for key in SERVICE_FIELDS:
        if key == "active":
            if "active" in changes:
                service.active = bool(changes["active"])
        else:
            setattr(service, key, data[key])
    service.providers = providers
    db.session.flush()
    after = {**_snapshot(service, *SERVICE_FIELDS),
             "provider_ids": sorted(p.id for p in providers)}
    if after != before:
        record(actor, "service.update", "service", service.id, before=before, after=after)
    _commit()
    return service


# --- weekly availability -----------------------------------------------------------------

def _window_errors(provider, clinic, weekday, start, end, others):
    """Messages for one weekly window; ``others`` are the provider's other windows."""
    if not isinstance(weekday, int) or not 0 <= weekday <= 6:
        return {"weekday": "Choose a day."}
    if start is None or end is None:
        return {"start_time": "Enter the start and end times."}
    if not start < end:
        return {"end_time": "End after the start."}
    if clinic.id not in {c.id for c in provider.clinics}:
        return {"clinic_id": "Choose one of the provider's clinics."}
    hours = clinic.business_hours().get(weekday)
    if hours is None:
        return {"weekday": f"{clinic.name} is closed on {WEEKDAYS[weekday]}s."}
    if start < hours[0] or end > hours[1]:
        return {"start_time": f"{clinic.name} is open {slot_rules.format_hours([hours])} on "
                              f"{WEEKDAYS[weekday]}s."}
    for other in others:
        if other.weekday == weekday and other.start_time < end and start < other.end_time:
            where = "" if other.clinic_id == clinic.id else f" at {other.clinic.name}"
            return {"start_time": f"Overlaps {WEEKDAYS[weekday]} "
                                  f"{other.start_time:%H:%M}–{other.end_time:%H:%M}{where}."}
    return {}


def add_availability(actor, provider, clinic, weekday, start, end):
    """Add one weekly window (a provider for themselves, or an admin)."""
    provider = _provider_for_actor(actor, provider)
    clinic = _load(Clinic, clinic, "clinic")
    errors = _window_errors(provider, clinic, weekday, start, end, provider.availability)
    _raise(errors)
    window = Availability(provider=provider, clinic=clinic, weekday=weekday, start_time=start,
                          end_time=end)
    db.session.add(window)
    db.session.flush()
    record(actor, "availability.add", "provider", provider.id,
           after={"id": window.id, "clinic_id": clinic.id, "weekday": weekday,
                  "start": start.isoformat(), "end": end.isoformat()})
    _commit({"start_time": "You already have hours starting then on that day."})
    return window


def remove_availability(actor, window):
    window = _load(Availability, window, "availability")
    provider = _provider_for_actor(actor, window.provider)
    record(actor, "availability.remove", "provider", provider.id,
           before={"id": window.id, "clinic_id": window.clinic_id, "weekday": window.weekday,
                   "start": window.start_time.isoformat(), "end": window.end_time.isoformat()})
    provider.availability.remove(window)
    _commit()


def set_availability(actor, provider, clinic, windows):
    """Replace the provider's weekly hours at ``clinic`` with ``windows`` =
    ``[(weekday, start, end), …]``; errors are keyed ``window_<index>``."""
    provider = _provider_for_actor(actor, provider)
    clinic = _load(Clinic, clinic, "clinic")
    keep = [w for w in provider.availability if w.clinic_id != clinic.id]
    errors, new = {}, []
    for index, (weekday, start, end) in enumerate(windows):
        problem = _window_errors(provider, clinic, weekday, start, end, keep + new)
        if problem:
            errors[f"window_{index}"] = next(iter(problem.values()))
            continue
        new.append(Availability(clinic=clinic, weekday=weekday, start_time=start, end_time=end))
    _raise(errors)
    before = [_window_snapshot(w) for w in provider.availability if w.clinic_id == clinic.id]
    provider.availability = keep + new
    db.session.flush()
    record(actor, "availability.set", "provider", provider.id,
           before={"clinic_id": clinic.id, "windows": before},
           after={"clinic_id": clinic.id, "windows": [_window_snapshot(w) for w in new]})
    _commit()
    return new


def _window_snapshot(w):
    return [w.weekday, w.start_time.strftime("%H:%M"), w.end_time.strftime("%H:%M")]


# --- leave --------------------------------------------------------------------------------

def add_leave(actor, provider, starts_at, ends_at, reason=""):
    """Block a period (aware datetimes). Existing bookings in it are not touched here: the
    booking capability decides what happens to them."""
    provider = _provider_for_actor(actor, provider)
    errors = {}
    reason = _text(reason, "reason", errors, "a reason", 200, required=False)
    if starts_at is None or ends_at is None:
        errors["starts_at"] = "Enter when the leave starts and ends."
    elif starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("leave needs aware datetimes")
    elif not starts_at < ends_at:
        errors["ends_at"] = "End after the start."
    elif ends_at <= utcnow():
        errors["ends_at"] = "Leave must end in the future."
    elif ends_at - starts_at > MAX_LEAVE:
        errors["ends_at"] = "Leave can last at most a year; add another for longer."
    _raise(errors)
    leave = Leave(provider=provider, starts_at=starts_at, ends_at=ends_at, reason=reason)
    db.session.add(leave)
    db.session.flush()
    record(actor, "leave.add", "provider", provider.id,
           after={"id": leave.id, "starts_at": starts_at.isoformat(),
                  "ends_at": ends_at.isoformat(), "reason": reason})
    _commit()
    return leave


def remove_leave(actor, leave):
    leave = _load(Leave, leave, "leave")
    provider = _provider_for_actor(actor, leave.provider)
    record(actor, "leave.remove", "provider", provider.id,
           before={"id": leave.id, "starts_at": leave.starts_at.isoformat(),
                   "ends_at": leave.ends_at.isoformat(), "reason": leave.reason})
    provider.leaves.remove(leave)
    _commit()


# --- queries: find a doctor ---------------------------------------------------------------

def search_providers(city=None, clinic_id=None, specialization_id=None, service_id=None,
                     text=None):
    """Active providers matching every filter given, with clinics, specializations and
    services loaded in a fixed number of queries. ``text`` matches the provider's name,
    a specialization or a service name."""
    query = (sa.select(Provider).where(Provider.active.is_(True))
             .options(selectinload(Provider.clinics), selectinload(Provider.specializations),
                      selectinload(Provider.services))
             .order_by(Provider.display_name, Provider.id))
    clinic_q = (sa.select(provider_clinics.c.provider_id)
                .join(Clinic, Clinic.id == provider_clinics.c.clinic_id)
                .where(Clinic.active.is_(True)))
    if city:
        clinic_q = clinic_q.where(sa.func.lower(Clinic.city) == city.strip().lower())
    if clinic_id:
        clinic_q = clinic_q.where(Clinic.id == clinic_id)
    query = query.where(Provider.id.in_(clinic_q))
    if specialization_id:
        query = query.where(Provider.id.in_(
            sa.select(provider_specializations.c.provider_id)
            .where(provider_specializations.c.specialization_id == specialization_id)))
    if service_id:
        query = query.where(Provider.id.in_(
            sa.select(provider_services.c.provider_id)
            .join(Service, Service.id == provider_services.c.service_id)
            .where(Service.id == service_id, Service.active.is_(True))))
    text = " ".join((text or "").split())
    if text:
        like = f"%{text.lower()}%"
        query = query.where(sa.or_(
            sa.func.lower(Provider.display_name).like(like),
            Provider.id.in_(sa.select(provider_specializations.c.provider_id)
                            .join(Specialization)
                            .where(sa.func.lower(Specialization.name).like(like))),
            Provider.id.in_(sa.select(provider_services.c.provider_id)
                            .join(Service).where(sa.func.lower(Service.name).like(like))),
        ))
    return list(db.session.scalars(query))


def slot_settings():
    """(min_lead, max_step) from config: slots start at least SLOT_MIN_LEAD_MINUTES ahead
    (default 60) and every SLOT_STEP_MINUTES (default 30, or the duration when shorter)."""
    return (timedelta(minutes=int(setting("SLOT_MIN_LEAD_MINUTES"))),
            timedelta(minutes=int(setting("SLOT_STEP_MINUTES"))))


def _range_bounds(clinics, from_date, days):
    """The aware UTC span covering ``days`` local days from ``from_date`` in every clinic."""
    zones = {c.timezone for c in clinics} or {DEFAULT_TIMEZONE}
    starts = [datetime.combine(from_date, time(0), tzinfo=ZoneInfo(z)) for z in zones]
    ends = [datetime.combine(from_date + timedelta(days=days), time(0), tzinfo=ZoneInfo(z))
            for z in zones]
    return min(starts).astimezone(timezone.utc), max(ends).astimezone(timezone.utc)


@dataclass
class _Schedule:
    """Everything the slot maths needs about a set of providers over a period."""

    availability: dict = field(default_factory=lambda: defaultdict(list))  # (pid, cid) -> rows
    leaves: dict = field(default_factory=lambda: defaultdict(list))  # pid -> [(s, e)]
    busy: dict = field(default_factory=dict)  # pid -> [(s, e)]


def _load_schedule(provider_ids, clinic_ids, start, end, exclude=()):
    """Three queries (+ one per busy source) for any number of providers."""
    schedule = _Schedule()
    if not provider_ids:
        return schedule
    rows = db.session.scalars(sa.select(Availability).where(
        Availability.provider_id.in_(provider_ids), Availability.clinic_id.in_(clinic_ids)))
    for row in rows:
        schedule.availability[(row.provider_id, row.clinic_id)].append(
            slot_rules.WeeklyWindow(row.weekday, row.start_time, row.end_time))
    leaves = db.session.execute(sa.select(Leave.provider_id, Leave.starts_at, Leave.ends_at).where(
        Leave.provider_id.in_(provider_ids), Leave.starts_at < end, Leave.ends_at > start))
    for pid, s, e in leaves:
        schedule.leaves[pid].append((s, e))
    schedule.busy = busy_registry.busy_intervals(provider_ids, start, end)
    drop = {tuple(x) for x in exclude}
    if drop:
        schedule.busy = {pid: [(s, e) for s, e in spans if (pid, s, e) not in drop]
                         for pid, spans in schedule.busy.items()}
    return schedule


def _local_today(clinic, now):
    return now.astimezone(ZoneInfo(clinic.timezone)).date()


def _team_slots(provider_ids, service, clinic, schedule, from_date, days, limit, now):
    min_lead, max_step = slot_settings()
    duration = timedelta(minutes=service.duration_minutes)
    first = max(from_date, _local_today(clinic, now))
    last = from_date + timedelta(days=days - 1)
    if last < first:
        return []
    starts = slot_rules.team_free_slots(
        (first, last), clinic.timezone, clinic.business_hours(),
        [schedule.availability.get((pid, clinic.id), []) for pid in provider_ids],
        leaves=[iv for pid in provider_ids for iv in schedule.leaves.get(pid, [])],
        busy=[iv for pid in provider_ids for iv in schedule.busy.get(pid, [])],
        duration=duration, step=min(duration, max_step), now=now, min_lead=min_lead)
    return starts[:limit] if limit else starts


def next_free_slots(provider, service, clinic, from_date, days=7, limit=6, *, now=None):
    """The provider's next free start times (aware UTC) for ``service`` at ``clinic``,
    from the local date ``from_date`` for ``days`` days, at most ``limit``."""
    return team_next_free_slots([provider], service, clinic, from_date, days, limit, now=now)


def team_next_free_slots(providers, service, clinic, from_date, days=7, limit=6, *, now=None,
                         exclude=()):
    """As :func:`next_free_slots`, for a team: every provider free for the whole slot.
    ``exclude`` lists busy intervals ``(provider_id, start, end)`` to ignore (a booking
    being rescheduled does not block its own move)."""
    now = now or utcnow()
    ids = [p.id if isinstance(p, Provider) else int(p) for p in providers]
    start, end = _range_bounds([clinic], from_date, days)
    schedule = _load_schedule(ids, [clinic.id], start, end, exclude)
    return _team_slots(ids, service, clinic, schedule, from_date, days, limit, now)


def check_booking_slot(providers, service, clinic, start, *, now=None, exclude=()):
    """The policy's messages for booking ``service`` at ``clinic`` with ``providers`` (one,
    or a team) at ``start`` (aware); ``[]`` when bookable. Also refuses a provider who does
    not work at the clinic, offer the service, or have its specialization. ``exclude`` as in
    :func:`team_next_free_slots`. Call it inside the booking transaction; the database's
    exclusion constraint still decides races."""
    now = now or utcnow()
    providers = [_load(Provider, p, "provider") for p in providers]
    if not providers:
        return ["Choose a provider"]
    for p in providers:
        if (not p.active or clinic.id not in {c.id for c in p.clinics}
                or service.id not in {s.id for s in p.services}
                or service.specialization_id not in {s.id for s in p.specializations}):
            return [slot_rules.MSG_PROVIDER_UNAVAILABLE]
    if not service.active or not clinic.active:
        return ["This service is not available at that clinic"]
    duration = timedelta(minutes=service.duration_minutes)
    ids = [p.id for p in providers]
    schedule = _load_schedule(ids, [clinic.id], start - timedelta(days=1),
                              start + duration + timedelta(days=1), exclude)
    min_lead, _ = slot_settings()
    return slot_rules.check_slot(
        start, duration, clinic.timezone, clinic.business_hours(),
        [schedule.availability.get((pid, clinic.id), []) for pid in ids],
        leaves=[iv for pid in ids for iv in schedule.leaves.get(pid, [])],
        busy=[iv for pid in ids for iv in schedule.busy.get(pid, [])],
        now=now, min_lead=min_lead)


@dataclass
class Offer:
    """One bookable line on a provider's card: a service at a clinic and its next slots."""

    service: Service
    clinic: Clinic
    slots: list


def find_offers(providers, *, from_date, days=7, limit=4, city=None, clinic_id=None,
                service_id=None, now=None):
    """``{provider_id: [Offer, …]}`` for the find-a-doctor page: for each provider, each
    active service they offer (or just ``service_id``) at each matching active clinic, with
    the next ``limit`` free slots. Loads everything in a fixed number of queries."""
    now = now or utcnow()
    out = {p.id: [] for p in providers}
    plan = []
    for p in providers:
        clinics = [c for c in p.clinics if c.active
                   and (not city or c.city.lower() == city.strip().lower())
                   and (not clinic_id or c.id == clinic_id)]
        services = [s for s in p.services if s.active and (not service_id or s.id == service_id)]
        plan.extend((p, s, c) for s in services for c in clinics)
    if not plan:
        return out
    clinics = {c.id: c for _, _, c in plan}
    start, end = _range_bounds(clinics.values(), from_date, days)
    schedule = _load_schedule(list(out), list(clinics), start, end)
    for p, s, c in plan:
        slots = _team_slots([p.id], s, c, schedule, from_date, days, limit, now)
        out[p.id].append(Offer(service=s, clinic=c, slots=slots))
    return out
