"""Admin: move a patient's confirmed booking to another free time of the same provider(s).

The page shows the booking, the fee for this notice (the overridden quote when "Override
the 24-hour rule" is ticked, the hours the booking's policy's cut-off: allowed until the
start, charged the highest tier), the free times for a chosen day (htmx swaps the list,
and the fee when the override changes) and how the fee is paid: from the patient's
wallet, or at the clinic desk with a receipt."""

from flask import flash, redirect, request, url_for
from flask_login import current_user

from portal.booking import prices as booking_prices
from portal.booking import reschedule as rs
from portal.booking.errors import BookingError
from portal.booking.models import IndividualBooking
from portal.domain.slots import LIST_SPAN_DAYS
from portal.extensions import db
from portal.policies import store as policy_store
from portal.web.admin import bp
from portal.web.errors import apply_booking_error
from portal.web.filters import clinic_time
from portal.web.forms.booking import (
    MOVE_FIELDS,
    AdminMoveForm,
    move_day,
    parse_start,
)
from portal.web.htmx import htmx_block, render

PAGE = "admin/reschedule/reschedule.html"


def _form(item, **kwargs):
    return AdminMoveForm(policy=policy_store.for_booking(item), **kwargs)


def _page(item, form, status=200):
    day = move_day(form, item)
    slots = rs.free_slots(item, day, days=LIST_SPAN_DAYS, limit=16)
    form.slot.choices = [(s.isoformat(), clinic_time(s, item.clinic.timezone)) for s in slots]
    _, quote = rs.quote(current_user, item.id, admin_override=bool(form.override.data))
    form.show_start(item)  # as it is now, after a refusal too
    return render(
        PAGE,
        block=htmx_block("slots", "fee"),
        status=status,
        item=item,
        form=form,
        quote=quote,
        slots=slots,
        wallet_balance=booking_prices.wallet_balance(item.visit.patient_id),
    )


@bp.get("/bookings/<int:item_id>/reschedule")
def reschedule_booking(item_id):
    item = db.get_or_404(IndividualBooking, item_id)
    return _page(item, _form(item, formdata=request.args or None))


@bp.post("/bookings/<int:item_id>/reschedule")
def reschedule_booking_post(item_id):
    item = db.get_or_404(IndividualBooking, item_id)
    form = _form(item)
    if not form.validate():
        return _page(item, form, status=422)
    start = parse_start(form.slot.data)
    try:
        rs.reschedule(
            current_user,
            item.id,
            start,
            pay_with=form.pay_with.data or None,
            admin_override=form.override.data,
            receipt_no=form.receipt_no.data,
            expected_fee=form.confirmed_fee(),
            shown_start=form.confirmed_start(),
        )
    except BookingError as exc:
        apply_booking_error(form, exc, MOVE_FIELDS)
        return _page(item, form, status=422)
    flash(f"Moved to {clinic_time(start, item.clinic.timezone)}.", "success")
    return redirect(url_for("admin.visit", visit_id=item.master_id), 303)
