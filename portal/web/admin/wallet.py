"""Admin: a patient's wallet (balance, adjustments, a new credit or debit, a cash pay-out
at the desk, a pay-out by bank transfer), every adjustment, and one adjustment's page (its
decision trail and history link)."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts.models import PATIENT, User
from portal.domain.rates import format_inr
from portal.domain.states import AdjustmentStatus
from portal.extensions import db
from portal.wallet import adjustments, bank, cash, queries
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.wallet import AdjustmentForm, BankPayoutForm, CashPayoutForm
from portal.web.htmx import render
from portal.web.paging import page_args


def _patient(patient_id):
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role != PATIENT:
        abort(404)
    return patient


def _wallet_page(patient, form=None, cash_form=None, bank_form=None, status=200):
    """The page with the form that was sent (its messages) and the others empty."""
    return render(
        "admin/wallet/wallet.html",
        status=status,
        patient=patient,
        balance=queries.shown_balance(patient.id),
        rows=queries.adjustments_page(patient_id=patient.id, **page_args(20)),
        form=form or AdjustmentForm(formdata=None).fresh_token(),
        cash_form=cash_form or CashPayoutForm(formdata=None).fresh_token(),
        bank_form=bank_form or BankPayoutForm(formdata=None).fresh_token(),
    )


@bp.get("/wallets/<int:patient_id>")
def wallet(patient_id):
    return _wallet_page(_patient(patient_id))


def _done(done):
    """Where a made adjustment or pay-out sends the admin, saying what became of it."""
    if done.status == AdjustmentStatus.PENDING_APPROVAL:
        flash(f"{adjustments.MSG_APPROVAL}: {adjustments.approval_reason(done)}", "info")
    else:
        flash(
            f"Applied: the balance went from {format_inr(done.balance_before)} "
            f"to {format_inr(done.balance_after)}.",
            "success",
        )
    return redirect(url_for("admin.adjustment", adjustment_id=done.id), 303)


@bp.post("/wallets/<int:patient_id>")
def wallet_adjust(patient_id):
    patient = _patient(patient_id)
    form = AdjustmentForm()
    if not form.validate():
        return _wallet_page(patient, form, status=422)
    try:
        done = adjustments.create_adjustment(
            current_user,
            patient.id,
            form.direction.data,
            form.amount.paise,
            form.note.data,
            form.public_reason.data,
            token=form.token.data or None,
        )
    except adjustments.AdjustmentError as exc:
        apply_errors(form, exc.errors)
        return _wallet_page(patient, form, status=422)
    return _done(done)


def _pay_out(patient_id, form, page_key, use_case, reference):
    """A pay-out form sent (cash or bank): its messages on the page with a 422, or the
    use case's outcome. ``reference``: the form's field naming the money's receipt."""
    patient = _patient(patient_id)
    if not form.validate():
        return _wallet_page(patient, **{page_key: form}, status=422)
    try:
        done = use_case(
            current_user,
            patient.id,
            form.amount.paise,
            form.note.data,
            reference.data,
            token=form.token.data or None,
        )
    except adjustments.AdjustmentError as exc:
        apply_errors(form, exc.errors)
        return _wallet_page(patient, **{page_key: form}, status=422)
    return _done(done)


@bp.post("/wallets/<int:patient_id>/cash")
def wallet_cash_payout(patient_id):
    form = CashPayoutForm()
    return _pay_out(patient_id, form, "cash_form", cash.pay_out, form.receipt_no)


@bp.post("/wallets/<int:patient_id>/bank")
def wallet_bank_payout(patient_id):
    form = BankPayoutForm()
    return _pay_out(patient_id, form, "bank_form", bank.pay_out, form.utr)


@bp.get("/adjustments")
def adjustments_list():
    status = request.args.get("status") or None
    if status not in (None, *AdjustmentStatus):
        status = None
    return render(
        "admin/wallet/adjustments.html",
        rows=queries.adjustments_page(status=status, **page_args(30)),
        status=status,
        statuses=tuple(AdjustmentStatus),
    )


@bp.get("/adjustments/<int:adjustment_id>")
def adjustment(adjustment_id):
    row = queries.adjustment(adjustment_id)
    if row is None:
        abort(404)
    return render("admin/wallet/adjustment.html", a=row)
