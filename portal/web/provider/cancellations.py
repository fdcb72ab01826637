"""A provider cancels one of their own bookings before it starts, with a reason: the
patient gets a full refund and the policy's penalty is taken from the provider's payable."""
from flask import abort, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from portal.booking.errors import NotFound
from portal.booking.models import IndividualBooking
from portal.config import policy
from portal.catalog.service import provider_for_user
from portal.extensions import db
from portal.refunds import service as refunds
from portal.web.provider import bp
from portal.web.render import render

PAGE = "provider/cancellations/cancel.html"


class ProviderCancelForm(FlaskForm):
    reason = TextAreaField("Reason (the patient sees it)", validators=[Length(max=2000)])


def _item(item_id):
    provider = provider_for_user(current_user)
    item = db.session.get(IndividualBooking, item_id)
    if provider is None or item is None or provider.id not in {p.id for p in item.providers}:
        abort(404)
    return item


def _page(item, form, status=200):
    return render(PAGE, status=status, item=item, form=form,
                  penalty=policy().provider_cancellation_penalty,
                  fee_refund=refunds.reschedule_fees_refundable(item, "provider"))


@bp.get("/bookings/<int:item_id>/cancel")
def cancel_booking(item_id):
    return _page(_item(item_id), ProviderCancelForm())


@bp.post("/bookings/<int:item_id>/cancel")
def cancel_booking_post(item_id):
    item = _item(item_id)
    form = ProviderCancelForm()
    if not form.validate():
        return _page(item, form, 422)
    try:
        refunds.cancel_as_provider(current_user, item.id, form.reason.data or "")
    except NotFound:
        abort(404)
    except refunds.CancellationError as exc:
        if exc.field == "reason":
            form.reason.errors = [exc.message]
        else:
            form.form_errors.append(exc.message)
        return _page(item, form, 422)
    flash("Appointment cancelled; the patient gets a full refund.", "success")
    return redirect(url_for("provider.schedule"), 303)
