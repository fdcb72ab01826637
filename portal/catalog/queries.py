"""What the catalog's pages list and offer as choices (read only)."""

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.catalog import cache as catalog_cache
from portal.catalog import slots
from portal.catalog.models import Clinic, Provider, Service, Specialization
from portal.db import contains_text, db
from portal.pagination import Order, keyset_page


def active_services():
    return db.session.scalars(
        sa.select(Service).where(Service.active.is_(True)).order_by(Service.name, Service.id)
    ).all()


def filter_options():
    """The find page's choices, as plain rows cached per process under the catalog stamp:
    active clinics (id, name, city) by city and name, the cities, specializations (id,
    name) and active services (id, name) by name."""

    def load():
        clinics = tuple(
            db.session.execute(
                sa.select(Clinic.id, Clinic.name, Clinic.city)
                .where(Clinic.active.is_(True))
                .order_by(Clinic.city, Clinic.name)
            )
        )
        return {
            "clinics": clinics,
            "cities": tuple(sorted({c.city for c in clinics})),
            "specializations": tuple(
                db.session.execute(
                    sa.select(Specialization.id, Specialization.name).order_by(Specialization.name)
                )
            ),
            "services": tuple(
                db.session.execute(
                    sa.select(Service.id, Service.name)
                    .where(Service.active.is_(True))
                    .order_by(Service.name)
                )
            ),
        }

    return catalog_cache.cached_values(("filter options",), load)


def offer_parts(provider_id, service_id, clinic_id):
    """(provider, service, clinic) by id, any of them None when there is no such row;
    cached per process under the catalog stamp (a slot link's parts: the book page)."""

    def load():
        parts = [
            db.session.get(Provider, provider_id),
            db.session.get(Service, service_id),
            db.session.get(Clinic, clinic_id),
        ]
        return parts if all(parts) else []

    parts = catalog_cache.cached(("offer parts", provider_id, service_id, clinic_id), load)
    return tuple(parts) if parts else (None, None, None)


def active_providers():
    return db.session.scalars(
        sa.select(Provider)
        .where(Provider.active.is_(True))
        .order_by(Provider.display_name, Provider.id)
    ).all()


def active_clinics():
    return db.session.scalars(
        sa.select(Clinic)
        .where(Clinic.active.is_(True))
        .order_by(Clinic.city, Clinic.name, Clinic.id)
    ).all()


def clinics_missing_gstin():
    """The open clinics without a GSTIN (``Clinic.missing_gstin``) as (id, name, city), by
    city and name: the admin home's card. Plain rows cached per process under the catalog
    stamp, read with the user, so the page spends no statement on them (its query budget,
    ``tests/web/test_query_budgets.py``), and a clinic's edit takes effect at once."""

    def load():
        return tuple(
            db.session.execute(
                sa.select(Clinic.id, Clinic.name, Clinic.city)
                .where(Clinic.missing_gstin)
                .order_by(Clinic.city, Clinic.name)
            )
        )

    return catalog_cache.cached_values(("clinics missing gstin",), load)


# --- the admin's catalog lists (keyset pages, searchable) ------------------------------------

CLINIC_ORDER = (Order(Clinic.city), Order(Clinic.name), Order(Clinic.id))
SPECIALIZATION_ORDER = (Order(Specialization.name), Order(Specialization.id))
PROVIDER_ORDER = (Order(Provider.display_name), Order(Provider.id))
SERVICE_ORDER = (Order(Service.name), Order(Service.id))


def _search(query, columns, q):
    """Rows where any of ``columns`` contains ``q`` (case-insensitive)."""
    if not q:
        return query
    return query.where(sa.or_(*(contains_text(c, q) for c in columns)))


def clinics_page(*, q="", after=None, before=None, per_page=20):
    query = _search(sa.select(Clinic), [Clinic.name, Clinic.city, Clinic.gstin], q)
    return keyset_page(
        query,
        CLINIC_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        count=True,
        options=(selectinload(Clinic.hours),),
    )


def specializations_page(*, q="", after=None, before=None, per_page=20):
    query = _search(sa.select(Specialization), [Specialization.name], q)
    return keyset_page(
        query, SPECIALIZATION_ORDER, after=after, before=before, per_page=per_page, count=True
    )


def providers_page(*, q="", after=None, before=None, per_page=20):
    query = _search(sa.select(Provider), [Provider.display_name, Provider.registration_no], q)
    return keyset_page(
        query,
        PROVIDER_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        count=True,
        options=(
            selectinload(Provider.clinics),
            selectinload(Provider.specializations),
            selectinload(Provider.user),
        ),
    )


def services_page(*, q="", after=None, before=None, per_page=20):
    query = _search(sa.select(Service), [Service.name], q)
    return keyset_page(
        query,
        SERVICE_ORDER,
        after=after,
        before=before,
        per_page=per_page,
        count=True,
        options=(selectinload(Service.providers),),
    )


def provider_ids(city=None, clinic_id=None, specialization_id=None, service_id=None, text=None):
    """The ids :func:`slots.search_providers` finds, as plain values cached per process
    under the catalog stamp (nothing merged into the session): what a cached free-times
    answer needs to know whose calendars it shows."""
    args = (city, clinic_id, specialization_id, service_id, " ".join((text or "").split()))
    return catalog_cache.cached_values(
        ("provider ids",) + tuple(a.lower() if isinstance(a, str) else a for a in args),
        lambda: tuple(p.id for p in slots.search_providers(*args, attach=False)),
    )


def offered(provider, service, clinic):
    """All three exist and are active, and the provider offers the service at the clinic."""
    return (
        provider is not None
        and service is not None
        and clinic is not None
        and provider.active
        and service.active
        and clinic.active
        and service in provider.services
        and clinic in provider.clinics
    )


def offer_timezone(provider_id, service_id, clinic_id):
    """The clinic's time zone when the provider offers the service there (all three
    active), else None; cached per process under the catalog stamp."""

    def load():
        provider = db.session.get(Provider, provider_id)
        service = db.session.get(Service, service_id)
        clinic = db.session.get(Clinic, clinic_id)
        return clinic.timezone if offered(provider, service, clinic) else None

    return catalog_cache.cached_values(("offer", provider_id, service_id, clinic_id), load)
