"""Admin: the catalog screens (clinics, specializations, providers, services).

Each screen is a searchable, paged table. An htmx request gets only what it replaces: the
``results`` block for the search box and page links, one row's edit form (``edit_row``)
when a row is clicked, and the saved row (``_<thing>_row.html``) after a save. Without
htmx the same URLs are ordinary pages: the edit form is a page of its own and a save
redirects back to the list. An invalid form answers 422 with messages beside the fields.
A clinic's, a specialization's, a provider's or a service's edit form carries the row's
``version``: saved after another administrator changed the row it is refused, 422, the
form filled with the row as it is now and why on top (it put back every field as the form
had it).

Over 400 lines: four small screens of one shape (list, add, edit), kept side by side."""

from decimal import Decimal

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from wtforms import (
    SelectChoice,
)

from portal.catalog import queries
from portal.catalog.checks import StaleEdit, ValidationError
from portal.catalog.clinics import (
    create_clinic,
    create_specialization,
    update_clinic,
    update_specialization,
)
from portal.catalog.models import (
    DEFAULT_HOURS,
    WEEKDAYS,
    Clinic,
    Provider,
    Service,
    Specialization,
)
from portal.catalog.providers import create_provider, update_provider
from portal.catalog.services import create_service, update_service
from portal.domain.slots import format_hours
from portal.extensions import db
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.base import EDIT_PREFIX
from portal.web.forms.catalog import (
    ClinicForm,
    NewProviderForm,
    ProviderForm,
    ServiceForm,
    SpecializationForm,
)
from portal.web.htmx import fragment_block, is_fragment_request, render, render_form
from portal.web.paging import page_args

PER_PAGE = 20
T = "admin/catalog/"


def _list(template, list_page, **context):
    """A catalog list: ``list_page`` is the read module's keyset query for it."""
    q = request.args.get("q", "").strip()[:100]
    page = list_page(q=q, **page_args(PER_PAGE))
    return render(T + template, block=fragment_block("results"), page=page, q=q, **context)


def _row_or_list(row_template, list_endpoint, **context):
    """After a save, or on Cancel: the row for htmx, the list for a plain request."""
    if is_fragment_request():
        return render(T + row_template, **context)
    flash("Saved.", "success")
    return redirect(url_for(list_endpoint), 303)


def _save(form, errors_to_fields, call):
    """Run a service call; its ValidationError lands beside the form's fields."""
    try:
        return call()
    except StaleEdit:
        raise  # the caller shows the row as it is now
    except ValidationError as exc:
        apply_errors(form, {errors_to_fields.get(k, k): v for k, v in exc.errors.items()})
    except ValueError as exc:  # a value the form could parse but the service cannot use
        form.form_errors.append(str(exc))
    return None


def _get(model, object_id):
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    return obj


def _stale(model, object_id, fill, exc):
    """A save refused as built on an older version (``StaleEdit``): the form filled with
    the row as it is now (its new version), the refusal on top."""
    db.session.rollback()
    form = fill(_get(model, object_id))
    apply_errors(form, exc.errors)
    return form


# --- clinics ------------------------------------------------------------------------------


CLINIC_ERRORS = {f"hours_{d}": f"opens_{d}" for d in range(7)}


def _new_clinic_form():
    form = ClinicForm()
    if request.method == "GET":
        for day in range(5):  # the policy's default hours, Mon–Fri 09–18
            getattr(form, f"opens_{day}").data = DEFAULT_HOURS[day][0]
            getattr(form, f"closes_{day}").data = DEFAULT_HOURS[day][1]
    return form


def _clinic_form(clinic):
    """The edit form filled with the clinic as stored, its ``version`` included."""
    data = {
        k: getattr(clinic, k)
        for k in ("name", "city", "address", "timezone", "gstin", "active", "version")
    }
    for day, (opens, closes) in clinic.business_hours().items():
        data[f"opens_{day}"], data[f"closes_{day}"] = opens, closes
    return ClinicForm(formdata=None, data=data)


def _clinic_values(form):
    hours = {}
    for day in range(7):
        opens, closes = getattr(form, f"opens_{day}").data, getattr(form, f"closes_{day}").data
        if opens or closes:
            if not (opens and closes):
                getattr(form, f"opens_{day}").errors.append("Enter both times, or neither.")
                continue
            hours[day] = (opens, closes)
    return dict(
        name=form.name.data,
        city=form.city.data,
        address=form.address.data or "",
        timezone=form.timezone.data,
        gstin=form.gstin.data or None,
        hours=hours,
    )


def _clinic_hours_text(clinic):
    hours = clinic.business_hours()
    return "; ".join(f"{WEEKDAYS[d][:3]} {format_hours([w])}" for d, w in sorted(hours.items()))


@bp.get("/clinics")
def clinics():
    return _list("clinics.html", queries.clinics_page, hours_text=_clinic_hours_text)


@bp.route("/clinics/new", methods=["GET", "POST"])
def clinic_new():
    form = _new_clinic_form()
    if form.validate_on_submit():
        values = _clinic_values(form)
        if not form.errors:
            clinic = _save(form, CLINIC_ERRORS, lambda: create_clinic(current_user, **values))
            if clinic:
                flash(f"{clinic.name} added.", "success")
                return redirect(url_for("admin.clinics"), 303)
    return render_form(T + "clinic_new.html", form, weekdays=WEEKDAYS)


@bp.route("/clinics/<int:clinic_id>/edit", methods=["GET", "POST"])
def clinic_edit(clinic_id):
    clinic = _get(Clinic, clinic_id)
    form = _clinic_form(clinic) if request.method == "GET" else ClinicForm()
    if form.validate_on_submit():
        values = _clinic_values(form)
        if not form.errors:
            values["active"] = form.active.data
            try:
                saved = _save(
                    form,
                    CLINIC_ERRORS,
                    lambda: update_clinic(
                        current_user, clinic, base_version=form.base_version(), **values
                    ),
                )
            except StaleEdit as exc:
                form = _stale(Clinic, clinic_id, _clinic_form, exc)
                clinic = _get(Clinic, clinic_id)
            else:
                if saved:
                    return _row_or_list(
                        "_clinic_row.html", "admin.clinics", c=clinic, hours_text=_clinic_hours_text
                    )
    return render_form(
        T + "clinic_edit.html",
        form,
        block=fragment_block("edit_row"),
        clinic=clinic,
        weekdays=WEEKDAYS,
    )


@bp.get("/clinics/<int:clinic_id>/row")
def clinic_row(clinic_id):
    clinic = _get(Clinic, clinic_id)
    if not is_fragment_request():
        return redirect(url_for("admin.clinics"))
    return render(T + "_clinic_row.html", c=clinic, hours_text=_clinic_hours_text)


# --- specializations ----------------------------------------------------------------------


@bp.get("/specializations")
def specializations():
    return _list(
        "specializations.html", queries.specializations_page, form=SpecializationForm(formdata=None)
    )


@bp.post("/specializations")
def specialization_new():
    form = SpecializationForm()
    if form.validate_on_submit():
        spec = _save(form, {}, lambda: create_specialization(current_user, form.name.data))
        if spec:
            flash(f"{spec.name} added.", "success")
            return redirect(url_for("admin.specializations"), 303)
    return render_form(
        T + "specializations.html", form, page=queries.specializations_page(per_page=PER_PAGE), q=""
    )


def _specialization_form(spec):
    """The edit form filled with the specialization as stored, its ``version`` included."""
    return SpecializationForm(formdata=None, obj=spec, prefix=EDIT_PREFIX)


@bp.route("/specializations/<int:spec_id>/edit", methods=["GET", "POST"])
def specialization_edit(spec_id):
    spec = _get(Specialization, spec_id)
    if request.method == "GET":
        form = _specialization_form(spec)
    else:
        form = SpecializationForm(prefix=EDIT_PREFIX)
    if form.validate_on_submit():
        try:
            saved = _save(
                form,
                {},
                lambda: update_specialization(
                    current_user, spec, form.name.data, base_version=form.base_version()
                ),
            )
        except StaleEdit as exc:
            form = _stale(Specialization, spec_id, _specialization_form, exc)
            spec = _get(Specialization, spec_id)
        else:
            if saved:
                return _row_or_list("_specialization_row.html", "admin.specializations", s=spec)
    return render_form(
        T + "specialization_edit.html", form, block=fragment_block("edit_row"), spec=spec
    )


@bp.get("/specializations/<int:spec_id>/row")
def specialization_row(spec_id):
    spec = _get(Specialization, spec_id)
    if not is_fragment_request():
        return redirect(url_for("admin.specializations"))
    return render(T + "_specialization_row.html", s=spec)


# --- providers ----------------------------------------------------------------------------


def _choices(model, label=lambda o: o.name, order=None):
    rows = db.session.scalars(sa.select(model).order_by(order if order is not None else model.name))
    return [SelectChoice(o.id, label(o)) for o in rows]


PROVIDER_ERRORS = {"commission_bps": "commission"}


def _provider_choices(form):
    form.clinic_ids.choices = _choices(Clinic, lambda c: f"{c.name} ({c.city})")
    form.specialization_ids.choices = _choices(Specialization)
    form.service_ids.choices = _choices(Service, lambda s: f"{s.name} · {s.specialization.name}")
    return form


def _provider_values(form):
    return dict(
        display_name=form.display_name.data,
        kind=form.kind.data,
        registration_no=form.registration_no.data,
        pan=form.pan.data or None,  # blank: none on file
        commission_bps=form.commission.hundredths,
        payout_schedule=form.payout_schedule.data,
        clinic_ids=form.clinic_ids.data,
        specialization_ids=form.specialization_ids.data,
        service_ids=form.service_ids.data,
        bio=form.bio.data or "",
    )


@bp.get("/providers")
def providers():
    return _list("providers.html", queries.providers_page)


@bp.route("/providers/new", methods=["GET", "POST"])
def provider_new():
    form = _provider_choices(NewProviderForm())
    if form.validate_on_submit():
        values = _provider_values(form)
        if not form.errors:
            provider = _save(
                form,
                PROVIDER_ERRORS,
                lambda: create_provider(
                    current_user,
                    email=form.email.data,
                    name=form.name.data,
                    phone=form.phone.data or None,
                    **values,
                ),
            )
            if provider:
                flash(
                    f"{provider.display_name} added; an invitation is on its way to "
                    f"{provider.user.email}.",
                    "success",
                )
                return redirect(url_for("admin.providers"), 303)
    return render_form(T + "provider_new.html", form)


def _provider_form(provider):
    """The edit form filled with the provider as stored, its ``version`` included."""
    return ProviderForm(
        formdata=None,
        obj=provider,
        data={
            "commission": Decimal(provider.commission_bps) / 100,
            "clinic_ids": [c.id for c in provider.clinics],
            "specialization_ids": [s.id for s in provider.specializations],
            "service_ids": [s.id for s in provider.services],
        },
    )


@bp.route("/providers/<int:provider_id>/edit", methods=["GET", "POST"])
def provider_edit(provider_id):
    provider = _get(Provider, provider_id)
    form = _provider_form(provider) if request.method == "GET" else ProviderForm()
    _provider_choices(form)
    if form.validate_on_submit():
        values = _provider_values(form)
        if not form.errors:
            values["active"] = form.active.data
            try:
                saved = _save(
                    form,
                    PROVIDER_ERRORS,
                    lambda: update_provider(
                        current_user, provider, base_version=form.base_version(), **values
                    ),
                )
            except StaleEdit as exc:
                form = _provider_choices(_stale(Provider, provider_id, _provider_form, exc))
                provider = _get(Provider, provider_id)
            else:
                if saved:
                    return _row_or_list("_provider_row.html", "admin.providers", p=provider)
    return render_form(
        T + "provider_edit.html", form, block=fragment_block("edit_row"), provider=provider
    )


@bp.get("/providers/<int:provider_id>/row")
def provider_row(provider_id):
    provider = _get(Provider, provider_id)
    if not is_fragment_request():
        return redirect(url_for("admin.providers"))
    return render(T + "_provider_row.html", p=provider)


# --- services -----------------------------------------------------------------------------


SERVICE_ERRORS = {"fee_paise": "fee"}


def _service_choices(form):
    form.specialization_id.choices = _choices(Specialization)
    form.provider_ids.choices = _choices(Provider, lambda p: p.display_name, Provider.display_name)
    return form


def _service_values(form):
    return dict(
        name=form.name.data,
        kind=form.kind.data,
        mode=form.mode.data,
        specialization_id=form.specialization_id.data,
        duration_minutes=form.duration_minutes.data,
        fee_paise=form.fee.hundredths,
        taxable=form.taxable.data,
        provider_ids=form.provider_ids.data,
        description=form.description.data or "",
    )


@bp.get("/services")
def services():
    return _list("services.html", queries.services_page)


@bp.route("/services/new", methods=["GET", "POST"])
def service_new():
    form = _service_choices(ServiceForm())
    if form.validate_on_submit():
        values = _service_values(form)
        if not form.errors:
            created = _save(form, SERVICE_ERRORS, lambda: create_service(current_user, **values))
            if created:
                flash(f"{created.name} added.", "success")
                return redirect(url_for("admin.services"), 303)
    return render_form(T + "service_new.html", form)


def _service_form(item):
    """The edit form filled with the service as stored, its ``version`` included."""
    return ServiceForm(
        formdata=None,
        obj=item,
        data={"fee": Decimal(item.fee_paise) / 100, "provider_ids": [p.id for p in item.providers]},
    )


@bp.route("/services/<int:service_id>/edit", methods=["GET", "POST"])
def service_edit(service_id):
    item = _get(Service, service_id)
    form = _service_form(item) if request.method == "GET" else ServiceForm()
    _service_choices(form)
    if form.validate_on_submit():
        values = _service_values(form)
        if not form.errors:
            values["active"] = form.active.data
            try:
                saved = _save(
                    form,
                    SERVICE_ERRORS,
                    lambda: update_service(
                        current_user, item, base_version=form.base_version(), **values
                    ),
                )
            except StaleEdit as exc:
                form = _service_choices(_stale(Service, service_id, _service_form, exc))
                item = _get(Service, service_id)
            else:
                if saved:
                    return _row_or_list("_service_row.html", "admin.services", s=item)
    return render_form(T + "service_edit.html", form, block=fragment_block("edit_row"), item=item)


@bp.get("/services/<int:service_id>/row")
def service_row(service_id):
    item = _get(Service, service_id)
    if not is_fragment_request():
        return redirect(url_for("admin.services"))
    return render(T + "_service_row.html", s=item)
