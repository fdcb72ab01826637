"""What a doctor or lab reads about an appointment of theirs, in the current language (the
callers are inside ``wording.speaking_to``): the service with the patient, never the
reader named to themself; a team appointment's other providers; who cancelled it.

The patient's notices name the providers instead (``tasks._describe``)."""

from dataclasses import dataclass

from flask_babel import gettext as _

from portal.notify.reminders import local_time
from portal.refunds.lookup import cancellation_for


def appointment(item):
    """``Consultation with Farhan Sheikh at Indiranagar Clinic, Fri 5 Jun 2026, 10:00 AM
    IST``: the patient (or the dependent seen) named, not the providers."""
    return _(
        "%(service)s with %(name)s at %(clinic)s, %(when)s",
        service=item.service.name, name=item.visit.for_name, clinic=item.clinic.name,
        when=local_time(item),
    )  # fmt: skip


def _names(providers):
    return ", ".join(p.display_name for p in providers)


def team(item, reader_id):
    """A sentence to add naming the others of a team appointment to one of them; "" for
    an appointment of one provider."""
    others = item.team_besides(reader_id)
    if not others:
        return ""
    return " " + _("With you on this team appointment: %(names)s.", names=_names(others))


@dataclass(frozen=True)
class Canceller:
    """Who cancelled an appointment. ``who``: "patient", "clinic", "provider", or ""
    (not known); ``provider``: the provider who cancelled, or on whose behalf the clinic
    did (None: not known); ``by_clinic``: an administrator did it on the patient's or
    the provider's behalf."""

    who: str
    provider: object = None
    by_clinic: bool = False


def canceller(item, by=None):
    """Who cancelled ``item``, from its cancellation row; without one (a job run on a
    booking cancelled otherwise, as tests do), ``by``: the event's word."""
    row = cancellation_for(item.id)
    if row is None:
        return Canceller(by if by in ("patient", "clinic", "provider") else "")
    return canceller_of(
        row.actor_kind, row.requested_by_id, row.penalty_provider_id, item.providers
    )


def canceller_of(actor_kind, requested_by_id, penalty_provider_id, providers):
    """The rule, from plain values: ``actor_kind`` as ``cancellations.actor_kind`` has it
    ("patient", "admin": an administrator for the patient, "clinic", "provider"); a
    provider's cancellation is theirs when one of ``providers`` asked for it, else an
    administrator's on behalf of the provider charged the penalty (of the sole provider,
    when no penalty names one)."""
    if actor_kind == "patient":
        return Canceller("patient")
    if actor_kind == "admin":
        return Canceller("patient", by_clinic=True)
    if actor_kind != "provider":
        return Canceller("clinic")
    own = next((p for p in providers if p.user_id == requested_by_id), None)
    if own is not None:
        return Canceller("provider", own)
    charged = next((p for p in providers if p.id == penalty_provider_id), None)
    if charged is None and len(providers) == 1:
        charged = providers[0]
    return Canceller("provider", charged, by_clinic=True)


def cancelled(item, reader_id, who, reason=None):
    """The title and body of the cancellation notice to the provider ``reader_id``: the
    patient named, who cancelled (``who``: a ``Canceller``; "you" to the one who did),
    whom else of a team it is cancelled for, and the reason."""
    what = appointment(item)
    provider = who.provider
    if who.who == "provider" and provider is not None:
        body = _by_provider(what, provider, mine=provider.id == reader_id, by_clinic=who.by_clinic)
    elif who.who == "patient" and who.by_clinic:
        body = _("%(what)s is cancelled by the clinic on the patient's behalf.", what=what)
    elif who.who == "patient":
        body = _("%(what)s is cancelled by the patient.", what=what)
    elif who.who == "clinic":
        body = _("%(what)s is cancelled by the clinic.", what=what)
    elif who.who == "provider":
        body = _("%(what)s is cancelled by the provider.", what=what)
    else:
        body = _("%(what)s is cancelled.", what=what)
    # The one who cancelled is named above; the others of a team lose it too.
    others = item.team_besides(reader_id, provider.id if provider is not None else None)
    if others:
        body += " " + _("It is cancelled for %(names)s too.", names=_names(others))
    if reason:
        body += " " + _("Reason: %(reason)s.", reason=reason)
    return _("Cancelled: %(what)s", what=item.visit.for_name), body


def _by_provider(what, provider, *, mine, by_clinic):
    if by_clinic and mine:
        return _("%(what)s is cancelled by the clinic on your behalf.", what=what)
    if by_clinic:
        return _(
            "%(what)s is cancelled by the clinic on %(name)s's behalf.",
            what=what, name=provider.display_name,
        )  # fmt: skip
    if mine:
        return _("You cancelled %(what)s.", what=what)
    return _("%(what)s is cancelled by %(name)s.", what=what, name=provider.display_name)
