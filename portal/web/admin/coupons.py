"""Coupons admin: list, create, edit inline (htmx swaps one table row), deactivate.

The edit form carries the coupon's ``version``: saved after another administrator changed
the coupon (deactivated it, say) it is refused, 422, the form filled with the coupon as it
is now and why on top; it put back every field as the form had it.

Dates are whole days in India time: "valid from" starts at 00:00 IST, "valid until" runs to
the end of that day. Values are typed as a percentage or rupees and stored as basis points
or paise (parsed with Decimal in the form)."""

from datetime import datetime, time, timedelta

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts.service import ValidationError
from portal.booking import coupons as booking_coupons
from portal.booking import queries
from portal.booking.models import PERCENT, Coupon
from portal.catalog.checks import StaleEdit
from portal.domain.rates import INDIA_TZ, bps_to_text, paise_to_text
from portal.extensions import db
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.base import EDIT_PREFIX
from portal.web.forms.booking import CouponForm
from portal.web.htmx import htmx_block, render, render_form
from portal.web.paging import page_args

LIST = "admin/coupons/index.html"
EDIT = "admin/coupons/edit.html"
ROW = "admin/coupons/_row.html"  # one table row: the answer to inline htmx actions


def _day_start(day):
    return datetime.combine(day, time(0), tzinfo=INDIA_TZ) if day else None


def _day_end(day):
    """ "Valid until 31 Mar" = until 1 Apr 00:00 IST (the service treats it as exclusive)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=INDIA_TZ) if day else None


def last_day(coupon):
    """The last whole day a coupon is valid, as typed in the form."""
    if coupon.valid_until is None:
        return None
    return (coupon.valid_until.astimezone(INDIA_TZ) - timedelta(microseconds=1)).date()


def _values(form):
    return dict(
        code=form.code.data,
        kind=form.kind.data,
        value=form.value_int,
        description=(form.description.data or "").strip(),
        valid_from=_day_start(form.valid_from.data),
        valid_until=_day_end(form.valid_until.data),
        max_uses=form.max_uses.data,
        max_uses_per_patient=form.max_uses_per_patient.data,
        active=bool(form.active.data),
    )


def _form_for(coupon):
    value = bps_to_text(coupon.value) if coupon.kind == PERCENT else paise_to_text(coupon.value)
    return CouponForm(
        formdata=None,
        prefix=EDIT_PREFIX,
        data={
            "code": coupon.code,
            "description": coupon.description,
            "kind": coupon.kind,
            "value": value,
            "valid_from": coupon.valid_from.astimezone(INDIA_TZ).date()
            if coupon.valid_from
            else None,
            "valid_until": last_day(coupon),
            "max_uses": coupon.max_uses,
            "max_uses_per_patient": coupon.max_uses_per_patient,
            "active": coupon.active,
            "version": str(coupon.version),
        },
    )


def _coupon_or_404(coupon_id):
    coupon = db.session.get(Coupon, coupon_id)
    if coupon is None:
        abort(404)
    return coupon


def _list_page(form):
    return render_form(
        LIST,
        form,
        block=htmx_block("coupon_form"),
        coupons=queries.coupons_page(**page_args(50)),
        last_day=last_day,
    )


@bp.get("/coupons")
def coupons():
    return _list_page(CouponForm(formdata=None))


@bp.post("/coupons")
def create_coupon():
    form = CouponForm()
    if form.validate_on_submit():
        try:
            coupon = booking_coupons.create_coupon(current_user, **_values(form))
        except ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            flash(f"Coupon {coupon.code} created.", "success")
            return redirect(url_for("admin.coupons"), 303)
    return _list_page(form)


@bp.get("/coupons/<int:coupon_id>")
def coupon_row(coupon_id):
    """One row (the "cancel" of an inline edit); a plain request gets the list."""
    coupon = _coupon_or_404(coupon_id)
    if htmx_block(f"coupon_{coupon.id}") is None:
        return redirect(url_for("admin.coupons"), 303)
    return render(ROW, partial=True, coupon=coupon, last_day=last_day)


@bp.route("/coupons/<int:coupon_id>/edit", methods=["GET", "POST"])
def edit_coupon(coupon_id):
    """The edit form: inline in the table row over htmx, its own page otherwise."""
    coupon = _coupon_or_404(coupon_id)
    form = _form_for(coupon) if request.method == "GET" else CouponForm(prefix=EDIT_PREFIX)
    if form.validate_on_submit():
        try:
            booking_coupons.update_coupon(
                current_user, coupon.id, base_version=form.base_version(), **_values(form)
            )
        except StaleEdit as exc:  # another admin changed it: the form as it is now, and why
            db.session.rollback()
            coupon = _coupon_or_404(coupon_id)
            form = _form_for(coupon)
            apply_errors(form, exc.errors)
        except ValidationError as exc:
            db.session.rollback()
            apply_errors(form, exc.errors)
        else:
            return _row_or_list(coupon, "saved")
    block = "edit_row" if htmx_block(f"coupon_{coupon.id}") else None  # inline in the table
    return render_form(EDIT, form, block=block, coupon=coupon, last_day=last_day)


def _set_active(coupon_id, active):
    coupon = _coupon_or_404(coupon_id)
    booking_coupons.update_coupon(current_user, coupon.id, active=active)
    return _row_or_list(coupon, "reactivated" if active else "deactivated")


def _row_or_list(coupon, done):
    """htmx: the updated row in place; otherwise back to the list with a message."""
    if htmx_block(f"coupon_{coupon.id}"):
        return render(ROW, partial=True, coupon=coupon, last_day=last_day)
    flash(f"Coupon {coupon.code} {done}.", "success")
    return redirect(url_for("admin.coupons"), 303)


@bp.post("/coupons/<int:coupon_id>/deactivate")
def deactivate_coupon(coupon_id):
    return _set_active(coupon_id, False)


@bp.post("/coupons/<int:coupon_id>/activate")
def activate_coupon(coupon_id):
    return _set_active(coupon_id, True)
