"""A provider's cancellation as the page showed it: the appointment's start, the patient's
refund and the provider's penalty the cancel page stated go back with the form, and are
checked at the click under the visit's lock. The form carried only a reason: an
appointment an admin moved meanwhile (Friday 10:00 to Monday 11:00, a time the doctor is
free) was cancelled at its new time, the patient refunded and the ₹250 penalty taken, for
a page about Friday. Now any change refuses, nothing written; the page is shown again as
the appointment is now (``portal.web.provider.cancellations``). The check runs in
``refunds.cancel.cancel_as_provider(shown=…)``, under the visit's lock; ``shown`` is
required there, and a figure missing (a post without the hidden fields) refuses too
(``MSG_UNSHOWN``): before, it was not checked."""

from dataclasses import dataclass

from portal.booking.shown import start_stamp, start_text
from portal.domain.rates import format_inr
from portal.domain.text import Text
from portal.i18n import N_
from portal.refunds.previews import preview_provider

MSG_MOVED = N_(
    "This appointment was moved to %(when)s after the page was shown, so nothing was "
    "cancelled. Check the new time, then cancel again if you still cannot make it."
)
MSG_TERMS = N_(
    "The patient's refund is now %(refund)s and your penalty %(penalty)s, not what the page "
    "showed, so nothing was cancelled. Read the terms again, then confirm."
)


# A provider's cancellation asked without all three figures its page stated (a post
# without the hidden fields, or with one unreadable) is asked again: nothing is cancelled
# against terms the doctor did not see (``cancel_as_provider``'s required ``shown``).
MSG_UNSHOWN = N_("Check the time, the refund and the penalty above, then confirm again.")


@dataclass(frozen=True)
class Shown:
    """What the cancel page stated: the start as whole seconds since the epoch, the refund
    and the penalty in paise (None: not sent, so the cancellation is refused,
    ``stated``)."""

    start: int | None = None
    refund: int | None = None
    penalty: int | None = None


def stated(shown):
    """``shown`` when it is a ``Shown`` with all three figures whole numbers, else None
    (missing or unreadable: no terms were shown)."""
    if not isinstance(shown, Shown):
        return None
    figures = (shown.start, shown.refund, shown.penalty)
    if any(isinstance(f, bool) or not isinstance(f, int) for f in figures):
        return None
    return shown


def shown_for(item, preview):
    """The values the page carries back (its hidden fields): what it states now."""
    return Shown(start_stamp(item), preview.refund, preview.penalty)


def changed_since(item, shown, now):
    """Why a cancellation confirmed on a page showing ``shown`` cannot go ahead now (the
    message), or None: the appointment moved, or its refund or penalty changed (a policy
    change). The refund and penalty are the preview's, the cancellation's own rule.
    ``shown``: all three figures (``stated``)."""
    if shown.start != start_stamp(item):
        return Text(MSG_MOVED, when=start_text(item))
    preview = preview_provider(item, now)
    if not preview.allowed:
        return None  # the cancellation itself says why
    if shown.refund != preview.refund or shown.penalty != preview.penalty:
        return Text(
            MSG_TERMS, refund=format_inr(preview.refund), penalty=format_inr(preview.penalty)
        )
    return None
