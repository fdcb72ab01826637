"""Admin: cancel a booking (for the patient, the clinic or the provider; an override
amount with a reason), ask for a further refund on a cancelled one, approve or reject
overrides and further refunds (a different admin), and the refunds list with retry /
send to wallet / settle against a dashboard refund."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from wtforms import ValidationError

from portal.booking.errors import NotFound, PermissionDenied
from portal.booking.models import IndividualBooking
from portal.db import utcnow
from portal.domain.ids import parse_id
from portal.domain.rates import format_inr
from portal.domain.states import RefundStatus
from portal.extensions import db
from portal.policies import store as policy_store
from portal.refunds import approvals as refunds_approvals
from portal.refunds import cancel as refunds_cancel
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds import outside as refunds_outside
from portal.refunds import previews as refunds_previews
from portal.refunds import queries
from portal.refunds.common import CancellationError, hours
from portal.refunds.models import Refund
from portal.web.admin import bp
from portal.web.errors import apply_booking_error
from portal.web.forms.booking import options
from portal.web.forms.payouts import ConfirmAmountForm
from portal.web.forms.refunds import AdminCancelForm, FurtherRefundForm, NoteForm, SettleForm
from portal.web.htmx import htmx_block, render
from portal.web.paging import page_args

PAGE = "admin/cancellations/cancel.html"
ACTORS = {
    "patient": "Cancelled online by the patient",
    "admin": "Cancelled by an administrator for the patient",
    "clinic": "Cancelled by the clinic",
    "provider": "Cancelled by the provider",
}
FIELDS = {
    "override": "override",
    "reason": "reason",
    "items": "mode",
    "mode": "mode",
    "penalty_provider": "penalty_provider",
}


def _item(item_id):
    item = db.session.get(IndividualBooking, item_id)
    if item is None:
        abort(404)
    return item


def _form(item, **kwargs):
    """The cancel form, its modes stating what they give under the booking's policy. One
    moment for the labels and the preview (``form.now``): at a tier's boundary they would
    otherwise name different tiers."""
    now = utcnow()
    form = AdminCancelForm(
        policy=policy_store.for_booking(item), until_start=hours(item, now), **kwargs
    )
    form.now = now
    return form


def _preview(item, form):
    override = form.override_paise()
    try:
        return refunds_previews.preview_admin(
            current_user,
            item.id,
            form.mode.data or "patient",
            override=override,
            override_reason=form.reason.data,
            prefer_wallet=form.destination.data == "wallet",
            now=form.now,
        )
    except CancellationError:
        return None


def _page(item, form, status=200, further=None):
    form.penalty_provider.choices = options([(str(p.id), p.display_name) for p in item.providers])
    cancellation = refunds_lookup.cancellation_for(item.id)
    return render(
        PAGE,
        block=htmx_block("admin_preview"),
        status=status,
        item=item,
        form=form,
        preview=_preview(item, form),
        cancellation=cancellation,
        actor_text=ACTORS.get(cancellation.actor_kind, "") if cancellation else "",
        rule_text=refunds_previews.tier_text(cancellation.rule, policy_store.for_booking(item))
        if cancellation
        else "",
        refund_rows=queries.refunds_for_booking(item.id),
        further=further or FurtherRefundForm(formdata=None),
        pending=queries.pending_approvals_for(item.id),
    )


@bp.get("/bookings/<int:item_id>/cancel")
def cancel_booking(item_id):
    item = _item(item_id)
    form = _form(item, formdata=request.args if request.args else None)
    if request.args:
        try:
            form.override.pre_validate(form)
        except ValidationError as exc:  # shown beside the field
            form.override.errors = [str(exc)]
    return _page(item, form)


@bp.post("/bookings/<int:item_id>/cancel")
def cancel_booking_post(item_id):
    item = _item(item_id)
    if refunds_lookup.cancellation_for(item.id) is not None:
        # Cancelled already (a double click, or a colleague): go where a cancellation goes.
        # Answered with the cancel page and HX-Push-Url: false, the address stayed on
        # …/cancel under whichever page the faster answer drew.
        flash("This booking was already cancelled; nothing more was done.", "info")
        return redirect(url_for("admin.visit", visit_id=item.master_id), 303)
    form = _form(item)
    if not form.validate():
        return _page(item, form, status=422)
    penalty = form.penalty_provider.data
    try:
        done = refunds_cancel.cancel_as_admin(
            current_user,
            item.id,
            form.reason.data or "",
            mode=form.mode.data,
            override=form.override.paise,
            prefer_wallet=form.destination.data == "wallet",
            penalty_provider_id=parse_id(penalty),
            # None when not shown, or shown for another mode or amount (no JavaScript):
            # the service asks again, and the page shows this choice's refund.
            expected_refund=form.shown_total(),
        )
    except NotFound:
        abort(404)
    except CancellationError as exc:
        apply_booking_error(form, exc, FIELDS)
        return _page(item, form, status=422)
    message = f"Cancelled. Refund {format_inr(done.refund)}."
    if queries.pending_approvals_for(item.id):
        message += " The override above the calculated amount awaits a second administrator."
    flash(message, "success")
    return redirect(url_for("admin.visit", visit_id=item.master_id), 303)


@bp.post("/bookings/<int:item_id>/further-refund")
def further_refund(item_id):
    item = _item(item_id)
    further = FurtherRefundForm()
    if not further.validate():
        return _page(item, _form(item, formdata=None), 422, further)
    try:
        refunds_approvals.request_further_refund(
            current_user,
            item.id,
            further.amount.paise,
            further.reason.data or "",
            prefer_wallet=further.prefer_wallet(),
        )
    except NotFound:
        abort(404)
    except CancellationError as exc:
        form = _form(item, formdata=None)
        if refunds_lookup.cancellation_for(item.id) is None:  # no further-refund form on the page
            form.form_errors.append(exc.message)
        else:
            apply_booking_error(further, exc, {})
        return _page(item, form, 422, further)
    flash("Further refund requested; a second administrator must approve it.", "success")
    return redirect(url_for("admin.cancel_booking", item_id=item.id), 303)


# --- approvals -----------------------------------------------------------------------------


# The queue itself is portal/web/admin/approvals.py (every kind); these two routes stay
# for links and forms already out there.


def _decide(action, approval_id, done):
    form = NoteForm()
    if not form.validate():
        flash("The note is too long.", "error")
        return redirect(url_for("admin.approvals"), 303)
    try:
        action(current_user, approval_id, form.note.data)
    except NotFound:
        abort(404)
    except PermissionDenied as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.approvals"), 303)
    except CancellationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.approvals"), 303)
    flash(done, "success")
    return redirect(url_for("admin.approvals"), 303)


@bp.post("/approvals/<int:approval_id>/approve")
def approve_refund(approval_id):
    return _decide(
        refunds_approvals.approve_override, approval_id, "Approved; the refund is on its way."
    )


@bp.post("/approvals/<int:approval_id>/reject")
def reject_refund(approval_id):
    return _decide(refunds_approvals.reject_override, approval_id, "Rejected.")


# --- refunds -------------------------------------------------------------------------------


@bp.get("/refunds")
def refunds_list():
    status = request.args.get("status") or None
    if status not in (None, *RefundStatus):
        status = None
    rows = queries.refunds_page(status=status, **page_args(30))
    return render(
        "admin/cancellations/refunds.html",
        rows=rows,
        actions={r.id: refunds_failed.actions(r) for r in rows.items},
        status=status,
        statuses=tuple(RefundStatus),
        form=NoteForm(),
    )


REFUND_CONFIRM = {
    # action: (title, question, yes, note label)
    "retry": (
        "Retry the refund",
        "Send this refund to the patient's original payment through Razorpay again?",
        "Yes, refund {amount} again",
        None,
    ),
    "wallet": (
        "Send the refund to the wallet",
        "Put this failed refund in the patient's wallet instead (instant; they can spend it "
        "or ask for it later)?",
        "Yes, put {amount} in the wallet",
        "Note for the audit trail (optional)",
    ),
}


def _refund_confirm(refund, kind, error=None, status=200, note=None):
    """Money moves on a click: ask first, stating the amount (issue #16); never for what
    the refund does not allow (refused as its post would be). ``note``: the note as typed,
    refilled when the page is shown again with why (as every form refills its fields)."""
    refusal = refunds_failed.actions(refund).refusal(kind)
    if refusal:
        flash(refusal, "error")
        return redirect(url_for("admin.refunds_list"), 303)
    title, question, yes, note_label = REFUND_CONFIRM[kind]
    endpoint = "admin.retry_refund" if kind == "retry" else "admin.refund_to_wallet"
    return render(
        "components/confirm.html",
        status=status,
        title=title,
        question=question,
        amount=refund.amount,
        details=[f"Visit {refund.visit.number} · {refund.booking.service.name}"],
        error=error,
        action=url_for(endpoint, refund_id=refund.id),
        yes=yes.format(amount=format_inr(refund.amount)),
        back=url_for("admin.refunds_list"),
        note_label=note_label,
        note=note,
    )


def _refund_or_404(refund_id):
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        abort(404)
    return refund


def _refund_action(action, refund_id, done, kind):
    refund = _refund_or_404(refund_id)
    # The note goes to the append-only audit log: checked as every note is (at most 500
    # characters, no control characters), and the form's value passed on, never the raw
    # post (review: a 20,000-character note with a NUL in it was stored for ever).
    form = NoteForm()
    typed = form.note.data
    confirmed = ConfirmAmountForm()
    if not confirmed.validate() or confirmed.paise != refund.amount:
        return _refund_confirm(refund, kind, "Confirm the amount first.", 422, typed)
    if not form.validate():
        said = form.note.errors[0] if form.note.errors else "the form could not be read"
        return _refund_confirm(refund, kind, f"Note: {said}", 422, typed)
    kw = {"note": form.note.data or ""} if REFUND_CONFIRM[kind][3] else {}  # asked for one
    try:
        action(current_user, refund_id, **kw)
    except CancellationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.refunds_list"), 303)
    flash(done, "success")
    return redirect(url_for("admin.refunds_list"), 303)


@bp.get("/refunds/<int:refund_id>/retry")
def retry_refund_confirm(refund_id):
    return _refund_confirm(_refund_or_404(refund_id), "retry")


@bp.get("/refunds/<int:refund_id>/to-wallet")
def refund_to_wallet_confirm(refund_id):
    return _refund_confirm(_refund_or_404(refund_id), "wallet")


@bp.post("/refunds/<int:refund_id>/retry")
def retry_refund(refund_id):
    return _refund_action(
        refunds_failed.retry_refund, refund_id, "Refund sent to Razorpay again.", "retry"
    )


@bp.post("/refunds/<int:refund_id>/to-wallet")
def refund_to_wallet(refund_id):
    return _refund_action(
        refunds_failed.refund_to_wallet,
        refund_id,
        "The refund is in the patient's wallet.",
        "wallet",
    )


# --- settled against a refund made on Razorpay's dashboard (refunds.outside) ---------------

SETTLE_NOTE = "Note for the audit trail: why the dashboard refund was for this refund"


def _settle_confirm(refund, error=None, status=200, note=None):
    """Settling asked once more with its figures, Razorpay asked for them now
    (``outside.preview``); a refusal (Razorpay cannot be asked, nothing to settle
    against) goes back to the list with why."""
    try:
        plan = refunds_outside.preview(current_user, refund.id)
    except CancellationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.refunds_list"), 303)
    details = [f"Visit {refund.visit.number} · {refund.booking.service.name}"]
    details += [
        f"Razorpay refunded {format_inr(paise)} of this payment outside the portal "
        f"({outside_id}): closed against this refund, not paid again"
        for outside_id, paise in plan.parts
    ]
    details.append(
        f"To the patient's wallet: {format_inr(plan.to_wallet)}"
        if plan.to_wallet
        else "Nothing goes to the wallet: the dashboard refund gave all of it back"
    )
    return render(
        "components/confirm.html",
        status=status,
        title="Settle against the dashboard refund",
        question="Close the part of this failed refund that Razorpay's dashboard refund "
        "already gave back, and put only the rest in the patient's wallet?",
        amount=refund.amount,
        details=details,
        error=error,
        action=url_for("admin.settle_refund", refund_id=refund.id),
        yes=f"Yes, settle: {format_inr(plan.to_wallet)} to the wallet",
        back=url_for("admin.refunds_list"),
        note_label=SETTLE_NOTE,
        note=note,
        hidden={"shown_to_wallet": plan.to_wallet},
    )


@bp.get("/refunds/<int:refund_id>/settle")
def settle_refund_confirm(refund_id):
    return _settle_confirm(_refund_or_404(refund_id))


@bp.post("/refunds/<int:refund_id>/settle")
def settle_refund(refund_id):
    refund = _refund_or_404(refund_id)
    form = SettleForm()
    typed = form.note.data
    confirmed = ConfirmAmountForm()
    if not confirmed.validate() or confirmed.paise != refund.amount:
        return _settle_confirm(refund, "Confirm the amount first.", 422, typed)
    if not form.validate():
        said = form.note.errors[0] if form.note.errors else "the form could not be read"
        return _settle_confirm(refund, f"Note: {said}", 422, typed)
    try:
        settled = refunds_outside.settle_refund(
            current_user, refund_id, shown_to_wallet=form.shown, note=form.note.data
        )
    except CancellationError as exc:
        if exc.field in ("note", "shown_to_wallet"):  # shown again, as it is now
            return _settle_confirm(refund, exc.message, 422, typed)
        flash(exc.message, "error")
        return redirect(url_for("admin.refunds_list"), 303)
    wallet = settled.wallet.amount if settled.wallet else 0
    flash(
        f"Settled: {format_inr(refund.amount - wallet)} closed against the dashboard refund, "
        f"{format_inr(wallet)} in the patient's wallet. Accept the dashboard refund's case in "
        "reconciliation to take it out of gateway clearing, if not done yet.",
        "success",
    )
    return redirect(url_for("admin.refunds_list"), 303)
