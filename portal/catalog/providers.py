"""Providers (doctors and labs): their profile, their clinics, specializations and
services, and the login an admin invites for them."""

import sqlalchemy as sa

from portal import events
from portal.accounts import service as accounts
from portal.accounts.models import PROVIDER, User
from portal.accounts.service import ValidationError
from portal.audit.service import record
from portal.catalog import cache, service_changes, time_lock
from portal.catalog.availability import hours_in_the_way
from portal.catalog.checks import (
    AHEAD,
    CLINIC_OVER,
    DEACTIVATE_OVER,
    FORM,
    bookings_in_the_way,
    bounded_int,
    bump_versions,
    changing,
    choice,
    clean_name,
    lock_for_edit,
    raise_errors,
    release_stale_then_lock,
    require_admin,
    rows_by_id,
    snapshot,
)
from portal.catalog.models import (
    DOCTOR,
    PAYOUT_SCHEDULES,
    PROVIDER_KINDS,
    WEEKLY,
    Clinic,
    Provider,
    Service,
    Specialization,
)
from portal.catalog.pan import audited, check_pan, refuse_clearing, wait_for_payouts
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db

PROVIDER_FIELDS = (
    "kind",
    "display_name",
    "registration_no",
    "pan",  # docs/payouts.md "PAN": masked in the audit entries (catalog.pan.audited)
    "commission_bps",
    "payout_schedule",
    "active",
    "bio",
)


def _check_provider(data, errors, pan_on_file=None):
    data["kind"] = choice(data.get("kind"), PROVIDER_KINDS, "kind", errors, "doctor or lab")
    data["display_name"] = clean_name(
        data.get("display_name"), "display_name", errors, "the name patients see", 120
    )
    reg = " ".join((data.get("registration_no") or "").split()) or None
    if data["kind"] == DOCTOR and not reg:
        errors["registration_no"] = "Enter the medical council registration number."
    elif reg and len(reg) > 40:
        errors["registration_no"] = "Use at most 40 characters."
    data["registration_no"] = reg
    data["pan"] = check_pan(data.get("pan"), pan_on_file, errors)
    data["commission_bps"] = bounded_int(
        data.get("commission_bps"),
        "commission_bps",
        errors,
        0,
        10_000,
        "Enter a commission between 0% and 100%.",
    )
    data["payout_schedule"] = choice(
        data.get("payout_schedule"),
        PAYOUT_SCHEDULES,
        "payout_schedule",
        errors,
        "a payout schedule",
    )
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
        errors["service_ids"] = (
            "These services need a specialization the provider does not "
            "have: " + ", ".join(sorted(wrong)) + "."
        )


def create_provider(
    actor,
    *,
    email,
    name,
    kind=DOCTOR,
    display_name=None,
    registration_no=None,
    pan=None,
    clinic_ids=(),
    specialization_ids=(),
    service_ids=(),
    commission_bps=500,
    payout_schedule=WEEKLY,
    bio="",
    phone=None,
    active=True,
):
    """Invite the provider's login (role provider) and create the profile, in one unit of
    work."""
    with changing({"email": "An account with this email already exists."}):
        require_admin(actor)
        errors = {}
        data = _check_provider(
            dict(
                kind=kind,
                display_name=display_name or name,
                registration_no=registration_no,
                pan=pan,
                commission_bps=commission_bps,
                payout_schedule=payout_schedule,
                bio=bio,
            ),
            errors,
        )
        clinics = rows_by_id(Clinic, clinic_ids, "clinic_ids", errors, "clinics")
        specs = rows_by_id(
            Specialization, specialization_ids, "specialization_ids", errors, "specializations"
        )
        services = rows_by_id(Service, service_ids, "service_ids", errors, "services")
        _check_links(clinics, specs, services, errors)
        try:
            user = accounts.invite_user(email, name, PROVIDER, actor, phone=phone)
        except ValidationError as exc:
            errors.update(exc.errors)
        raise_errors(errors)
        provider = Provider(user=user, active=bool(active), **data)
        provider.clinics, provider.specializations, provider.services = clinics, specs, services
        bump_versions(services)  # their providers changed: their open edit forms are stale
        db.session.add(provider)
        db.session.flush()
        _, after = audited(
            {},
            {
                **snapshot(provider, *PROVIDER_FIELDS),
                "user_id": user.id,
                **_link_snapshot(provider),
            },
        )
        record(actor, "provider.create", "provider", provider.id, after=after)
        return provider


def _link_snapshot(provider):
    return {
        "clinic_ids": sorted(c.id for c in provider.clinics),
        "specialization_ids": sorted(s.id for s in provider.specializations),
        "service_ids": sorted(s.id for s in provider.services),
    }


def _deactivation_refused(provider):
    """The message refusing to take an active provider off the booking pages (their
    bookings ahead: each patient must first be told), or None; read under the lock on the
    provider's time, so a hold at the same moment is read or refused (the caller holds
    ``time_lock.serialized()`` on SQLite). The one rule for both ways of deactivating a
    provider: their profile (``update_provider``) and their account
    (``_deactivate_with_account``)."""
    now = utcnow().astimezone(CLINIC_TZ)
    at = release_stale_then_lock(provider, now, now + AHEAD)
    return bookings_in_the_way(provider, now, now + AHEAD, DEACTIVATE_OVER, now=at)


@events.account_deactivating.connect
def _deactivate_with_account(sender, *, user_id, actor_id, role, **_):
    """An administrator deactivates a provider's account (admin/users,
    ``accounts.deactivate_user``): their profile is deactivated with it, under the rule of
    a profile's deactivation (refused over bookings ahead), so a provider nobody can sign
    in as is never listed, booked or paid for (the booking pages and the claims' trigger
    read ``providers.active``). Runs inside the account's unit of work, before it writes;
    a refusal raises ``ValidationError({FORM: ...})`` and nothing changes. A profile
    already inactive stays as it is. Reactivating the account leaves the profile inactive:
    putting the provider back on the booking pages is the provider page's "active" (which
    refuses while the account is deactivated: ``update_provider``).

    Locks in the catalog's order (``catalog.checks``), after the account's row: the
    catalog's lock, then the profile's row, read afresh (an edit of the profile committed
    meanwhile is what it sees), then the lock on the provider's time."""
    if role != PROVIDER:
        return
    time_lock.hold_to_end()  # SQLite: from this check to the account's commit
    cache.lock_stamp()
    provider_id = db.session.scalar(sa.select(Provider.id).where(Provider.user_id == user_id))
    if provider_id is None:
        return
    provider = lock_for_edit(Provider, provider_id, "provider")
    if not provider.active:
        return
    clash = _deactivation_refused(provider)
    if clash:
        raise ValidationError({FORM: clash})
    provider.active = False
    bump_versions([provider])  # an edit form opened before would put "active" back
    db.session.flush()
    record(
        actor_id,
        "provider.update",
        "provider",
        provider.id,
        before={"active": True},
        after={"active": False, "reason": "account deactivated"},
    )


MSG_ACCOUNT_DEACTIVATED = (
    "This provider's account is deactivated, so they cannot sign in. Reactivate their "
    "account on the Users page first."
)


def _can_sign_in(provider):
    """Whether the provider's login is active, as committed (read now, not from the
    session: an account deactivated meanwhile is seen). Read under the catalog's lock: an
    account's deactivation committed before is seen here, and one after deactivates the
    profile again (``_deactivate_with_account``)."""
    return bool(db.session.scalar(sa.select(User.active).where(User.id == provider.user_id)))


def update_provider(actor, provider, *, base_version=None, **changes):
    """Change profile fields and the clinic/specialization/service links (admin only). A
    deactivation is refused over bookings ahead, and so is taking away a clinic where
    bookings ahead lie in the provider's hours (they go with it), under the lock on the
    provider's time (a hold at the same moment is read, or refused for the change:
    catalog.time_lock). ``base_version``: the ``version`` the edit form was filled from; a
    provider changed since is refused (``StaleEdit``: the form sends every field, so saving
    it would put back what the other administrator changed). Making the profile active is
    refused while the provider's account is deactivated (``MSG_ACCOUNT_DEACTIVATED``): a
    provider nobody can sign in as is never listed or booked. Locks in the catalog's order
    (``catalog.checks``, "Lock order"), after the payouts being made when the PAN is sent
    (``pan.wait_for_payouts``: the form always sends it)."""
    require_admin(actor)
    provider_id = provider.id if isinstance(provider, Provider) else provider
    before = None
    if "pan" in changes and provider_id is not None:
        before = lambda: wait_for_payouts(provider_id, changes["pan"])  # noqa: E731
    with time_lock.serialized(), changing(before=before):
        provider = lock_for_edit(Provider, provider, "provider", base_version)
        links = {"clinic_ids", "specialization_ids", "service_ids"}
        unknown = set(changes) - set(PROVIDER_FIELDS) - links
        if unknown:
            raise TypeError(f"unknown provider fields: {sorted(unknown)}")
        before = {**snapshot(provider, *PROVIDER_FIELDS), **_link_snapshot(provider)}
        errors = {}
        data = _check_provider(
            {**snapshot(provider, *PROVIDER_FIELDS), **changes}, errors, provider.pan
        )
        refuse_clearing(provider.id, provider.pan, data["pan"], errors)
        clinics = (
            rows_by_id(Clinic, changes["clinic_ids"], "clinic_ids", errors, "clinics")
            if "clinic_ids" in changes
            else list(provider.clinics)
        )
        specs = (
            rows_by_id(
                Specialization,
                changes["specialization_ids"],
                "specialization_ids",
                errors,
                "specializations",
            )
            if "specialization_ids" in changes
            else list(provider.specializations)
        )
        services = (
            rows_by_id(Service, changes["service_ids"], "service_ids", errors, "services")
            if "service_ids" in changes
            else list(provider.services)
        )
        _check_links(clinics, specs, services, errors)
        if provider.active and "active" in changes and not changes["active"]:
            clash = _deactivation_refused(provider)
            if clash:
                errors["active"] = clash
        elif "service_ids" not in errors:
            # A service taken from the provider strands their bookings of it ahead.
            kept = {s.id for s in services}
            for service in sorted(provider.services, key=lambda s: s.id):
                if service.id in kept:
                    continue
                clash = service_changes.refusal(
                    service,
                    "service_ids",
                    service_changes.dropping(service, provider),
                    provider_ids={provider.id},
                )
                if clash:
                    errors["service_ids"] = clash[1]
                    break
        if changes.get("active") and not _can_sign_in(provider):
            # A provider nobody can sign in as is never listed or booked
            # (``_deactivate_with_account``): the account comes back first.
            errors["active"] = MSG_ACCOUNT_DEACTIVATED
        # Weekly hours at a clinic the provider no longer works at would be dead rows: they
        # go, refused as a change of hours is over bookings ahead in them.
        clinic_ids = {c.id for c in clinics}
        dropped = {}
        for window in provider.availability:
            if window.clinic_id not in clinic_ids:
                dropped.setdefault(window.clinic_id, []).append(window)
        for windows in dropped.values():
            if "clinic_ids" in errors:
                break
            clash = hours_in_the_way(
                provider,
                windows[0].clinic,
                windows,
                [],
                messages=CLINIC_OVER,
            )
            if clash:
                errors["clinic_ids"] = clash
        raise_errors(errors)
        for key in PROVIDER_FIELDS:
            if key == "active":
                if "active" in changes:
                    provider.active = bool(changes["active"])
            else:
                setattr(provider, key, data[key])
        relinked = {s.id for s in services} ^ set(before["service_ids"])
        relinked_rows = [s for s in {*provider.services, *services} if s.id in relinked]
        provider.clinics, provider.specializations, provider.services = clinics, specs, services
        for windows in dropped.values():
            for window in windows:
                provider.availability.remove(window)
        db.session.flush()
        after = {**snapshot(provider, *PROVIDER_FIELDS), **_link_snapshot(provider)}
        if after != before:
            # Every form showing what changed is stale now: this provider's, and those of
            # the services added or taken away (a service's form lists its providers).
            bump_versions([provider, *relinked_rows])
            before, after = audited(before, after)
            record(actor, "provider.update", "provider", provider.id, before=before, after=after)
        db.session.flush()
        return provider


def provider_for_user(user):
    """The provider profile of a signed-in provider user, or None."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(sa.select(Provider).where(Provider.user_id == user.id))
