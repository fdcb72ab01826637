"""A patient's dependents (people they book for): list, add inline, edit, remove.

Every route works as a full page; an htmx request (not a boosted navigation) gets only the
``dependent_list`` / ``dependent_edit`` block, swapped into ``#dependents``."""

from flask import flash, redirect, url_for
from flask_babel import gettext
from flask_login import current_user

from portal.accounts import dependents as dependent_cases
from portal.accounts import queries as account_queries
from portal.accounts import service
from portal.accounts.models import Dependent
from portal.i18n import N_
from portal.web.errors import apply_errors
from portal.web.filters import translate
from portal.web.forms.accounts import DependentForm
from portal.web.htmx import fragment_block, render_form
from portal.web.patient import bp
from portal.web.security import get_owned_or_404

TEMPLATE = "patient/dependents/index.html"
EDIT_TEMPLATE = "patient/dependents/edit.html"


def _list_page(form):
    block = fragment_block("dependent_list")
    dependents = account_queries.dependents_of(current_user.id)
    return render_form(TEMPLATE, form, block=block, dependents=dependents)


@bp.get("/dependents")
def dependents():
    return _list_page(DependentForm())


@bp.post("/dependents")
def add_dependent():
    form = DependentForm()
    if form.validate_on_submit():
        try:
            dependent_cases.add_dependent(
                current_user, form.name.data, form.relationship.data, form.date_of_birth.data
            )
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            flash(gettext("%(name)s added.", name=form.name.data.strip()), "success")
            return redirect(url_for("patient.dependents"), 303)
    return _list_page(form)


@bp.route("/dependents/<int:dependent_id>/edit", methods=["GET", "POST"])
def edit_dependent(dependent_id):
    dependent = get_owned_or_404(Dependent, dependent_id)
    form = DependentForm(
        data={
            "name": dependent.name,
            "relationship": dependent.relationship_,
            "date_of_birth": dependent.date_of_birth,
        }
    )
    if form.validate_on_submit():
        try:
            dependent_cases.update_dependent(
                current_user,
                dependent.id,
                form.name.data,
                form.relationship.data,
                form.date_of_birth.data,
            )
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            flash(N_("Saved."), "success")
            return redirect(url_for("patient.dependents"), 303)
    return render_form(
        EDIT_TEMPLATE, form, block=fragment_block("dependent_edit"), dependent=dependent
    )


@bp.post("/dependents/<int:dependent_id>/delete")
def delete_dependent(dependent_id):
    dependent = get_owned_or_404(Dependent, dependent_id)
    name = dependent.name
    try:
        dependent_cases.remove_dependent(current_user, dependent.id)
    except service.ValidationError as exc:
        for message in exc.errors.values():
            flash(translate(message), "error")
    else:
        flash(gettext("%(name)s removed.", name=name), "success")
    return redirect(url_for("patient.dependents"), 303)
