"""Find a doctor's free times link to the patient's book page for everyone (the find page
is the same for every visitor and kept as such). Someone signed in with another role is
sent where they can act instead of a bare 403: an admin to the desk's new visit with the
time carried along (the patient is chosen first); a provider back to the find page, told
who books."""

from zoneinfo import ZoneInfo

from flask import flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts.models import ADMIN, PATIENT
from portal.catalog.models import Clinic
from portal.domain.ids import parse_id
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.i18n import N_
from portal.web.filters import translate
from portal.web.forms.booking import parse_start

MSG_PATIENTS_BOOK = N_(
    "Only patients book from Find a doctor. To book for a patient, ask the clinic's front desk."
)


def desk_args(args):
    """The desk's new-visit picker values for a find page link's slot (those it can read)."""
    out = {}
    for source, target in (("service", "service"), ("clinic", "clinic"), ("provider", "providers")):
        value = parse_id(args.get(source))
        if value:
            out[target] = value
    start = parse_start(args.get("start", ""))
    if start is not None:
        clinic = db.session.get(Clinic, out["clinic"]) if "clinic" in out else None
        zone = ZoneInfo(clinic.timezone) if clinic else CLINIC_TZ
        out["day"] = start.astimezone(zone).date().isoformat()
        out["slot"] = start.isoformat()
    return out


def book_for_others():
    """A before-request hook of the patient blueprint (ahead of its role guard)."""
    if request.endpoint != "patient.book" or not current_user.is_authenticated:
        return None
    if current_user.role == PATIENT:
        return None
    if current_user.role == ADMIN:
        flash("Choose the patient to book this time for.", "info")
        return redirect(url_for("admin.new_visit", **desk_args(request.args)), 303)
    flash(translate(MSG_PATIENTS_BOOK), "info")
    return redirect(url_for("public.find_doctor"), 303)
