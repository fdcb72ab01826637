"""Operator booking: every visit (filters, search as you type, pages), a new visit for a
patient (find or create the patient, add services with one provider or a team), payment
links (copy, resend), desk payments, and the visit's detail with its payment timeline.

htmx requests targeting ``#results`` / ``#patients`` get only that block; everything else
is a full page. Successful posts answer 303 back to the visit."""

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts import dependents as account_dependents
from portal.accounts import queries as account_queries
from portal.accounts import service as accounts
from portal.accounts.models import PATIENT, User
from portal.booking import attention as booking_attention
from portal.booking import checkout as booking_checkout
from portal.booking import desk
from portal.booking import errors as booking_errors
from portal.booking import links as booking_links
from portal.booking import prices as booking_prices
from portal.booking import queries as booking_queries
from portal.booking import receipts as booking_receipts
from portal.booking import visits as booking_visits
from portal.booking.access import why_not_bookable
from portal.booking.errors import BookingError, NotFound
from portal.booking.models import IndividualBooking, MasterBooking
from portal.catalog import queries as catalog_queries
from portal.catalog.models import Clinic
from portal.catalog.slots import search_providers, team_next_free_slots
from portal.config import policy
from portal.db import clinic_today, utcnow
from portal.domain import pricing
from portal.domain.slots import LIST_SPAN_DAYS, listed_day
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.reconcile import queries as reconcile_queries
from portal.refunds import queries as refund_queries
from portal.transactions import references
from portal.web.admin import bp
from portal.web.errors import apply_booking_error, apply_errors
from portal.web.filters import clinic_time
from portal.web.forms.booking import (
    FIELD_MAP,
    SELF,
    CouponCodeForm,
    DeskPaymentForm,
    NewPatientForm,
    dependent_id_of,
    options,
    parse_start,
    person_value,
    referral_label,
)
from portal.web.forms.operations import (
    AppointmentFilterForm,
    ChildForm,
    OnBehalfForm,
    ResolveForm,
)
from portal.web.htmx import (
    htmx_block,
    in_place_request,
    render,
    render_form,
    render_in_place,
    swap_form,
)
from portal.web.paging import page_args

LIST = "admin/visits/index.html"
NEW = "admin/visits/new.html"
NOT_BOOKABLE = "admin/visits/not_bookable.html"
DETAIL = "admin/visits/detail.html"
ADD = "admin/visits/add_item.html"
PER_PAGE = 20


# --- the list ----------------------------------------------------------------------------


def _filter_form():
    return AppointmentFilterForm(
        request.args,
        clinics=catalog_queries.active_clinics(),
        providers=catalog_queries.active_providers(),
    )


@bp.get("/visits")
def visits():
    """The appointments list: every filter in the URL; a bad filter is a message beside
    its field (422) and no rows, never a guess."""
    form = _filter_form()
    today = clinic_today()
    ok = form.validate()
    page = found = None
    if ok:
        f = form.to_filter(today)
        # A Razorpay id or an invoice / credit-note number is looked up exactly, never
        # as a name (references.find: one indexed statement).
        found = references.find(f.search)
        if found is not None:
            f = replace(f, search=None, visit_ids=tuple(found.visits))
        page = desk.appointments_page(f, **page_args(PER_PAGE))
    recon = reconcile_queries.open_cases_by_visit(v.id for v in page.items) if page else {}
    return render(
        LIST,
        block=htmx_block("results"),
        status=200 if ok else 422,
        form=form,
        page=page,
        args=form.args(),
        recon=recon,
        found=found,
        desk=desk,
        attention=booking_attention,
        now=utcnow(),
    )


# --- a new visit: the patient first ----------------------------------------------------


# A time chosen on Find a doctor (portal.web.patient.handoff), carried to the patient's
# first-appointment picker through the search and the new-patient form.
SLOT_ARGS = ("service", "clinic", "providers", "day", "slot")


def _slot_args(values):
    return {name: values[name][:64] for name in SLOT_ARGS if values.get(name)}


@bp.get("/visits/new")
def new_visit():
    q = request.args.get("q", "").strip()[:100]
    patients = account_queries.find_patients(q)
    return render_form(
        NEW,
        NewPatientForm(formdata=None),
        block=htmx_block("patients"),
        q=q,
        patients=patients,
        # Listed all the same, with why one cannot be booked and no booking link.
        not_bookable={p.id: why_not_bookable(p) for p in patients},
        slot_args=_slot_args(request.args),
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
            return redirect(
                url_for("admin.new_visit_for", patient_id=patient.id, **_slot_args(request.form)),
                303,
            )
    return render_form(
        NEW, form, q="", patients=[], not_bookable={}, slot_args=_slot_args(request.form)
    )


# --- adding services ---------------------------------------------------------------------


def _patient_or_404(patient_id):
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role != PATIENT:
        abort(404)
    return patient


def _refused(patient, reason):
    """The desk's booking page for a patient it cannot book for: why, and no form (409).
    A form's answer is swapped in (``swap_form``); the picker's preview is not."""
    response = render(NOT_BOOKABLE, status=409, patient=patient, reason=reason)
    return swap_form(response) if request.method != "GET" else response


def _item_form(patient, visit=None, formdata=True):
    """The on-behalf form with its choices: only the providers who offer the chosen service
    (at the chosen clinic), the free times of the chosen provider(s) (the slot picker) and
    the people of the account. ``formdata=None``: a GET preview from the query string."""
    form = OnBehalfForm() if formdata is True else OnBehalfForm(formdata=formdata)
    # Kept while the form is built: the session holds loaded rows weakly, and the chosen
    # service and clinic are picked from these (a get() after they were dropped read
    # each again).
    services = {s.id: s for s in catalog_queries.active_services()}
    clinics = {c.id: c for c in catalog_queries.active_clinics()}
    form.service.choices = options(
        (s.id, f"{s.name} ({s.kind.replace('_', ' ').lower()}, {s.duration_minutes} min)")
        for s in services.values()
    )
    form.clinic.choices = options((c.id, f"{c.name}, {c.city}") for c in clinics.values())
    # A select always shows an option: with none chosen yet the page shows the first, so
    # the providers and free times below must be the first one's too, not everyone's.
    for field in (form.service, form.clinic):
        if formdata is not True and field.data is None and field.choices:  # a preview
            field.data = field.choices[0].value
    service, clinic = services.get(form.service.data), clinics.get(form.clinic.data)
    providers = (
        # Read-only copies from the catalog cache (the form prints them and the picker
        # reads their hours): merging them into the session cost three statements.
        search_providers(
            service_id=service.id, clinic_id=clinic.id if clinic else None, attach=False
        )
        if service
        else catalog_queries.active_providers()
    )
    form.providers.choices = options((p.id, p.display_name) for p in providers)
    people = [(SELF, f"{patient.name} (the patient)")] + [
        (f"dependent:{d.id}", f"{d.name} ({d.relationship_})") for d in patient.dependents
    ]
    if visit is not None:  # a visit is for one person
        people = [p for p in people if p[0] == person_value(visit.dependent_id)]
    form.person.choices = options(people)
    earlier = booking_queries.referable_bookings(patient.id)
    form.referral.choices = options(
        [("", "No referral")] + [(str(b.id), referral_label(b)) for b in earlier]
    )
    chosen = [p for p in providers if p.id in set(form.providers.data or ())]
    form.picker = _picker(form, service, clinic, chosen)
    return form


def _picker(form, service, clinic, providers):
    """The free times (as the patient's find page computes them) and the price breakup."""
    price = pricing.price_item(service.fee_paise, service.taxable, policy()) if service else None
    slots = []
    today = utcnow().astimezone(ZoneInfo(clinic.timezone) if clinic else CLINIC_TZ).date()
    day = listed_day(form.day.data if isinstance(form.day.data, date) else today, today)
    if service and clinic and providers:
        slots = team_next_free_slots(providers, service, clinic, day, days=LIST_SPAN_DAYS, limit=24)
        form.slot.choices = [(s.isoformat(), clinic_time(s, clinic.timezone)) for s in slots]
    return {
        "price": price,
        "slots": slots,
        "day": day,
        "ready": bool(service and clinic and providers),
    }


def _start_at(form):
    """The chosen free time, or the typed local date and time at the chosen clinic, as aware
    UTC (None if unknown)."""
    if form.slot.data:
        return parse_start(form.slot.data)
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
        # The patient exists (we hold the row): a deactivated or closed account is why.
        form.form_errors.append(
            why_not_bookable(patient) or "That patient, person or catalog entry no longer exists."
        )
    except booking_errors.BookingError as exc:
        apply_booking_error(form, exc, FIELD_MAP)
        if exc.field == "start_at" and exc.message not in form.form_errors:
            form.time.errors = [*form.time.errors, exc.message]
    return None


@bp.route("/visits/new/<int:patient_id>", methods=["GET", "POST"])
def new_visit_for(patient_id):
    """The first service of a new visit for this patient."""
    patient = _patient_or_404(patient_id)
    if reason := why_not_bookable(patient):
        return _refused(patient, reason)
    if request.method == "GET":
        # The picker: choosing a service, clinic, provider or day re-renders the form
        # (htmx swaps #picker) with the providers who offer it and their free times.
        form = _item_form(patient, formdata=request.args or None)
        return render(
            ADD,
            block=htmx_block("picker"),
            form=form,
            patient=patient,
            visit=None,
            child_form=ChildForm(formdata=None),
        )
    form = _item_form(patient)
    item = _add_item(form, patient)
    if item is not None:
        flash(f"{item.service.name} held. Add more, then take the payment.", "success")
        return redirect(url_for("admin.visit", visit_id=item.master_id), 303)
    return render_form(ADD, form, patient=patient, visit=None, child_form=ChildForm(formdata=None))


@bp.post("/visits/new/<int:patient_id>/child")
def add_child(patient_id):
    """A child (or other dependent) added for the patient on the spot; back to the new
    visit with them chosen."""
    patient = _patient_or_404(patient_id)
    if reason := why_not_bookable(patient):
        return _refused(patient, reason)
    form = ChildForm()
    if form.validate_on_submit():
        try:
            child = account_dependents.add_dependent(
                patient,
                form.name.data,
                form.relationship.data,
                form.date_of_birth.data,
                actor=current_user,
            )
        except account_dependents.DuplicateDependent as exc:
            # A double click (or someone added before): the child already there is chosen.
            born = (
                f" (born {account_dependents.born(exc.date_of_birth)})" if exc.date_of_birth else ""
            )
            said = f"{exc.name}{born} is already on {patient.name}'s account"
            if exc.dependent_id is None:
                apply_errors(form, {"name": f"{said}."})
            else:
                flash(f"{said}: chosen for this visit.", "info")
                return _with_child(patient, exc.dependent_id)
        except accounts.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            flash(f"{child.name} added to {patient.name}'s account.", "success")
            return _with_child(patient, child.id)
    return render(
        ADD,
        status=422,
        form=_item_form(patient, formdata=None),
        patient=patient,
        visit=None,
        child_form=form,
    )


def _with_child(patient, dependent_id):
    """Back to the patient's new visit with this dependent chosen."""
    url = url_for("admin.new_visit_for", patient_id=patient.id, person=f"dependent:{dependent_id}")
    return redirect(url, 303)


# --- one visit ---------------------------------------------------------------------------


def _visit_or_404(visit_id):
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        abort(404)
    return visit


def _detail(
    visit, *, item_form=None, desk_form=None, coupon_form=None, status=None, meet=None, resolve=None
):
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
        # The open link that keeps a lapsed coupon's price, as the patient's page says.
        link_kept=booking_prices.link_kept(visit) if visit.is_open else None,
        # What "Record desk payment" records and carries (a pending checkout abandoned).
        desk_quote=booking_prices.desk_quote(visit) if visit.is_open else None,
        money=refund_queries.visit_money(visit),
        # Its paid reschedule fees (one statement however many, none while open).
        fees=refund_queries.visit_fees(visit),
        item_form=item_form,
        desk_form=desk_form,
        coupon_form=coupon_form,
        timeline=desk.timeline(visit),
        reasons=booking_attention.reasons(visit),
        next=desk.hint(visit),
        resolve_form=ResolveForm(formdata=None),
        recon=reconcile_queries.open_cases_by_visit([visit.id]).get(visit.id, 0),
        wallet_balance=booking_prices.wallet_balance(visit.patient_id),
        meet=meet,
        resolve=resolve,
    )


def refused_meet_link(visit, item, value, error):
    """A refused meeting link (off the allow-list, not a URL, none): the visit page again
    (422) with the typed link kept in the item's field and why beside it, as the doctor's
    schedule row does; to htmx (the page's forms are boosted), only that form, swapped in
    place (``#meet-link-<item>``). It was a flash and a 303: the operator typed it again."""
    meet = {"item_id": item.id, "value": value, "error": error}
    if not in_place_request():
        return _detail(visit, status=422, meet=meet)
    return render_in_place(
        DETAIL, "meet_link", f"#meet-link-{item.id}", status=422, visit=visit, item=item, meet=meet
    )


def refused_resolve(visit, key, note, error):
    """A refused resolve of a flag (``key``: its flag row's id, or "visit" for the visit's
    own flag): the visit page again (422) with the flags as they are now, the typed note
    kept in that flag's form and why beside it (a flag changed meanwhile, no note); to
    htmx, only the attention section (``#attention-box``), as ``refused_meet_link``. It
    was a flash and a 303: the note was lost."""
    resolve = {"key": key, "note": note, "error": error}
    if not in_place_request():
        return _detail(visit, status=422, resolve=resolve)
    return render_in_place(
        DETAIL,
        "attention",
        "#attention-box",
        status=422,
        visit=visit,
        reasons=booking_attention.reasons(visit),
        resolve=resolve,
    )


def _back(visit):
    return redirect(url_for("admin.visit", visit_id=visit.id), 303)


@bp.get("/visits/<int:visit_id>")
def visit(visit_id):
    visit = _visit_or_404(visit_id)
    # "Add a service" is the new visit's picker (htmx asks this page again with the
    # form's values): only the providers who offer the chosen service, and their free
    # times. It listed every provider.
    if not visit.is_open:
        return _detail(visit)
    return _detail(visit, item_form=_item_form(visit.patient, visit, formdata=request.args or None))


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
    except booking_links.LinkPending as exc:  # a second click: the link stands, not an error
        flash(exc.message, "info")
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
            # None when the post did not carry the button's amount: the service asks again.
            booking_checkout.record_desk_payment(
                current_user,
                visit.id,
                form.receipt_no.data,
                confirmed_amount=form.confirmed_amount(),
            )
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
    return render(
        "patient/visits/receipt.html",
        visit=visit,
        receipt=receipt,
        fees=refund_queries.visit_fees(visit),
    )
