"""A provider's own weekly hours (per clinic) and leave.

One page with two sections; an htmx form or remove button swaps only its section
(``windows`` or ``leave`` block), a plain request gets the page (303 after a change).
A window's Edit shows its hours as a form in its row (``…/edit``: the section over htmx,
the page without it); Cancel reads the section (or the page) again. After an Add over
htmx the section's add form, emptied, has focus on its first field, to add another; the
flash says what was done (docs/web.md, "focus after a swap").
A provider reaches only their own rows: another provider's row is a 404."""

from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from wtforms import (
    SelectChoice,
)

from portal.catalog.availability import (
    add_availability,
    add_leave,
    change_availability,
    outside_hours_notes,
    remove_availability,
    remove_leave,
)
from portal.catalog.checks import FORM, NotFound, ValidationError
from portal.catalog.models import DEFAULT_TIMEZONE, WEEKDAYS, Availability, Leave
from portal.catalog.providers import provider_for_user
from portal.db import utcnow
from portal.i18n import N_
from portal.web.errors import apply_errors
from portal.web.forms.base import EDIT_PREFIX
from portal.web.forms.catalog import LeaveForm, WindowForm, WindowHoursForm
from portal.web.htmx import htmx_block, is_fragment_request, render
from portal.web.provider import bp
from portal.web.security import get_owned_or_404

TEMPLATE = "provider/availability/index.html"


def _provider():
    provider = provider_for_user(current_user)
    if provider is None:
        abort(404)
    return provider


def _zone(provider):
    # Leave is entered and shown in the time of the provider's (first) clinic.
    return ZoneInfo(provider.clinics[0].timezone if provider.clinics else DEFAULT_TIMEZONE)


def _window_form(provider, formdata=True):
    form = WindowForm() if formdata else WindowForm(formdata=None)
    form.clinic_id.choices = [SelectChoice(c.id, f"{c.name} ({c.city})") for c in provider.clinics]
    return form


def _page(
    provider,
    block=None,
    window_form=None,
    leave_form=None,
    status=None,
    refusal=None,
    editing=None,
    edit_form=None,
    added=None,
):
    """``refusal``: why the hours were not removed, said above them; ``editing``: the
    window whose row is its ``edit_form``; ``added``: the section (``windows``,
    ``leave``) whose add form takes focus, after an Add."""
    if block and not is_fragment_request():
        block = None
    window_form = window_form or _window_form(provider, formdata=False)
    leave_form = leave_form or LeaveForm(formdata=None)
    if status is None:
        refused = edit_form is not None and edit_form.errors
        status = 422 if (window_form.errors or leave_form.errors or refusal or refused) else 200
    by_clinic = {c.id: [] for c in provider.clinics}
    for w in provider.availability:
        by_clinic.setdefault(w.clinic_id, []).append(w)
    now = utcnow()
    leaves = [leave for leave in provider.leaves if leave.ends_at > now]
    return render(
        TEMPLATE,
        block=block,
        status=status,
        provider=provider,
        by_clinic=by_clinic,
        clinics={c.id: c for c in provider.clinics},
        outside=outside_hours_notes(provider),
        leaves=leaves,
        refusal=refusal,
        editing=editing,
        edit_form=edit_form,
        added=added,
        window_form=window_form,
        leave_form=leave_form,
        zone=_zone(provider),
        weekdays=WEEKDAYS,
        local=lambda value: value.astimezone(_zone(provider)).strftime("%a %d %b %Y, %H:%M"),
    )


def _done(message, block, added=False):
    """``added``: an Add's answer, whose add form takes focus (to add another)."""
    flash(message, "success")
    if is_fragment_request():
        return _page(_provider(), block=block, added=block if added else None)
    return redirect(url_for("provider.availability"), 303)


@bp.get("/availability")
def availability():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/availability/no_profile.html")
    # An edit's Cancel over htmx reads the hours' section again.
    return _page(provider, block="windows" if htmx_block("availability_windows") else None)


@bp.post("/availability/windows")
def availability_add():
    provider = _provider()
    form = _window_form(provider)
    if form.validate_on_submit():
        try:
            add_availability(
                current_user,
                provider,
                form.clinic_id.data,
                form.weekday.data,
                form.start_time.data,
                form.end_time.data,
            )
        except ValidationError as exc:
            apply_errors(form, exc.errors)
        except NotFound:
            abort(404)
        else:
            return _done(N_("Hours added."), "windows", added=True)
    return _page(provider, block="windows", window_form=form)


@bp.post("/availability/windows/<int:window_id>/delete")
def availability_remove(window_id):
    window = get_owned_or_404(Availability, window_id)
    try:
        remove_availability(current_user, window)
    except ValidationError as exc:  # bookings ahead in these hours
        return _page(_provider(), block="windows", refusal=exc.errors[FORM])
    return _done(N_("Hours removed."), "windows")


@bp.get("/availability/windows/<int:window_id>/edit")
def availability_edit_form(window_id):
    window = get_owned_or_404(Availability, window_id)
    form = WindowHoursForm(
        formdata=None, prefix=EDIT_PREFIX, start_time=window.start_time, end_time=window.end_time
    )
    # Their own window (else a 404 above): its provider is the page's, read with it.
    return _page(window.provider, block="windows", editing=window, edit_form=form)


@bp.post("/availability/windows/<int:window_id>/edit")
def availability_edit(window_id):
    window = get_owned_or_404(Availability, window_id)
    form = WindowHoursForm(prefix=EDIT_PREFIX)
    if form.validate_on_submit():
        try:
            change_availability(current_user, window, form.start_time.data, form.end_time.data)
        except ValidationError as exc:  # the times, an overlap, or bookings in the way
            apply_errors(form, exc.errors)
        except NotFound:
            abort(404)
        else:
            return _done(N_("Hours changed."), "windows")
    # Their own window (else a 404 above): its provider is the page's, read with it.
    return _page(window.provider, block="windows", editing=window, edit_form=form)


@bp.post("/availability/leave")
def leave_add():
    provider = _provider()
    form = LeaveForm()
    if form.validate_on_submit():
        zone = _zone(provider)
        starts = form.starts_at.data.replace(tzinfo=zone)
        ends = form.ends_at.data.replace(tzinfo=zone)
        try:
            add_leave(current_user, provider, starts, ends, form.reason.data)
        except ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            return _done(N_("Leave added."), "leave", added=True)
    return _page(provider, block="leave", leave_form=form)


@bp.post("/availability/leave/<int:leave_id>/delete")
def leave_remove(leave_id):
    leave = get_owned_or_404(Leave, leave_id)
    remove_leave(current_user, leave)
    return _done(N_("Leave removed."), "leave")
