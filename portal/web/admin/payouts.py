"""Operations and finance: payout runs, payouts per provider and their status, failed and
held payouts (retry or hold with a reason), provider fund-account status."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.catalog.models import Provider
from portal.domain.rates import INDIA_TZ, format_inr, percent_text
from portal.domain.states import PayoutRunStatus, PayoutStatus
from portal.extensions import db
from portal.payouts import admin, queries, runs
from portal.payouts import models as m
from portal.payouts.common import PayoutError, payable_balance, payout_fund_account, tds_note
from portal.web.admin import bp
from portal.web.forms.payouts import ConfirmAmountForm, ReasonForm, RunForm
from portal.web.htmx import render
from portal.web.paging import page_args

CONFIRM = "components/confirm.html"
STATUS_FILTERS = {
    "": "All",
    PayoutStatus.QUEUED: "Queued",
    PayoutStatus.PROCESSING: "Processing",
    PayoutStatus.PROCESSED: "Processed",
    PayoutStatus.FAILED: "Failed",
    queries.GIVEN_UP: "Failed, given up",
    PayoutStatus.REVERSED: "Reversed",
    queries.HELD: "Held",
}


@bp.get("/payouts")
def payouts():
    status = request.args.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    provider_id = request.args.get("provider_id", type=int)
    rows = queries.payouts_page(provider_id=provider_id, status=status or None, **page_args(50))
    return render(
        "admin/payouts/index.html",
        rows=rows,
        runs=queries.recent_runs(),
        current_status=status,
        filters=STATUS_FILTERS,
        counts=queries.status_counts(),
        attention=queries.attention_count(),
        provider_id=provider_id,
        run_form=RunForm(formdata=None),
        india=INDIA_TZ,
    )


def _payout_or_404(payout_id):
    payout = db.session.get(m.Payout, payout_id)
    if payout is None:
        abort(404)
    return payout


def _detail(payout, form=None, error=None, status=200):
    audit = queries.payout_audit(payout.id)
    return render(
        "admin/payouts/detail.html",
        status=422 if (error or (form and form.errors)) else status,
        p=payout,
        form=form or ReasonForm(formdata=None),
        error=error,
        audit=audit,
        tds_note=tds_note(payout),
        balance=payable_balance(payout.provider_id),
        # A retry goes to this payout's own account; new payouts go where the rule says.
        payout_account=payout_fund_account(payout.provider_id),
        india=INDIA_TZ,
        can=admin.actions(payout),
    )


@bp.get("/payouts/<int:payout_id>")
def payout_detail(payout_id):
    return _detail(_payout_or_404(payout_id))


def _act(payout_id, action, done):
    payout = _payout_or_404(payout_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _detail(payout, form=form)
    try:
        action(current_user, payout.id, form.reason.data)
    except PayoutError as exc:
        return _detail(_payout_or_404(payout_id), form=form, error=exc.message)
    flash(done, "success")
    return redirect(url_for("admin.payout_detail", payout_id=payout_id), 303)


@bp.post("/payouts/<int:payout_id>/hold")
def payout_hold(payout_id):
    return _act(payout_id, admin.hold_payout, "Payout held.")


@bp.post("/payouts/<int:payout_id>/release")
def payout_release(payout_id):
    return _act(payout_id, admin.release_payout, "Hold lifted.")


@bp.post("/payouts/<int:payout_id>/retry")
def payout_retry(payout_id):
    return _act(payout_id, admin.retry_payout_now, "Retry started.")


@bp.post("/payouts/<int:payout_id>/mark-failed")
def payout_mark_failed(payout_id):
    return _act(payout_id, admin.mark_failed, "Attempt marked as failed.")


@bp.post("/payouts/<int:payout_id>/sync")
def payout_sync(payout_id):
    payout = _payout_or_404(payout_id)
    try:
        changed = admin.sync_payout(current_user, payout.id)
    except PayoutError as exc:  # a gateway error is shown, not a 500
        flash(exc.message, "error")
    else:
        flash("Status updated from RazorpayX." if changed else "No change at RazorpayX.", "success")
    return redirect(url_for("admin.payout_detail", payout_id=payout_id), 303)


@bp.post("/payouts/runs")
def payout_run():
    form = RunForm()
    if not form.validate_on_submit():
        flash("Choose a schedule.", "error")
        return redirect(url_for("admin.payouts"), 303)
    run = runs.run_cycle(form.schedule.data, runs.ist_today(), actor=current_user, by_hand=True)
    if run.status == PayoutRunStatus.OPEN:  # another runner holds it (a click a moment ago)
        flash(f"Run {run.key} is being worked on already; its page shows how far.", "info")
    else:
        flash(
            f"Run {run.key}: {run.payouts_created} payouts, {run.carried_forward} carried forward.",
            "success",
        )
    return redirect(url_for("admin.payout_run_detail", run_id=run.id), 303)


@bp.get("/payouts/runs/<int:run_id>")
def payout_run_detail(run_id):
    run = db.session.get(m.PayoutRun, run_id)
    if run is None:
        abort(404)
    return render(
        "admin/payouts/run.html", run=run, names=queries.run_provider_names(run), india=INDIA_TZ
    )


@bp.get("/payouts/accounts")
def payout_accounts():
    rows = queries.payout_accounts_page(**page_args(50))
    return render("admin/payouts/accounts.html", rows=rows, balances=rows.extra["balances"])


def _pay_now_confirm(provider, error=None, status=200):
    """The payout as it would be made now (``admin.pay_now_preview``): the payable, its
    TDS and the net; the button names the net, what leaves for the bank. It said "TDS is
    deducted where due" and "Yes, pay" the payable: ₹60,000 confirmed, ₹54,000 sent."""
    would = admin.pay_now_preview(provider.id)
    higher = (
        f", at {percent_text(would.rate_bps)}% under section {would.higher_section}: no PAN on file"
        if would.higher_section
        else ""
    )
    tds = (
        f"TDS deducted (section {would.section}{higher}): {format_inr(would.tds)}"
        if would.tds
        else "TDS deducted: none due on this payout"
    )
    details = [tds, f"Sent to the bank: {format_inr(would.net)}"]
    if would.message:
        details.append(would.message)
    return render(
        CONFIRM,
        status=status,
        title=f"Pay {provider.display_name} now",
        question=f"Pay {provider.display_name}'s whole payable balance now, outside the "
        f"payout run? The payable is {format_inr(would.gross)}; its TDS is held for the "
        "government and the rest goes to the bank.",
        amount=would.gross,
        details=details,
        hidden={"confirmed_net": would.net},
        error=error,
        action=url_for("admin.payout_pay_now", provider_id=provider.id),
        yes=f"Yes, pay {format_inr(would.net)}",
        back=url_for("admin.payout_accounts"),
        note_label=None,
    )


@bp.get("/payouts/providers/<int:provider_id>/pay")
def payout_pay_now_confirm(provider_id):
    """Money leaves on a click: ask first, stating the amount (issue #16)."""
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        abort(404)
    return _pay_now_confirm(provider)


@bp.post("/payouts/providers/<int:provider_id>/pay")
def payout_pay_now(provider_id):
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        abort(404)
    confirmed = ConfirmAmountForm()
    if not confirmed.validate():
        return _pay_now_confirm(provider, "Confirm the amount to pay.", status=422)
    try:
        admin.pay_now(current_user, provider_id, confirmed.paise, confirmed.net_paise)
    except PayoutError as exc:
        return _pay_now_confirm(provider, exc.message, status=422)
    flash("Payout created.", "success")
    return redirect(url_for("admin.payout_accounts"), 303)
