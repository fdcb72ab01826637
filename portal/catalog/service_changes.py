"""A service's changes that would strand its bookings ahead, refused over them as a
provider's deactivation and a clinic's closing are (``catalog.checks``,
``catalog.clinics``): its deactivation (a booking of a service no longer bookable cannot
be moved, even by the clinic), its mode (a booked in-person visit would be told it is
online, an online one sent to a clinic), and a provider taken from it (on the service's
form or the provider's: their bookings of it could not be moved either). Each patient
must first be told, by a cancellation (a full refund); unpaid holds are named apart and
refuse the change too, as they may yet be paid. Admin pages are English."""

import sqlalchemy as sa

from portal.catalog import busy, time_lock
from portal.catalog.checks import AHEAD, admin_begun
from portal.catalog.clinics import booked_refusal
from portal.catalog.models import provider_services
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db

# Moving a booking keeps its service, so only a cancellation (or waiting) clears the way.
MSG_CLOSE_ONE = (
    "There is 1 booking of this service ahead ({listed}). Cancel it first (the patient is "
    "refunded in full), or make the service not bookable after it."
)
MSG_CLOSE_MANY = (
    "There are {count} bookings of this service ahead ({listed}). Cancel them first (each "
    "patient is refunded in full), or make the service not bookable after them."
)
MSG_MODE_ONE = (
    "There is 1 booking of this service ahead ({listed}), booked as it is now. Changing "
    "between in person and online would change it too: add a service in the new mode "
    "instead, or cancel it first (the patient is refunded in full)."
)
MSG_MODE_MANY = (
    "There are {count} bookings of this service ahead ({listed}), booked as it is now. "
    "Changing between in person and online would change them too: add a service in the new "
    "mode instead, or cancel them first (each patient is refunded in full)."
)
MSG_DROP_ONE = (
    "There is 1 booking of {service} with {provider} ahead ({listed}). Cancel it first (the "
    "patient is refunded in full), or take {service} from {provider} after it."
)
MSG_DROP_MANY = (
    "There are {count} bookings of {service} with {provider} ahead ({listed}). Cancel them "
    "first (each patient is refunded in full), or take {service} from {provider} after them."
)
MSG_UNLINK_ONE = (
    "There is 1 booking of this service ahead with a provider being taken from it "
    "({listed}). Cancel it first (the patient is refunded in full), or take the provider "
    "away after it."
)
MSG_UNLINK_MANY = (
    "There are {count} bookings of this service ahead with providers being taken from it "
    "({listed}). Cancel them first (each patient is refunded in full), or take the "
    "providers away after them."
)
MSG_HELD_ONE = (
    "1 patient is paying for a time of this service in the way of this change ({listed}); "
    "the hold lapses at {lapses}. Try again after it."
)
MSG_HELD_MANY = (
    "{count} times of this service in the way of this change are held while they are paid "
    "for ({listed}); the last hold lapses at {lapses}. Try again after it."
)

CLOSING = (
    MSG_CLOSE_ONE,
    MSG_CLOSE_MANY,
    admin_begun("", "deactivate the service", "of this service"),
)
MODE = (MSG_MODE_ONE, MSG_MODE_MANY, admin_begun("", "change the mode", "of this service"))
UNLINK = (
    MSG_UNLINK_ONE,
    MSG_UNLINK_MANY,
    admin_begun("with a provider being taken from it", "take the provider away", "of this service"),
)


def dropping(service, provider):
    """The words refusing to take ``service`` from ``provider`` over their bookings of it
    (names escaped for the message's ``format`` and the begun words' ``%``)."""
    names = {"service": service.name, "provider": provider.display_name}
    braced = {k: v.replace("{", "{{").replace("}", "}}") for k, v in names.items()}
    one, many = (
        w.replace("{service}", braced["service"]).replace("{provider}", braced["provider"])
        for w in (MSG_DROP_ONE, MSG_DROP_MANY)
    )
    pct = {k: v.replace("%", "%%") for k, v in names.items()}
    begun = admin_begun(
        "",
        f"take {pct['service']} from {pct['provider']}",
        f"of {pct['service']} with {pct['provider']}",
    )
    return one, many, begun


def refusal(service, field, words, provider_ids=None):
    """``(field, message)`` refusing a change of ``service`` over its live bookings ahead
    and unpaid holds (``provider_ids``: only those with any of them), or None. ``words``:
    ``CLOSING``, ``MODE``, ``UNLINK``, or :func:`dropping`'s. Times are said in the clinics' zone.

    Stale holds locked first, then the lock on the time of everyone who could be booked
    for it (those offering it, and those with bookings of it ahead), in a hold's order,
    then the stale holds released (their money after the time), before the bookings are
    read, as a clinic's change does (``catalog.checks``, "Lock order"; the
    caller holds the catalog's lock and the edited row). A hold at the same moment is read
    here, or waits for this commit and is then refused by the claims' trigger, which reads
    the service and its providers after the same lock (migration svcoffer0001)."""
    now = utcnow()
    window = (now, now + AHEAD)
    offering = set(
        db.session.scalars(
            sa.select(provider_services.c.provider_id).where(
                provider_services.c.service_id == service.id
            )
        )
    )
    providers = offering | {
        pid for b in busy.service_bookings(service.id, *window, now=now) for pid in b.provider_ids
    }
    if provider_ids is not None:
        providers &= set(provider_ids)
    busy.release_stale_of_providers(
        providers, *window, now, lambda: time_lock.lock_providers(providers)
    )
    live = busy.service_bookings(service.id, *window, now=now)
    if provider_ids is not None:
        live = [b for b in live if set(b.provider_ids) & set(provider_ids)]
    taken = [(b, b.spans) for b in live]
    return booked_refusal(
        field, words, taken, CLINIC_TZ, now, held_words=(MSG_HELD_ONE, MSG_HELD_MANY)
    )
