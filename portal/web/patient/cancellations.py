"""The patient cancels one or several items of a visit: a page that previews (htmx) each
item's refund under the policy tier, why, and where the money goes (original payment or
wallet), then one POST. Refused items (within 24 h, team appointments) show the policy's
message and are refused again on submit (422, the message beside the field)."""

from flask import flash, redirect, request, url_for
from flask_babel import ngettext
from flask_login import current_user

from portal.booking.models import MasterBooking
from portal.domain.ids import parse_id
from portal.domain.rates import format_inr
from portal.domain.states import RefundStatus
from portal.refunds import cancel as refunds_cancel
from portal.refunds import common as refunds_common
from portal.refunds import previews as refunds_previews
from portal.refunds import queries
from portal.web.errors import apply_booking_error
from portal.web.forms.booking import FIELD_MAP
from portal.web.forms.refunds import WALLET, CancelForm
from portal.web.htmx import htmx_block, render
from portal.web.patient import bp
from portal.web.security import get_owned_or_404

PAGE = "patient/cancel/cancel.html"
REFUNDS = "patient/cancel/refunds.html"


def _visit(visit_id):
    return get_owned_or_404(MasterBooking, visit_id)


def _chosen(form_items, visit):
    ids = {i.id for i in visit.items}
    return [i for i in (form_items or []) if i in ids]


def _page(visit, form, status=200):
    offered = refunds_previews.cancellable_items(visit)
    prefer_wallet = form.destination.data == WALLET
    everything = refunds_previews.preview_cancellation(
        current_user, visit.id, [i.id for i in offered], prefer_wallet
    )
    chosen = _chosen(form.items.data, visit)
    selected = (
        refunds_previews.preview_cancellation(current_user, visit.id, chosen, prefer_wallet)
        if chosen
        else None
    )
    form.items.choices = [(i.id, i.service.name) for i in offered]
    return render(
        PAGE,
        block=htmx_block("cancel_preview"),
        status=status,
        visit=visit,
        form=form,
        offered=everything,
        selected=selected,
        chosen=set(chosen),
    )


@bp.get("/visits/<int:visit_id>/cancel")
def cancel_items(visit_id):
    visit = _visit(visit_id)
    form = CancelForm(formdata=request.args if request.args else None)
    item = parse_id(request.args.get("item"))
    if not request.args.getlist("items") and item:
        form.items.data = [item]
    if form.items.data is None:
        form.items.data = []
    return _page(visit, form)


@bp.post("/visits/<int:visit_id>/cancel")
def cancel_items_post(visit_id):
    visit = _visit(visit_id)
    form = CancelForm()
    if not form.validate():
        return _page(visit, form, status=422)
    chosen = _chosen(form.items.data, visit)
    if len(chosen) != len(form.items.data or []):
        form.items.errors = [refunds_common.MSG_NO_ITEMS]
        return _page(visit, form, status=422)
    prefer_wallet = form.destination.data == WALLET
    # No refund shown for this choice (no JavaScript, so no preview; or sent before it
    # came): the service asks again (MSG_REFUND_UNSHOWN), after each item's own refusal.
    try:
        done = refunds_cancel.cancel_items_as_patient(
            current_user,
            visit.id,
            chosen,
            prefer_wallet=prefer_wallet,
            reason=form.reason.data or "",
            expected_refund=form.shown_total(),
        )
    except refunds_common.CancellationError as exc:
        apply_booking_error(form, exc, FIELD_MAP)
        return _page(visit, form, status=422)
    total = sum(c.refund for c in done)
    flash(
        ngettext(
            "Cancelled %(num)s appointment. Refund: %(amount)s.",
            "Cancelled %(num)s appointments. Refund: %(amount)s.",
            len(done),
            amount=format_inr(total),
        ),
        "success",
    )
    return redirect(url_for("patient.visit_refunds", visit_id=visit.id), 303)


@bp.get("/visits/<int:visit_id>/refunds")
def visit_refunds(visit_id):
    """The visit's cancellations and refunds with their status; while a refund through
    Razorpay is pending, htmx polls the list (``refund_rows`` block)."""
    visit = _visit(visit_id)
    rows = queries.live_refunds_for_visit(visit.id)
    pending = any(r.status == RefundStatus.PENDING for r in rows)
    block = htmx_block("refund_rows")
    # 286 tells htmx to stop polling once nothing is pending.
    return render(
        REFUNDS,
        block=block,
        status=286 if block and not pending else 200,
        visit=visit,
        rows=rows,
        pending=pending,
        cancellations=queries.cancellations_for_visit(visit.id),
    )
