"""Operator booking: every visit (filters, search as you type, pages), a new visit for a
patient (find or create the patient, add services with one provider or a team), payment
links (copy, resend), desk payments, and the visit's detail with its payment timeline.

htmx requests targeting ``#results`` / ``#patients`` get only that block; everything else
is a full page. Successful posts answer 303 back to the visit."""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts import queries as account_queries
from portal.accounts import service as accounts
from portal.accounts.models import PATIENT, User
from portal.booking import checkout as booking_checkout
from portal.booking import errors as booking_errors
from portal.booking import links as booking_links
from portal.booking import lookup as booking_lookup
from portal.booking import prices as booking_prices
from portal.booking import queries as booking_queries
from portal.booking import receipts as booking_receipts
from portal.booking import visits as booking_visits
from portal.booking.errors import BookingError, NotFound
from portal.booking.models import IndividualBooking, MasterBooking
from portal.catalog import queries as catalog_queries
from portal.catalog.models import Clinic
from portal.domain.states import VisitStatus
from portal.extensions import db
from portal.refunds import queries as refund_queries
from portal.web.admin import bp
from portal.web.errors import apply_booking_error, apply_errors
from portal.web.forms.booking import (
    FIELD_MAP,
    SELF,
    CouponCodeForm,
    DeskPaymentForm,
    NewPatientForm,
    OperatorItemForm,
    dependent_id_of,
    options,
    person_value,
)
from portal.web.htmx import htmx_block, render, render_form
from portal.web.paging import page_args
from portal.web.patient.visits import timeline

VISIT_STATUSES = tuple(VisitStatus)
LIST = "admin/visits/index.html"
NEW = "admin/visits/new.html"
DETAIL = "admin/visits/detail.html"
ADD = "admin/visits/add_item.html"
PER_PAGE = 20


# --- the list ----------------------------------------------------------------------------


def _filters():
    status = request.args.get("status", "")
    attention = request.args.get("attention", "")
    return {
        "q": request.args.get("q", "").strip()[:100],
        "status": status if status in VISIT_STATUSES else "",
        "attention": attention if attention in ("yes", "no") else "",
    }


@bp.get("/visits")
def visits():
    f = _filters()
    page = booking_queries.visits_page(
        status=f["status"] or None,
        search=f["q"] or None,
        needs_attention={"yes": True, "no": False}.get(f["attention"]),
        count=True,
        **page_args(PER_PAGE),
    )
    return render(
        LIST,
        block=htmx_block("results"),
        page=page,
        f=f,
        statuses=VISIT_STATUSES,
        needs_attention=booking_lookup.visit_needs_attention,
    )


# --- a new visit: the patient first ----------------------------------------------------


@bp.get("/visits/new")
def new_visit():
    q = request.args.get("q", "").strip()[:100]
    return render_form(
        NEW,
        NewPatientForm(formdata=None),
        block=htmx_block("patients"),
        q=q,
        patients=account_queries.find_patients(q),
    )


@bp.post("/visits/new/patient")
def create_patient():
    """A walk-in or phone patient: an account without a password and a welcome mail with a
    link to choose one."""
    form = NewPatientForm()
    if form.validate_on_submit():
        try:
            patient = accounts.add_patient(
                current_user, form.name.data, form.email.data, form.phone.data
            )
        except accounts.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            flash(
                f"{patient.name} added; they were mailed a welcome with a link to sign in.",
                "success",
            )
            return redirect(url_for("admin.new_visit_for", patient_id=patient.id), 303)
    return render_form(NEW, form, q="", patients=[])


# --- adding services ---------------------------------------------------------------------


def _patient_or_404(patient_id):
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role != PATIENT:
        abort(404)
    return patient


def _item_form(patient, visit=None):
    form = OperatorItemForm()
    form.service.choices = options(
        (s.id, f"{s.name} ({s.kind.replace('_', ' ').lower()}, {s.duration_minutes} min)")
        for s in catalog_queries.active_services()
    )
    form.providers.choices = options(
        (p.id, p.display_name) for p in catalog_queries.active_providers()
    )
    form.clinic.choices = options(
        (c.id, f"{c.name}, {c.city}") for c in catalog_queries.active_clinics()
    )
    people = [(SELF, f"{patient.name} (the patient)")] + [
        (f"dependent:{d.id}", f"{d.name} ({d.relationship_})") for d in patient.dependents
    ]
    if visit is not None:  # a visit is for one person
        people = [p for p in people if p[0] == person_value(visit.dependent_id)]
    form.person.choices = options(people)
    earlier = booking_queries.referable_bookings(patient.id)
    form.referral.choices = options(
        [("", "No referral")]
        + [
            (str(b.id), f"{b.service.name} · {b.visit.for_name} · {b.start_at:%d %b %Y}")
            for b in earlier
        ]
    )
    return form


def _start_at(form):
    """The typed local date and time at the chosen clinic, as aware UTC (None if unknown)."""
    clinic = db.session.get(Clinic, form.clinic.data) if form.clinic.data else None
    if clinic is None or not form.date.data or not form.time.data:
        return None
    return datetime.combine(form.date.data, form.time.data, tzinfo=ZoneInfo(clinic.timezone))


def _add_item(form, patient, visit=None):
    """Validate and hold; returns the new item, or None with errors on the form."""
    if not form.validate_on_submit():
        return None
    start = _start_at(form)
    if start is None:
        form.clinic.errors = [*form.clinic.errors, "Choose a clinic."]
        return None
    try:
        return booking_visits.add_item(
            current_user,
            patient_id=patient.id,
            service_id=form.service.data,
            provider_ids=form.providers.data,
            clinic_id=form.clinic.data,
            start_at=start,
            dependent_id=dependent_id_of(form.person.data),
            visit_id=visit.id if visit else None,
            referral_id=int(form.referral.data) if form.referral.data else None,
            meet_link=form.meet_link.data or None,
        )
    except NotFound:
        form.form_errors.append("That patient, person or catalog entry no longer exists.")
    except booking_errors.BookingError as exc:
        apply_booking_error(form, exc, FIELD_MAP)
        if exc.field == "start_at" and exc.message not in form.form_errors:
            form.time.errors = [*form.time.errors, exc.message]
    return None


@bp.route("/visits/new/<int:patient_id>", methods=["GET", "POST"])
def new_visit_for(patient_id):
    """The first service of a new visit for this patient."""
    patient = _patient_or_404(patient_id)
    form = _item_form(patient)
    if request.method == "POST":
        item = _add_item(form, patient)
        if item is not None:
            flash(f"{item.service.name} held. Add more, then take the payment.", "success")
            return redirect(url_for("admin.visit", visit_id=item.master_id), 303)
    return render_form(ADD, form, patient=patient, visit=None)


# --- one visit ---------------------------------------------------------------------------


def _visit_or_404(visit_id):
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        abort(404)
    return visit


def _detail(visit, *, item_form=None, desk_form=None, coupon_form=None, status=None):
    item_form = item_form or (_item_form(visit.patient, visit) if visit.is_open else None)
    desk_form = desk_form or DeskPaymentForm(formdata=None)
    coupon_form = coupon_form or CouponCodeForm(formdata=None)
    if status is None:
        forms = [f for f in (item_form, desk_form, coupon_form) if f is not None]
        status = 422 if any(f.errors for f in forms) else 200
    return render(
        DETAIL,
        status=status,
        visit=visit,
        quote=booking_prices.quote(visit),
        money=refund_queries.visit_money(visit),
        item_form=item_form,
        desk_form=desk_form,
        coupon_form=coupon_form,
        timeline=timeline(visit),
        needs_attention=booking_lookup.visit_needs_attention(visit),
        wallet_balance=booking_prices.wallet_balance(visit.patient_id),
    )


def _back(visit):
    return redirect(url_for("admin.visit", visit_id=visit.id), 303)


@bp.get("/visits/<int:visit_id>")
def visit(visit_id):
    return _detail(_visit_or_404(visit_id))


@bp.post("/visits/<int:visit_id>/items")
def add_visit_item(visit_id):
    visit = _visit_or_404(visit_id)
    form = _item_form(visit.patient, visit)
    item = _add_item(form, visit.patient, visit)
    if item is None:
        return _detail(visit, item_form=form, status=422)
    flash(f"{item.service.name} added.", "success")
    return _back(visit)


@bp.post("/visits/<int:visit_id>/items/<int:item_id>/remove")
def remove_visit_item(visit_id, item_id):
    visit = _visit_or_404(visit_id)
    item = db.session.get(IndividualBooking, item_id)
    if item is None or item.master_id != visit.id:
        abort(404)
    try:
        booking_visits.remove_item(current_user, item.id)
    except BookingError as exc:
        flash(exc.message, "error")
    else:
        flash("Removed; the slot is free again.", "success")
    return _back(visit)


@bp.post("/visits/<int:visit_id>/coupon")
def apply_visit_coupon(visit_id):
    visit = _visit_or_404(visit_id)
    form = CouponCodeForm()
    if form.validate_on_submit():
        try:
            booking_visits.apply_coupon(current_user, visit.id, form.code.data)
        except booking_errors.BookingError as exc:
            apply_booking_error(form, exc, FIELD_MAP)
        else:
            flash("Coupon applied.", "success")
            return _back(visit)
    return _detail(visit, coupon_form=form, status=422)


@bp.post("/visits/<int:visit_id>/coupon/remove")
def remove_visit_coupon(visit_id):
    visit = _visit_or_404(visit_id)
    try:
        booking_visits.remove_coupon(current_user, visit.id)
    except BookingError as exc:
        flash(exc.message, "error")
    return _back(visit)


@bp.post("/visits/<int:visit_id>/payment-link")
def create_payment_link(visit_id):
    visit = _visit_or_404(visit_id)
    try:
        booking_links.create_payment_link(current_user, visit.id)
    except BookingError as exc:
        flash(exc.message, "error")
    else:
        flash("Payment link created and sent to the patient.", "success")
    return _back(visit)


@bp.post("/visits/<int:visit_id>/payments/<int:payment_id>/resend")
def resend_payment_link(visit_id, payment_id):
    visit = _visit_or_404(visit_id)
    if payment_id not in {p.id for p in visit.payments}:
        abort(404)
    try:
        booking_links.resend_payment_link(current_user, payment_id)
    except BookingError as exc:
        flash(exc.message, "error")
    else:
        flash("Payment link sent again.", "success")
    return _back(visit)


@bp.post("/visits/<int:visit_id>/desk-payment")
def record_desk_payment(visit_id):
    visit = _visit_or_404(visit_id)
    form = DeskPaymentForm()
    if form.validate_on_submit():
        try:
            booking_checkout.record_desk_payment(current_user, visit.id, form.receipt_no.data)
        except booking_errors.BookingError as exc:
            apply_booking_error(form, exc, FIELD_MAP)
        else:
            flash("Desk payment recorded; the visit is confirmed.", "success")
            return _back(visit)
    return _detail(visit, desk_form=form, status=422)


@bp.get("/visits/<int:visit_id>/receipt")
def visit_receipt(visit_id):
    visit = _visit_or_404(visit_id)
    try:
        receipt = booking_receipts.receipt(visit)
    except BookingError as exc:
        flash(exc.message, "warning")
        return _back(visit)
    return render("patient/visits/receipt.html", visit=visit, receipt=receipt)
