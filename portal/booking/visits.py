"""Building a visit: hold a slot (add an item), take an unpaid item out, set an online
booking's meeting link, apply or remove a coupon.

Each use case is one unit of work; a broken rule raises ``BookingError(message, field)``
(``SlotUnavailable`` for a taken slot) and nothing is kept. A missing object, or someone
else's, raises ``NotFound``; a role that may not act raises ``PermissionDenied``."""

from datetime import timedelta
from functools import cached_property

from sqlalchemy.orm.attributes import set_committed_value

from portal import events
from portal.accounts.models import ADMIN, PROVIDER
from portal.audit.service import record
from portal.booking import claims, coupons, holds, lifecycle, prices
from portal.booking.access import check_person, get, role, visit_for
from portal.booking.errors import BookingError, NotFound, SlotUnavailable
from portal.booking.models import (
    DESK_CHANNEL,
    ONLINE_CHANNEL,
    IndividualBooking,
    MasterBooking,
    patient_subject,
    provider_subject,
)
from portal.booking.queries import newest_open_visit
from portal.catalog import calendar
from portal.catalog.models import FOLLOW_UP, LAB_TEST, Clinic, Provider, Service
from portal.catalog.slots import check_booking_slot, offer_fit
from portal.config import policy, setting
from portal.db import unit_of_work, utcnow
from portal.domain import meetlinks, pricing, slots
from portal.domain.states import BookingStatus, VisitStatus
from portal.domain.text import Text, status_label
from portal.extensions import db
from portal.i18n import N_
from portal.policies import store as policy_store

MSG_SPECIALIZATION = N_("The service's specialization must be one of the provider's")
MSG_NOT_OFFERED = N_("%(name)s does not offer this service at this clinic")
MSG_PATIENT_BUSY = N_("%(name)s already has an appointment at that time")
MSG_ONE_PERSON = N_("A visit is for one person; start a new visit for someone else")
MSG_VISIT_CLOSED = N_("This visit is already paid; items can no longer be changed")
MSG_ONLY_UNPAID = N_("Only unpaid items can be removed")
MSG_REFERRAL_OWNER = N_("The referral must be a booking of the same patient")
MSG_REFERRAL_KIND = N_("Only follow-ups and lab tests can refer to an earlier booking")
MSG_REFERRAL_EARLIER = N_("The referral must be an earlier booking")
MSG_MEET_LINK_OFFLINE = N_("Meeting links are only for online services")
MSG_MEET_LINK_WHO = N_("The provider or the clinic adds the meeting link")
MSG_MEET_LINK_NOT_LIVE = N_(
    "This appointment is %(status)s: its meeting link can no longer be changed"
)


def _aware(value, name):
    if getattr(value, "tzinfo", None) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


def _snapshot(item):
    return {
        "id": item.id,
        "service_id": item.service_id,
        "clinic_id": item.clinic_id,
        "start_at": item.start_at.isoformat(),
        "end_at": item.end_at.isoformat(),
        "providers": [p.id for p in item.providers],
        "status": item.status,
        "total": item.total,
    }


# --- the checks ------------------------------------------------------------------------------


def _check_meet_link(actor, service, meet_link):
    """Decision (docs/booking.md): the provider or an operator supplies the link; a patient
    booking an online service leaves it empty and the provider adds it before the start."""
    if meet_link in (None, ""):
        return None
    if not service.is_online:
        raise BookingError(MSG_MEET_LINK_OFFLINE, field="meet_link")
    if role(actor) not in (ADMIN, PROVIDER):
        raise BookingError(MSG_MEET_LINK_WHO, field="meet_link")
    extra = setting("MEET_LINK_DOMAINS")
    try:
        return meetlinks.validate_meet_link(meet_link, policy(), extra)
    except meetlinks.MeetLinkError as exc:
        raise BookingError(exc.args[0], field="meet_link") from None  # a Text stays one


def _check_referral(referral_id, service, patient_id, dependent_id, start_at):
    if referral_id is None:
        return None
    referral = db.session.get(IndividualBooking, referral_id)
    if (
        referral is None
        or referral.visit.patient_id != patient_id
        or referral.visit.dependent_id != dependent_id
    ):
        raise BookingError(MSG_REFERRAL_OWNER, field="referral_id")
    if service.kind not in (FOLLOW_UP, LAB_TEST):
        raise BookingError(MSG_REFERRAL_KIND, field="referral_id")
    if referral.start_at >= start_at or referral.status in (
        BookingStatus.CANCELLED,
        BookingStatus.EXPIRED,
    ):
        raise BookingError(MSG_REFERRAL_EARLIER, field="referral_id")
    return referral


def _check_providers(service, clinic, providers):
    """Returns ``offer_fit``'s answer (the slot check reads it too)."""
    fit = offer_fit(providers, service, clinic)
    for p in providers:
        has_specialization, offers_here = fit[p.id]
        if not has_specialization:
            raise BookingError(MSG_SPECIALIZATION, field="provider_ids")
        if not offers_here or not p.active:
            raise BookingError(Text(MSG_NOT_OFFERED, name=p.display_name), field="provider_ids")
    if not service.active or not clinic.active:
        raise BookingError(slots.MSG_SERVICE_UNAVAILABLE, field="service_id")
    return fit


def _claims_in_the_way(subjects, start_at, end_at, keep_visit_id):
    """The live claims overlapping the new time; a provider's refuses the hold at once.
    Another person's stale hold among them stops the use case, to be cleared before it
    runs again (``holds.in_the_way``, ``holds.clears_stale_holds``). Read before anything
    else is: the losers of a race for one time (once the winner has committed) are
    answered from this one read. The pre-check only makes the common refusal friendly and
    cheap; the claims' constraint and lock decide (claims.py)."""
    taken = holds.in_the_way(subjects, start_at, end_at, keep_visit_id=keep_visit_id)
    if any(c.subject.startswith("provider:") for c in taken):
        raise SlotUnavailable()
    return taken


def _check_slot(service, clinic, providers, start_at, taken, person_name, fit, on_grid):
    messages = check_booking_slot(providers, service, clinic, start_at, fit=fit, on_grid=on_grid)
    if messages:
        if messages[0] == slots.MSG_TAKEN:
            raise SlotUnavailable()
        raise BookingError(messages[0], field="start_at")
    if taken:  # the person's own claims: they are somewhere else then
        raise SlotUnavailable(Text(MSG_PATIENT_BUSY, name=person_name))


class _OpenVisit:
    """The person's newest unpaid visit, read on first use (``add_item``'s
    ``join_open_visit``)."""

    def __init__(self, patient_id, dependent_id):
        self.patient_id, self.dependent_id = patient_id, dependent_id

    @cached_property
    def visit(self):
        return newest_open_visit(self.patient_id, self.dependent_id)


def _visit_id_of(visit):
    """The id of the visit a hold joins, for ``holds.in_the_way`` (a function when the
    visit is yet to be read: asked only if a stale hold is in the way)."""
    if isinstance(visit, _OpenVisit):
        return lambda: getattr(visit.visit, "id", None)
    return visit.id if visit is not None else None


# --- the use cases -------------------------------------------------------------------------


@holds.clears_stale_holds
def add_item(
    actor,
    *,
    patient_id,
    service_id,
    provider_ids,
    clinic_id,
    start_at,
    dependent_id=None,
    visit_id=None,
    referral_id=None,
    meet_link=None,
    join_open_visit=False,
):
    """Hold a slot: a SCHEDULED booking with live claims for every provider and for the
    person seen, in a new DRAFT visit (``visit_id=None``) or an open one. The visit's hold
    runs ``BOOKING_HOLD_MINUTES`` (15) from now. ``join_open_visit`` (with no
    ``visit_id``): in the person's newest unpaid visit when they have one, looked up once
    the claims in the way are read, so a time someone holds is refused without it.
    Another person's stale hold in the way is cleared first, in a unit of work of its own,
    and the hold made again (``holds.clears_stale_holds``)."""
    _aware(start_at, "start_at")
    with claims.claiming(), unit_of_work():
        patient, dependent = check_person(actor, patient_id, dependent_id)
        visit = None
        if visit_id is not None:
            visit = visit_for(actor, visit_id)
            if not visit.is_open:
                raise BookingError(MSG_VISIT_CLOSED)
            if (visit.patient_id, visit.dependent_id) != (patient_id, dependent_id):
                raise BookingError(MSG_ONE_PERSON, field="dependent_id")
        service = get(Service, service_id, "service")
        ids = list(dict.fromkeys(int(p) for p in (provider_ids or [])))
        if not ids:
            raise BookingError(slots.MSG_CHOOSE_PROVIDER, field="provider_ids")
        end_at = start_at + timedelta(minutes=service.duration_minutes)
        subjects = [provider_subject(pid) for pid in ids]
        subjects.append(patient_subject(patient_id, dependent_id))
        if visit is None and join_open_visit:
            visit = _OpenVisit(patient_id, dependent_id)
        taken = _claims_in_the_way(subjects, start_at, end_at, _visit_id_of(visit))
        if isinstance(visit, _OpenVisit):
            visit = visit.visit
        clinic = get(Clinic, clinic_id, "clinic")
        providers = [get(Provider, pid, "provider") for pid in ids]
        fit = _check_providers(service, clinic, providers)
        link = _check_meet_link(actor, service, meet_link)
        _check_referral(referral_id, service, patient_id, dependent_id, start_at)
        person_name = dependent.name if dependent else patient.name
        # Only a time the free-times list shows, but at the desk (decision: an operator may
        # type one to fit a patient in; docs/booking.md "The grid").
        on_grid = role(actor) != ADMIN
        _check_slot(service, clinic, providers, start_at, taken, person_name, fit, on_grid)
        hold_until = utcnow() + lifecycle.hold_lifetime()
        if visit is None:
            # Written with its hold and empty collections: nothing to update or load later.
            visit = MasterBooking(
                patient_id=patient_id,
                dependent_id=dependent_id,
                created_by_id=actor.id,
                status=VisitStatus.DRAFT,
                channel=DESK_CHANNEL if role(actor) == ADMIN else ONLINE_CHANNEL,
                hold_expires_at=hold_until,
                items=[],
                payments=[],
            )
            db.session.add(visit)
            db.session.flush()
            visit.number = f"V{visit.id:06d}"
        elif visit.status == VisitStatus.PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "item added", actor)
        version_id, pol = policy_store.in_force()
        price = pricing.price_item(service.fee_paise, service.taxable, pol)
        item = IndividualBooking(
            service=service,
            clinic=clinic,
            start_at=start_at,
            end_at=end_at,
            status=BookingStatus.SCHEDULED,
            fee=price.fee,
            platform_fee=price.platform_fee,
            gst=price.gst,
            total=price.total,
            taxable=price.taxable_value,
            fee_taxed=price.fee_taxable,
            referral_id=referral_id,
            meet_link=link,
            policy_version_id=version_id,
        )
        item.providers = providers
        visit.items.append(item)
        visit.hold_expires_at = hold_until
        prices.refresh_discount(visit)
        lifecycle.refresh_status(visit)
        # Last: the claims' flush writes the visit, the item and its claims together (a
        # lost race raises here and the unit of work rolls back).
        claims.add_claims(item, subjects)
        record(actor, "booking.hold", "visit", visit.id, after=_snapshot(item))
        ids = item.id, visit.id
    # The commit expired the item; its ids are known, so the caller reads them without
    # loading the row (and its providers) again.
    set_committed_value(item, "id", ids[0])
    set_committed_value(item, "master_id", ids[1])
    return item


def remove_item(actor, item_id):
    """Take an unpaid item out of its visit and free its slot."""
    with unit_of_work():
        item = db.session.get(IndividualBooking, item_id)
        if item is None:
            raise NotFound("booking")
        visit = visit_for(actor, item.master_id)
        if item.status != BookingStatus.SCHEDULED or not visit.is_open:
            raise BookingError(MSG_ONLY_UNPAID)
        if visit.status == VisitStatus.PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "item removed", actor)
        before = _snapshot(item)
        # Deleted as an orphan of the visit, with its claims by cascade, which the flush's
        # listener (calendar_events) does not see: the providers' kept free times are
        # dropped by name.
        calendar.note_write(db.session, [p.id for p in item.providers])
        visit.items.remove(item)
        db.session.flush()
        prices.refresh_discount(visit)
        lifecycle.refresh_status(visit)
        record(actor, "booking.remove", "visit", visit.id, before=before)


def set_meet_link(actor, item_id, url):
    """The provider of an online booking (or an admin) sets or changes its meeting link."""
    with unit_of_work():
        item = db.session.get(IndividualBooking, item_id)
        if item is None:
            raise NotFound("booking")
        if role(actor) != ADMIN and not (
            role(actor) == PROVIDER and actor.id in {p.user_id for p in item.providers}
        ):
            raise NotFound("booking")
        if not item.is_live:
            # The link is for joining a live appointment; a finished one's is its record.
            raise BookingError(
                Text(MSG_MEET_LINK_NOT_LIVE, status=status_label(item.status)), field="meet_link"
            )
        before = item.meet_link
        item.meet_link = _check_meet_link(actor, item.service, url)
        record(
            actor,
            "booking.meet_link",
            "booking",
            item.id,
            before={"meet_link": before},
            after={"meet_link": item.meet_link},
        )
        if item.meet_link != before:
            events.meet_link_changed.send("booking", booking_id=item.id)
    return item


def apply_coupon(actor, visit_id, code):
    with unit_of_work():
        visit = visit_for(actor, visit_id)
        if not visit.is_open:
            raise BookingError(MSG_VISIT_CLOSED, field="coupon")
        coupon = coupons.find(code)
        message = coupons.check(coupon, visit.patient_id, visit_id=visit.id)
        if message:
            raise BookingError(message, field="coupon")
        if visit.status == VisitStatus.PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "coupon changed", actor)
        visit.coupon = coupon
        prices.refresh_discount(visit)
        lifecycle.refresh_status(visit)
        record(
            actor,
            "visit.coupon",
            "visit",
            visit.id,
            after={"coupon": coupon.code, "discount": visit.discount},
        )
    return visit


def remove_coupon(actor, visit_id):
    with unit_of_work():
        visit = visit_for(actor, visit_id)
        if not visit.is_open:
            raise BookingError(MSG_VISIT_CLOSED, field="coupon")
        if visit.status == VisitStatus.PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "coupon removed", actor)
        before = visit.coupon.code if visit.coupon else None
        visit.coupon = None
        visit.discount = 0
        lifecycle.refresh_status(visit)
        record(actor, "visit.coupon_removed", "visit", visit.id, before={"coupon": before})
    return visit
