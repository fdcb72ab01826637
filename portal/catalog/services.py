"""The services patients book (consultations, lab tests, follow-ups): name, kind, mode,
duration, fee in paise, specialization, and which providers offer them (admin only)."""

from portal.audit.service import record
from portal.catalog import service_changes, time_lock
from portal.catalog.checks import (
    bounded_int,
    bump_versions,
    changing,
    choice,
    clean_name,
    lock_for_edit,
    raise_errors,
    require_admin,
    rows_by_id,
    snapshot,
)
from portal.catalog.models import (
    LAB_TEST,
    ONLINE,
    SERVICE_KINDS,
    SERVICE_MODES,
    Provider,
    Service,
    Specialization,
)
from portal.domain.pricing import MIN_ONLINE_PAYMENT
from portal.domain.rates import format_inr
from portal.extensions import db

MIN_DURATION, MAX_DURATION = 5, 480

SERVICE_FIELDS = (
    "name",
    "kind",
    "duration_minutes",
    "fee_paise",
    "mode",
    "specialization_id",
    "taxable",
    "active",
    "description",
)
# At least Razorpay's smallest payment: a visit of one item can always be paid online.
MSG_FEE_MIN = f"Enter a fee of {format_inr(MIN_ONLINE_PAYMENT, always_show_paise=True)} or more."


def _check_service(data, errors):
    data["name"] = clean_name(data.get("name"), "name", errors, "the service's name", 120)
    data["kind"] = choice(data.get("kind"), SERVICE_KINDS, "kind", errors, "a kind of service")
    data["mode"] = choice(data.get("mode"), SERVICE_MODES, "mode", errors, "in person or online")
    data["duration_minutes"] = bounded_int(
        data.get("duration_minutes"),
        "duration_minutes",
        errors,
        MIN_DURATION,
        MAX_DURATION,
        f"Enter a duration from {MIN_DURATION} to {MAX_DURATION} minutes.",
    )
    # Money is integer paise: a float here is a bug upstream, not a rounding question.
    data["fee_paise"] = bounded_int(
        data.get("fee_paise"), "fee_paise", errors, MIN_ONLINE_PAYMENT, 10**12, MSG_FEE_MIN
    )
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
    wrong = [p.display_name for p in providers if spec_id not in {s.id for s in p.specializations}]
    if wrong:
        errors["provider_ids"] = (
            "These providers lack the service's specialization: " + ", ".join(sorted(wrong)) + "."
        )


def create_service(
    actor,
    *,
    name,
    kind,
    duration_minutes,
    fee_paise,
    mode,
    specialization_id,
    taxable=False,
    description="",
    provider_ids=(),
    active=True,
):
    with changing():
        require_admin(actor)
        errors = {}
        data = _check_service(
            dict(
                name=name,
                kind=kind,
                duration_minutes=duration_minutes,
                fee_paise=fee_paise,
                mode=mode,
                taxable=taxable,
                specialization_id=specialization_id,
                description=description,
            ),
            errors,
        )
        providers = rows_by_id(Provider, provider_ids, "provider_ids", errors, "providers")
        if "specialization_id" not in errors:
            _check_service_providers(providers, data["specialization_id"], errors)
        raise_errors(errors)
        service = Service(active=bool(active), **data)
        service.providers = providers
        bump_versions(providers)  # their services changed: their open edit forms are stale
        db.session.add(service)
        db.session.flush()
        record(
            actor,
            "service.create",
            "service",
            service.id,
            after={
                **snapshot(service, *SERVICE_FIELDS),
                "provider_ids": sorted(p.id for p in providers),
            },
        )
        return service


def _refuse_over_bookings(service, changes, data, providers):
    """Refuse a change that would strand the service's bookings ahead
    (``catalog.service_changes``): its deactivation or a change of mode over any of them,
    a provider taken from it over theirs."""
    closing = service.active and "active" in changes and not changes["active"]
    dropped = {p.id for p in service.providers} - {p.id for p in providers}
    clash = None
    if closing:
        clash = service_changes.refusal(service, "active", service_changes.CLOSING)
    elif data["mode"] != service.mode:
        clash = service_changes.refusal(service, "mode", service_changes.MODE)
    elif dropped:
        clash = service_changes.refusal(
            service, "provider_ids", service_changes.UNLINK, provider_ids=dropped
        )
    if clash:
        raise_errors(dict([clash]))


def update_service(actor, service, *, base_version=None, **changes):
    """Change a service (admin only). Its deactivation, a change of its mode, or a
    provider taken from it is refused over its bookings ahead (``_refuse_over_bookings``).
    ``base_version``: the ``version`` the edit form was filled from; a service changed
    since is refused (``StaleEdit``: the form sends every field, so saving it would put
    back what the other administrator changed)."""
    with time_lock.serialized(), changing():
        require_admin(actor)
        service = lock_for_edit(Service, service, "service", base_version)
        unknown = set(changes) - set(SERVICE_FIELDS) - {"provider_ids"}
        if unknown:
            raise TypeError(f"unknown service fields: {sorted(unknown)}")
        current = snapshot(service, *SERVICE_FIELDS)
        before = {**current, "provider_ids": sorted(p.id for p in service.providers)}
        errors = {}
        data = _check_service({**current, **changes}, errors)
        providers = (
            rows_by_id(Provider, changes["provider_ids"], "provider_ids", errors, "providers")
            if "provider_ids" in changes
            else list(service.providers)
        )
        if "specialization_id" not in errors:
            _check_service_providers(providers, data["specialization_id"], errors)
        raise_errors(errors)
        _refuse_over_bookings(service, changes, data, providers)
        for key in SERVICE_FIELDS:
            if key == "active":
                if "active" in changes:
                    service.active = bool(changes["active"])
            else:
                setattr(service, key, data[key])
        relinked = {p.id for p in providers} ^ set(before["provider_ids"])
        relinked_rows = [p for p in {*service.providers, *providers} if p.id in relinked]
        service.providers = providers
        db.session.flush()
        after = {
            **snapshot(service, *SERVICE_FIELDS),
            "provider_ids": sorted(p.id for p in providers),
        }
        if after != before:
            # Every form showing what changed is stale now: this service's, and those of
            # the providers added or taken away (a provider's form lists its services).
            bump_versions([service, *relinked_rows])
            record(actor, "service.update", "service", service.id, before=before, after=after)
        db.session.flush()
        return service
