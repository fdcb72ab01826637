"""A provider cancels one of their own bookings before it starts, with a reason: the
patient gets the policy's provider-cancellation refund (full by default) and the policy's
penalty is taken from the provider's payable; the page states both before. The form sends
back the start, refund and penalty it stated (``refunds.shown``): an appointment moved or
re-priced since is not cancelled; the page is shown again (422) as it is now, the reason
typed kept and why on top."""

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from portal.booking.errors import NotFound
from portal.booking.models import IndividualBooking
from portal.catalog.providers import provider_for_user
from portal.extensions import db
from portal.i18n import N_
from portal.refunds import cancel as refunds_cancel
from portal.refunds import previews, shown
from portal.refunds.common import CancellationError
from portal.web.forms.provider_cancel import ShownProviderCancelForm
from portal.web.htmx import render
from portal.web.provider import bp

PAGE = "provider/cancellations/cancel.html"


def _item(item_id):
    provider = provider_for_user(current_user)
    item = db.session.get(IndividualBooking, item_id)
    if provider is None or item is None or provider.id not in {p.id for p in item.providers}:
        abort(404)
    return item


def _page(item, form, status=200):
    """The page as the appointment is now; the form carries what it states. ``team``: the
    others of a team appointment, whom cancelling it cancels it for (and tells) too."""
    preview = previews.preview_provider(item)
    form.fill_shown(shown.shown_for(item, preview))
    reader = next(p for p in item.providers if p.user_id == current_user.id)  # as _item found
    team = item.team_besides(reader.id)
    return render(PAGE, status=status, item=item, form=form, preview=preview, team=team)


@bp.get("/bookings/<int:item_id>/cancel")
def cancel_booking(item_id):
    return _page(_item(item_id), ShownProviderCancelForm())


@bp.post("/bookings/<int:item_id>/cancel")
def cancel_booking_post(item_id):
    item = _item(item_id)
    form = ShownProviderCancelForm()
    if not form.validate():
        return _page(item, form, 422)
    try:
        refunds_cancel.cancel_as_provider(
            current_user, item.id, form.reason.data or "", shown=form.shown()
        )
    except NotFound:
        abort(404)
    except CancellationError as exc:
        if exc.field == "reason":
            form.reason.errors = [exc.message]
        else:
            form.form_errors.append(exc.message)
        db.session.rollback()
        return _page(_item(item_id), form, 422)
    flash(N_("Appointment cancelled; the patient is refunded as the page said."), "success")
    return redirect(url_for("provider.schedule"), 303)
