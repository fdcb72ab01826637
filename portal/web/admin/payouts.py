"""Operations and finance: payout runs, payouts per provider and their status, failed and
held payouts (retry or hold with a reason), provider fund-account status."""
import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.catalog.models import Provider
from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from portal.payouts import engine, reports, runs
from portal.payouts import models as m
from portal.web.admin import bp
from portal.web.forms.payouts import ReasonForm, RunForm
from portal.web.htmx import render

STATUS_FILTERS = {"": "All", "QUEUED": "Queued", "PROCESSING": "Processing",
                  "PROCESSED": "Processed", "FAILED": "Failed", "GIVEN_UP": "Failed, given up",
                  "REVERSED": "Reversed", "HELD": "Held"}


@bp.get("/payouts")
def payouts():
    status = request.args.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    provider_id = request.args.get("provider_id", type=int)
    rows = reports.payouts(provider_id, status=None if status in ("", "HELD") else status,
                           held=True if status == "HELD" else None, limit=200)
    recent_runs = db.session.scalars(sa.select(m.PayoutRun).order_by(m.PayoutRun.id.desc())
                                     .limit(20)).all()
    counts = dict(db.session.execute(sa.select(m.Payout.status, sa.func.count())
                                     .group_by(m.Payout.status)).all())
    attention = db.session.scalar(sa.select(sa.func.count()).select_from(m.Payout).where(
        sa.or_(m.Payout.held.is_(True),
               sa.and_(m.Payout.status == m.FAILED, m.Payout.returned.is_(True)))))
    return render("admin/payouts/index.html", rows=rows, runs=recent_runs, current_status=status,
                  filters=STATUS_FILTERS, counts=counts, attention=attention,
                  provider_id=provider_id, run_form=RunForm(formdata=None), india=INDIA_TZ)


def _payout_or_404(payout_id):
    payout = db.session.get(m.Payout, payout_id)
    if payout is None:
        abort(404)
    return payout


def _detail(payout, form=None, error=None, status=200):
    audit = []
    from portal.audit.models import AuditEntry
    audit = db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.object_type == "payout", AuditEntry.object_id == str(payout.id))
        .order_by(AuditEntry.id)).all()
    return render("admin/payouts/detail.html", status=422 if (error or (form and form.errors))
                  else status, p=payout, form=form or ReasonForm(formdata=None), error=error,
                  audit=audit, balance=engine.payable_balance(payout.provider_id),
                  india=INDIA_TZ)


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
    except engine.PayoutError as exc:
        db.session.rollback()
        return _detail(_payout_or_404(payout_id), form=form, error=exc.message)
    flash(done, "success")
    return redirect(url_for("admin.payout_detail", payout_id=payout_id), 303)


@bp.post("/payouts/<int:payout_id>/hold")
def payout_hold(payout_id):
    return _act(payout_id, engine.hold_payout, "Payout held.")


@bp.post("/payouts/<int:payout_id>/release")
def payout_release(payout_id):
    return _act(payout_id, engine.release_payout, "Hold lifted.")


@bp.post("/payouts/<int:payout_id>/retry")
def payout_retry(payout_id):
    return _act(payout_id, engine.retry_payout_now, "Retry started.")


@bp.post("/payouts/<int:payout_id>/sync")
def payout_sync(payout_id):
    payout = _payout_or_404(payout_id)
    try:
        changed = engine.refresh_payout(payout.id)
        db.session.commit()
    except Exception as exc:  # a gateway error is shown, not a 500
        db.session.rollback()
        flash(f"Could not reach RazorpayX: {exc}", "error")
    else:
        flash("Status updated from RazorpayX." if changed else "No change at RazorpayX.",
              "success")
    return redirect(url_for("admin.payout_detail", payout_id=payout_id), 303)


@bp.post("/payouts/runs")
def payout_run():
    form = RunForm()
    if not form.validate_on_submit():
        flash("Choose a schedule.", "error")
        return redirect(url_for("admin.payouts"), 303)
    run = runs.run_cycle(form.schedule.data, runs.ist_today(), actor=current_user)
    flash(f"Run {run.key}: {run.payouts_created} payouts, {run.carried_forward} carried "
          f"forward.", "success")
    return redirect(url_for("admin.payout_run_detail", run_id=run.id), 303)


@bp.get("/payouts/runs/<int:run_id>")
def payout_run_detail(run_id):
    run = db.session.get(m.PayoutRun, run_id)
    if run is None:
        abort(404)
    names = dict(db.session.execute(sa.select(Provider.id, Provider.display_name)).all())
    return render("admin/payouts/run.html", run=run, names=names, india=INDIA_TZ)


@bp.get("/payouts/accounts")
def payout_accounts():
    rows = db.session.execute(
        sa.select(Provider, m.FundAccount)
        .outerjoin(m.FundAccount, sa.and_(m.FundAccount.provider_id == Provider.id,
                                          m.FundAccount.current.is_(True)))
        .order_by(Provider.display_name)).all()
    balances = {p.id: engine.payable_balance(p.id) for p, _fa in rows}
    return render("admin/payouts/accounts.html", rows=rows, balances=balances)


@bp.post("/payouts/providers/<int:provider_id>/pay")
def payout_pay_now(provider_id):
    if db.session.get(Provider, provider_id) is None:
        abort(404)
    try:
        engine.pay_now(current_user, provider_id)
    except engine.PayoutError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash("Payout created.", "success")
    return redirect(url_for("admin.payout_accounts"), 303)
