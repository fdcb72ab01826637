"""Moving a confirmed appointment (more than 24 h ahead), and booking an expired or
cancelled one again. The page shows the fee for this notice (tier, platform fee, GST),
the free times of the same provider(s) for a chosen day (htmx swaps the list), and how to
pay the fee (wallet or online); a zero fee moves at once."""

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user

from portal.booking import holds, reschedule_payment
from portal.booking import prices as booking_prices
from portal.booking import reschedule as rs
from portal.booking.errors import MSG_CONFIRMING, BookingError, PaymentError
from portal.booking.models import IndividualBooking, Reschedule
from portal.domain.pricing import MIN_ONLINE_PAYMENT
from portal.domain.slots import LIST_SPAN_DAYS
from portal.domain.states import RescheduleStatus
from portal.extensions import csrf
from portal.i18n import N_
from portal.web.errors import apply_booking_error, flash_unpaid
from portal.web.filters import clinic_time
from portal.web.forms.booking import MOVE_FIELDS, PatientMoveForm, move_day, parse_start
from portal.web.htmx import htmx_block, redirect_out, render
from portal.web.patient import bp, gateway_returns
from portal.web.security import get_owned_or_404
from portal.web.sessions import leave_alone
from portal.web.urls import external_url, on_this_host

PAGE = "patient/reschedule/reschedule.html"
MSG_CHOOSE = N_("Choose a new time")


def _item(item_id):
    item = get_owned_or_404(IndividualBooking, item_id)
    if item.visit.patient_id != current_user.id:
        abort(404)
    return item


def _page(item, form, mode, status=200):
    day = move_day(form, item)
    slots = rs.free_slots(item, day, days=LIST_SPAN_DAYS, limit=16)
    form.slot.choices = [(s.isoformat(), clinic_time(s, item.clinic.timezone)) for s in slots]
    q = None
    if mode == "move":
        _, q = rs.quote(current_user, item.id)
        form.show_start(item)  # as it is now, after a refusal too
    return render(
        PAGE,
        block=htmx_block("slots"),
        status=status,
        item=item,
        form=form,
        quote=q,
        mode=mode,
        slots=slots,
        wallet_balance=booking_prices.wallet_balance(current_user.id),
        online_minimum=MIN_ONLINE_PAYMENT,  # a fee under it is not offered online
    )


def _form():
    if request.method == "GET":
        return PatientMoveForm(formdata=request.args or None)
    return PatientMoveForm()


def _posted_slot(item_id):
    """(item, form, chosen start or None — the form then says to choose one)."""
    item = _item(item_id)
    form = PatientMoveForm()
    form.validate()
    start = parse_start(form.slot.data or form.start.data)
    if start is None:
        form.slot.errors = [MSG_CHOOSE]
    return item, form, start


@bp.get("/bookings/<int:item_id>/reschedule")
def reschedule(item_id):
    return _page(_item(item_id), _form(), "move")


@bp.post("/bookings/<int:item_id>/reschedule")
def reschedule_post(item_id):
    item, form, start = _posted_slot(item_id)
    if start is None:
        return _page(item, form, "move", status=422)
    callback = external_url("patient.reschedule_paid", reschedule_id=0).replace("/0/", "/__ID__/")
    try:
        result = rs.reschedule(
            current_user,
            item.id,
            start,
            pay_with=form.pay_with.data or None,
            callback_url=callback,
            expected_fee=form.confirmed_fee(),
            shown_start=form.confirmed_start(),
        )
    except BookingError as exc:
        apply_booking_error(form, exc, MOVE_FIELDS)
        return _page(item, form, "move", status=422)
    if result.redirect_url:
        if result.form_fields:
            return render(
                "patient/visits/checkout.html",
                visit=item.visit,
                action=result.form_action,
                fields=result.form_fields,
            )
        return redirect_out(on_this_host(result.redirect_url))
    flash(gettext("Moved to %(time)s.", time=clinic_time(start, item.clinic.timezone)), "success")
    return redirect(url_for("patient.visit", visit_id=item.master_id), 303)


def _verify(params, reschedule_id):
    """Check the gateway's answer and, when it paid, apply the fee: None then, else the
    PaymentError (a fixed message). Needs no session: the signature is the proof."""
    try:
        reschedule_payment.complete_callback(params, reschedule_id=reschedule_id)
    except PaymentError as exc:
        return exc
    return None


def _tell(row, unpaid=None):
    """Back to the signed-in owner's visit page (checked by the caller), told how the fee's
    return went: ``unpaid`` (a PaymentError), else what the reschedule's row says now."""
    if unpaid is not None:
        flash_unpaid(unpaid, holds.fee_hold_left(row))
    elif row.status == RescheduleStatus.DONE:
        flash(N_("Fee paid; your appointment has moved."), "success")
    elif row.status == RescheduleStatus.PENDING_PAYMENT:  # not applied (yet)
        flash_unpaid(PaymentError(MSG_CONFIRMING))
    else:
        flash(row.failure_reason or N_("The appointment could not be moved."), "error")
    return redirect(url_for("patient.visit", visit_id=row.visit_id), 303)


@bp.get("/reschedules/<int:reschedule_id>/paid")
def reschedule_paid(reschedule_id):
    """Where the (sandbox) checkout returns, with razorpay_* or error[...] query params."""
    row = get_owned_or_404(Reschedule, reschedule_id)
    unpaid = _verify(gateway_returns.callback_params(request.args), row.id)
    return _tell(row, unpaid)  # expired by the callback's commit: read again


@bp.get("/reschedules/<int:reschedule_id>/returned")
def reschedule_returned(reschedule_id):
    """Where the fee's POST return sends the browser: ``?outcome=`` a fixed code
    (``gateway_returns``), told here, where the session is."""
    row = get_owned_or_404(Reschedule, reschedule_id)
    outcome = request.args.get("outcome")
    if outcome == gateway_returns.PAID:
        return _tell(row)
    unpaid = gateway_returns.unpaid_error(outcome)
    if unpaid is None:  # no such code: the page, nothing said
        return redirect(url_for("patient.visit", visit_id=row.visit_id), 303)
    return _tell(row, unpaid)


def reschedule_post_return(reschedule_id):
    """The hosted checkout's POST return (no session cookie, no CSRF token cross-site):
    verified and written here, told by ``reschedule_returned``; see
    visits.gateway_post_return."""
    leave_alone()  # whatever is done below, no session cookie to replace the browser's
    unpaid = _verify(gateway_returns.posted_params(request.form), reschedule_id)
    outcome = gateway_returns.PAID if unpaid is None else gateway_returns.outcome_of(unpaid)
    return redirect(
        url_for("patient.reschedule_returned", reschedule_id=reschedule_id, outcome=outcome), 303
    )


def _register_gateway_return():
    from portal.web.public import bp as public_bp

    public_bp.add_url_rule(
        f"{bp.url_prefix}/reschedules/<int:reschedule_id>/paid",
        endpoint="reschedule_paid_return",
        view_func=csrf.exempt(reschedule_post_return),
        methods=["POST"],
    )


_register_gateway_return()


# --- rebooking ----------------------------------------------------------------------------


@bp.get("/bookings/<int:item_id>/rebook")
def rebook(item_id):
    return _page(_item(item_id), _form(), "rebook")


@bp.post("/bookings/<int:item_id>/rebook")
def rebook_post(item_id):
    item, form, start = _posted_slot(item_id)
    if start is None:
        return _page(item, form, "rebook", status=422)
    try:
        new = rs.rebook(current_user, item.id, start)
    except BookingError as exc:
        form.slot.errors = [exc.message]
        return _page(item, form, "rebook", status=422)
    flash(N_("Booked again at today's price; pay to confirm."), "success")
    return redirect(url_for("patient.visit", visit_id=new.master_id), 303)
