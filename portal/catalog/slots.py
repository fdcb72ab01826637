"""Finding a doctor and a time: provider search, the next free slots of one provider or
a team, the offers on the find-a-doctor page, and the check a booking runs on its slot.
Everything loads in a fixed number of queries whatever the number of providers."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.catalog import busy as busy_registry
from portal.catalog import cache as catalog_cache
from portal.catalog.checks import load
from portal.catalog.models import (
    DEFAULT_TIMEZONE,
    Availability,
    Clinic,
    Leave,
    Provider,
    Service,
    Specialization,
    provider_clinics,
    provider_services,
    provider_specializations,
)
from portal.config import setting
from portal.db import contains_text, utcnow
from portal.domain import slots as slot_rules
from portal.extensions import db


def search_providers(
    city=None, clinic_id=None, specialization_id=None, service_id=None, text=None, attach=True
):
    """Active providers matching every filter given, with clinics, specializations and
    services loaded in a fixed number of queries. ``text`` matches the provider's name,
    a specialization or a service name. ``attach=False``: read-only copies, as
    ``catalog.cache.cached`` says (a page that only prints them)."""
    text = " ".join((text or "").split())
    key = ("search", (city or "").strip().lower(), clinic_id, specialization_id, service_id)
    # The query is built only on a miss: building it costs about what a hit does.
    return catalog_cache.cached(
        key + (text.lower(),),
        lambda: list(
            db.session.scalars(_search_query(city, clinic_id, specialization_id, service_id, text))
        ),
        attach=attach,
    )


def _search_query(city, clinic_id, specialization_id, service_id, text):
    query = (
        sa.select(Provider)
        .where(Provider.active.is_(True))
        .options(
            # The clinics' hours too: the slot maths reads them for every clinic shown.
            selectinload(Provider.clinics).selectinload(Clinic.hours),
            selectinload(Provider.specializations),
            selectinload(Provider.services),
        )
        .order_by(Provider.display_name, Provider.id)
    )
    clinic_q = (
        sa.select(provider_clinics.c.provider_id)
        .join(Clinic, Clinic.id == provider_clinics.c.clinic_id)
        .where(Clinic.active.is_(True))
    )
    if city:
        clinic_q = clinic_q.where(sa.func.lower(Clinic.city) == city.strip().lower())
    if clinic_id:
        clinic_q = clinic_q.where(Clinic.id == clinic_id)
    query = query.where(Provider.id.in_(clinic_q))
    if specialization_id:
        query = query.where(
            Provider.id.in_(
                sa.select(provider_specializations.c.provider_id).where(
                    provider_specializations.c.specialization_id == specialization_id
                )
            )
        )
    if service_id:
        query = query.where(
            Provider.id.in_(
                sa.select(provider_services.c.provider_id)
                .join(Service, Service.id == provider_services.c.service_id)
                .where(Service.id == service_id, Service.active.is_(True))
            )
        )
    if text:
        query = query.where(
            sa.or_(
                contains_text(Provider.display_name, text),
                Provider.id.in_(
                    sa.select(provider_specializations.c.provider_id)
                    .join(Specialization)
                    .where(contains_text(Specialization.name, text))
                ),
                Provider.id.in_(
                    sa.select(provider_services.c.provider_id)
                    .join(Service)
                    .where(contains_text(Service.name, text))
                ),
            )
        )
    return query


def slot_settings():
    """(min_lead, max_step) from config: slots start at least SLOT_MIN_LEAD_MINUTES ahead
    (default 60) and every SLOT_STEP_MINUTES (default 30, or the duration when shorter)."""
    return (
        timedelta(minutes=int(setting("SLOT_MIN_LEAD_MINUTES"))),
        timedelta(minutes=int(setting("SLOT_STEP_MINUTES"))),
    )


def slot_step(duration):
    """The grid's step for a slot of ``duration``: SLOT_STEP_MINUTES, or the duration when
    shorter. The free-times lists and the patient's grid check both take it from here."""
    _, max_step = slot_settings()
    return min(duration, max_step)


def slot_cutoff(starts):
    """The moment the first of ``starts`` can no longer be booked (its notice runs out),
    after which a list of free times showing it is out of date; None for no starts."""
    if not starts:
        return None
    min_lead, _ = slot_settings()
    return min(starts) - min_lead


def _range_bounds(clinics, from_date, days):
    """The aware UTC span covering ``days`` local days from ``from_date`` in every clinic."""
    zones = {c.timezone for c in clinics} or {DEFAULT_TIMEZONE}
    starts = [datetime.combine(from_date, time(0), tzinfo=ZoneInfo(z)) for z in zones]
    ends = [
        datetime.combine(from_date + timedelta(days=days), time(0), tzinfo=ZoneInfo(z))
        for z in zones
    ]
    return min(starts).astimezone(UTC), max(ends).astimezone(UTC)


@dataclass
class _Schedule:
    """Everything the slot maths needs about a set of providers over a period."""

    availability: dict = field(default_factory=lambda: defaultdict(list))  # (pid, cid) -> rows
    leaves: dict = field(default_factory=lambda: defaultdict(list))  # pid -> [(s, e)]
    busy: dict = field(default_factory=dict)  # pid -> [(s, e)]


@lru_cache(maxsize=1)
def _schedule_query(busy_generation):
    """Availability, leave and every busy interval of the providers in ONE query: a
    UNION ALL of rows (kind, provider, clinic, weekday, from, to, starts, ends) where each
    kind fills its own columns (the indexed ranges: availability by provider, leave by
    provider and period, bookings by provider and start). Built once on the busy window's
    bind parameters (and again when a busy source is registered): building it and its
    cache key cost about as much as running it."""
    w = busy_registry.Window
    no_time = sa.cast(sa.null(), Availability.start_time.type)
    no_at = sa.cast(sa.null(), Leave.starts_at.type)
    no_int = sa.cast(sa.null(), sa.Integer)
    parts = [
        sa.select(
            sa.literal_column("'a'").label("kind"),
            Availability.provider_id,
            Availability.clinic_id,
            Availability.weekday,
            Availability.start_time,
            Availability.end_time,
            no_at.label("starts_at"),
            no_at.label("ends_at"),
        ).where(
            Availability.provider_id.in_(w.provider_ids),
            Availability.clinic_id.in_(sa.bindparam("clinic_ids", expanding=True)),
        ),
        sa.select(
            sa.literal_column("'l'"),
            Leave.provider_id,
            no_int,
            no_int,
            no_time,
            no_time,
            Leave.starts_at,
            Leave.ends_at,
        ).where(
            Leave.provider_id.in_(w.provider_ids), Leave.starts_at < w.end, Leave.ends_at > w.start
        ),
    ]
    for query in busy_registry.busy_queries():
        busy = query.subquery()
        pid, s, e = list(busy.c)[:3]  # a fourth column (a hold's lapse) is not needed here
        parts.append(
            sa.select(sa.literal_column("'b'"), pid, no_int, no_int, no_time, no_time, s, e)
        )
    return sa.union_all(*parts)


def _load_schedule(provider_ids, clinic_ids, start, end, exclude=()):
    """One query (+ one per busy source that answers with rows) for any number of
    providers."""
    schedule = _Schedule()
    if not provider_ids:
        return schedule
    busy = {pid: [] for pid in provider_ids}
    params = busy_registry.window_values(provider_ids, start, end)
    params["clinic_ids"] = sorted(set(clinic_ids))
    rows = db.session.execute(_schedule_query(busy_registry.generation()), params)
    for kind, pid, clinic_id, weekday, opens, closes, s, e in rows:
        if kind == "a":
            schedule.availability[(pid, clinic_id)].append(
                slot_rules.WeeklyWindow(weekday, opens, closes)
            )
        elif kind == "l":
            schedule.leaves[pid].append((s, e))
        elif pid in busy and s < end and start < e:
            busy[pid].append((s, e))
    for pid, s, e in busy_registry.row_intervals(provider_ids, start, end):
        busy[pid].append((s, e))
    for spans in busy.values():
        spans.sort()
    for spans in schedule.availability.values():
        spans.sort(key=lambda w: (w.weekday, w.start))
    schedule.busy = busy
    drop = {tuple(x) for x in exclude}
    if drop:
        schedule.busy = {
            pid: [(s, e) for s, e in spans if (pid, s, e) not in drop]
            for pid, spans in schedule.busy.items()
        }
    return schedule


def _local_today(clinic, now):
    return now.astimezone(ZoneInfo(clinic.timezone)).date()


def _team_slots(
    provider_ids, service, clinic, schedule, from_date, days, limit, now, duration=None
):
    min_lead, _ = slot_settings()
    duration = duration or timedelta(minutes=service.duration_minutes)
    first = max(from_date, _local_today(clinic, now))
    last = from_date + timedelta(days=days - 1)
    if last < first:
        return []
    starts = slot_rules.team_free_slots(
        (first, last),
        clinic.timezone,
        clinic.business_hours(),
        [schedule.availability.get((pid, clinic.id), []) for pid in provider_ids],
        leaves=[iv for pid in provider_ids for iv in schedule.leaves.get(pid, [])],
        busy=[iv for pid in provider_ids for iv in schedule.busy.get(pid, [])],
        duration=duration,
        step=slot_step(duration),
        now=now,
        min_lead=min_lead,
    )
    return starts[:limit] if limit else starts


def next_free_slots(provider, service, clinic, from_date, days=7, limit=6, *, now=None):
    """The provider's next free start times (aware UTC) for ``service`` at ``clinic``,
    from the local date ``from_date`` for ``days`` days, at most ``limit``."""
    return team_next_free_slots([provider], service, clinic, from_date, days, limit, now=now)


def team_next_free_slots(
    providers, service, clinic, from_date, days=7, limit=6, *, now=None, exclude=(), duration=None
):
    """As :func:`next_free_slots`, for a team: every provider free for the whole slot.
    ``exclude`` lists busy intervals ``(provider_id, start, end)`` to ignore (a booking
    being rescheduled does not block its own move). ``duration``: a booking's own length
    (the service's may have changed since it was made)."""
    now = now or utcnow()
    ids = [p.id if isinstance(p, Provider) else int(p) for p in providers]
    start, end = _range_bounds([clinic], from_date, days)
    schedule = _load_schedule(ids, [clinic.id], start, end, exclude)
    return _team_slots(ids, service, clinic, schedule, from_date, days, limit, now, duration)


def offer_fit(providers, service, clinic):
    """{provider id: (has the service's specialization, offers the service at the clinic)}
    in one query (loading each provider's clinics, services and specializations only to
    look for one id in each cost three queries a provider)."""
    pid = Provider.id
    has_specialization = sa.exists().where(
        provider_specializations.c.provider_id == pid,
        provider_specializations.c.specialization_id == service.specialization_id,
    )
    offers_here = sa.and_(
        sa.exists().where(
            provider_services.c.provider_id == pid, provider_services.c.service_id == service.id
        ),
        sa.exists().where(
            provider_clinics.c.provider_id == pid, provider_clinics.c.clinic_id == clinic.id
        ),
    )
    rows = db.session.execute(
        sa.select(pid, has_specialization, offers_here).where(pid.in_([p.id for p in providers]))
    )
    fit = {p.id: (False, False) for p in providers}
    fit.update({row[0]: (bool(row[1]), bool(row[2])) for row in rows})
    return fit


def check_booking_slot(
    providers,
    service,
    clinic,
    start,
    *,
    now=None,
    exclude=(),
    fit=None,
    duration=None,
    on_grid=False,
):
    """The policy's messages for booking ``service`` at ``clinic`` with ``providers`` (one,
    or a team) at ``start`` (aware); ``[]`` when bookable. Also refuses a provider who does
    not work at the clinic, offer the service, or have its specialization (``fit``: the
    caller's :func:`offer_fit` answer, else asked here). ``exclude`` as in
    :func:`team_next_free_slots`. ``duration``: a booking's own length (the service's may
    have changed since it was made). ``on_grid``: only a start the free-times list shows
    (its grid and step; the patient's paths, not the desk's). Call it inside the booking
    transaction; the database's exclusion constraint still decides races."""
    now = now or utcnow()
    providers = [load(Provider, p, "provider") for p in providers]
    if not providers:
        return [slot_rules.MSG_CHOOSE_PROVIDER]
    fit = fit or offer_fit(providers, service, clinic)
    for p in providers:
        if not p.active or fit.get(p.id) != (True, True):
            return [slot_rules.MSG_PROVIDER_UNAVAILABLE]
    if not service.active or not clinic.active:
        return [slot_rules.MSG_SERVICE_UNAVAILABLE]
    duration = duration or timedelta(minutes=service.duration_minutes)
    ids = [p.id for p in providers]
    schedule = _load_schedule(
        ids, [clinic.id], start - timedelta(days=1), start + duration + timedelta(days=1), exclude
    )
    min_lead, _ = slot_settings()
    return slot_rules.check_slot(
        start,
        duration,
        clinic.timezone,
        clinic.business_hours(),
        [schedule.availability.get((pid, clinic.id), []) for pid in ids],
        leaves=[iv for pid in ids for iv in schedule.leaves.get(pid, [])],
        busy=[iv for pid in ids for iv in schedule.busy.get(pid, [])],
        now=now,
        min_lead=min_lead,
        step=slot_step(duration) if on_grid else None,
    )


@dataclass
class Offer:
    """One bookable line on a provider's card: a service at a clinic and its next slots."""

    service: Service
    clinic: Clinic
    slots: list


def find_offers(
    providers, *, from_date, days=7, limit=4, city=None, clinic_id=None, service_id=None, now=None
):
    """``{provider_id: [Offer, …]}`` for the find-a-doctor page: for each provider, each
    active service they offer (or just ``service_id``) at each matching active clinic, with
    the next ``limit`` free slots. Loads everything in a fixed number of queries."""
    now = now or utcnow()
    out = {p.id: [] for p in providers}
    plan = []
    for p in providers:
        clinics = [
            c
            for c in p.clinics
            if c.active
            and (not city or c.city.lower() == city.strip().lower())
            and (not clinic_id or c.id == clinic_id)
        ]
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
