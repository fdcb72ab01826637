"""The operations desk's actions on one visit (start and complete an appointment, its
meeting link, resolving attention flags with a note) and the payments monitor.

Each post calls one use case and answers 303 back to the visit; a refusal is a flash
message (start too early), never a 500. A refused meeting link (off the allow-list, not a
URL) is the visit page again, 422, the typed link kept and why beside it
(``portal.web.admin.visits.refused_meet_link``); so is a refused resolve of a flag (no
note, resolved already, or the visit's flag changed since the page showed it: the form
posts the flag it showed), the note kept (``refused_resolve``)."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.booking import attention as booking_attention
from portal.booking import desk, reschedule
from portal.booking import visits as booking_visits
from portal.booking.errors import BookingError, NotFound
from portal.booking.models import IndividualBooking, MasterBooking
from portal.db import utcnow
from portal.domain.slots import LIST_SPAN_DAYS
from portal.domain.states import PaymentStatus
from portal.extensions import db
from portal.payouts import completion
from portal.web.admin import bp
from portal.web.admin.visits import refused_meet_link, refused_resolve
from portal.web.filters import clinic_time
from portal.web.forms.booking import MeetLinkForm, MoveForm, move_day, parse_start
from portal.web.forms.operations import ResolveForm
from portal.web.htmx import htmx_block, render
from portal.web.paging import page_args

MONITOR = "admin/visits/payments.html"


def _item_of(visit_id, item_id):
    item = db.session.get(IndividualBooking, item_id)
    if item is None or item.master_id != visit_id:
        abort(404)
    return item


def _back(visit_id, anchor=""):
    return redirect(url_for("admin.visit", visit_id=visit_id) + anchor, 303)


def _act(visit_id, item_id, action, done):
    item = _item_of(visit_id, item_id)
    try:
        action(current_user, item.id)
    except NotFound:
        abort(404)
    except BookingError as exc:
        flash(exc.message, "error")
    else:
        flash(done, "success")
    return _back(visit_id, f"#item-{item_id}")


@bp.post("/visits/<int:visit_id>/items/<int:item_id>/start")
def start_item(visit_id, item_id):
    return _act(visit_id, item_id, completion.start_booking, "Appointment started.")


@bp.post("/visits/<int:visit_id>/items/<int:item_id>/complete")
def complete_item(visit_id, item_id):
    return _act(
        visit_id,
        item_id,
        completion.complete_booking,
        "Appointment completed; the provider's earning is posted.",
    )


@bp.post("/visits/<int:visit_id>/items/<int:item_id>/meet-link")
def set_item_meet_link(visit_id, item_id):
    item = _item_of(visit_id, item_id)
    form = MeetLinkForm()
    if not form.validate_on_submit():
        errors = (e for errors in form.errors.values() for e in errors)
        error = next(errors, "The form expired; try again.")
        return refused_meet_link(item.visit, item, form.meet_link.data, error)
    try:
        booking_visits.set_meet_link(current_user, item.id, form.meet_link.data)
    except BookingError as exc:
        db.session.rollback()
        item = _item_of(visit_id, item_id)
        return refused_meet_link(item.visit, item, form.meet_link.data, exc.message)
    flash("Meeting link saved.", "success")
    return _back(visit_id, f"#item-{item_id}")


def _resolve(visit_id, key, call):
    """Resolve one flag (``key``: its row's id, or "visit" for the visit's own flag) with
    the form's note; a refusal is the visit page again with the note kept
    (``refused_resolve``)."""
    form = ResolveForm()
    if not form.validate_on_submit():
        errors = (e for errors in form.errors.values() for e in errors)
        error = next(errors, "The form expired; try again.")
        return _refused_resolve(visit_id, key, form.note.data, error)
    try:
        call(form)
    except NotFound:
        abort(404)
    except BookingError as exc:
        db.session.rollback()
        return _refused_resolve(visit_id, key, form.note.data, exc.message)
    flash("Resolved; the note is in the audit log.", "success")
    return _back(visit_id, "#attention")


def _refused_resolve(visit_id, key, note, error):
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        abort(404)
    return refused_resolve(visit, key, note, error)


@bp.post("/visits/<int:visit_id>/attention/resolve")
def resolve_visit_attention(visit_id):
    if db.session.get(MasterBooking, visit_id) is None:
        abort(404)
    return _resolve(
        visit_id,
        "visit",
        lambda form: booking_attention.resolve_visit_flag(
            current_user, visit_id, form.note.data, shown=form.shown_kind()
        ),
    )


@bp.post("/visits/<int:visit_id>/attention/<int:flag_id>/resolve")
def resolve_attention_flag(visit_id, flag_id):
    return _resolve(
        visit_id,
        flag_id,
        lambda form: booking_attention.resolve_flag(
            current_user, flag_id, form.note.data, visit_id=visit_id
        ),
    )


# --- the payments monitor ----------------------------------------------------------------


@bp.get("/payments")
def payments_monitor():
    status = request.args.get("status", "")
    status = status if status in desk.MONITORED else ""
    page = desk.payments_page(status=status or None, **page_args(20))
    return render(
        MONITOR,
        block=htmx_block("payments"),
        page=page,
        chosen=status,
        statuses=desk.MONITORED,
        hint=desk.payment_hint,
        last_error=desk.last_error,
        now=utcnow(),
        PaymentStatus=PaymentStatus,
    )


# --- rebooking an expired or cancelled appointment ---------------------------------------

REBOOK = "admin/visits/rebook.html"


def _rebook_page(item, form, status=200):
    day = move_day(form, item)
    slots = reschedule.free_slots(item, day, days=LIST_SPAN_DAYS, limit=16)
    form.slot.choices = [(s.isoformat(), clinic_time(s, item.clinic.timezone)) for s in slots]
    return render(REBOOK, block=htmx_block("slots"), status=status, item=item, form=form)


@bp.get("/bookings/<int:item_id>/rebook")
def rebook_booking(item_id):
    item = db.get_or_404(IndividualBooking, item_id)
    return _rebook_page(item, MoveForm(formdata=request.args or None))


@bp.post("/bookings/<int:item_id>/rebook")
def rebook_booking_post(item_id):
    """The same service with the same provider(s) for the same person, at a new free time
    and today's price: a new visit (``booking.reschedule.rebook``), then its payment."""
    item = db.get_or_404(IndividualBooking, item_id)
    form = MoveForm()
    form.validate()
    start = parse_start(form.slot.data or form.start.data)
    if start is None:
        form.slot.errors = ["Choose a new time."]
        return _rebook_page(item, form, status=422)
    try:
        new = reschedule.rebook(current_user, item.id, start)
    except BookingError as exc:
        form.slot.errors = [exc.message]
        return _rebook_page(item, form, status=422)
    flash("Booked again at today's price: send a payment link or take it at the desk.", "success")
    return redirect(url_for("admin.visit", visit_id=new.master_id), 303)
