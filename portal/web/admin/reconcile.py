"""Reconciliation with Razorpay: the runs, a "run now" form, open cases by reason with
filters, a case with both sides side by side, and resolving (sync from the gateway, or
accept with a note) one case or a ticked selection. Runs go to a background job; every
resolution is audited by the service."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.domain.states import ReconRunStatus
from portal.exports import ExportError
from portal.reconcile import queries
from portal.reconcile import resolve as resolving
from portal.reconcile import run as runs
from portal.reconcile.history import case_history
from portal.transactions import references
from portal.web.admin import bp
from portal.web.exporting import csv_download
from portal.web.forms.reconcile import AcceptForm, BulkForm, RunForm
from portal.web.htmx import htmx_block, render, render_form
from portal.web.paging import cursor_args, page_args

INDEX = "admin/reconciliation/index.html"
CASE = "admin/reconciliation/case.html"
RUN = "admin/reconciliation/run.html"
NO_CASE = "admin/reconciliation/no_case.html"
RUNS = "runs_"  # the runs list's cursors on the page (``runs_after``)
FILTERS = {
    "status": queries.STATUS_FILTERS,
    "reason": queries.REASON_FILTERS,
    "kind": queries.KIND_FILTERS,
}


def _filters():
    """The list's filters from the query string, and a message for any it does not know."""
    chosen, unknown = {}, []
    for name, allowed in FILTERS.items():
        value = (request.args.get(name) or "").strip()
        if not value:
            continue
        if value in allowed:
            chosen[name] = value
        else:
            unknown.append(f"{name}={value[:40]}")
    for name in request.args:
        if name not in FILTERS and name not in (
            "after",
            "before",
            "per_page",
            "runs_after",
            "runs_before",
            "runs_per_page",
        ):
            unknown.append(name[:40])
    message = f"Unknown filter ignored: {', '.join(unknown)}." if unknown else None
    return chosen, message


def _index(run_form=None, bulk_form=None, status=200):
    filters, problem = _filters()
    page = queries.cases_page(
        status=filters.get("status", queries.OPEN),
        reason=filters.get("reason"),
        kind=filters.get("kind"),
        **page_args(30),
    )
    run_form = run_form or RunForm(formdata=None)
    # Each list's pager keeps the other's place and the case filters (review finding: the
    # runs' pager dropped the filters, the cases' the runs' place).
    runs_cursor = cursor_args(RUNS)
    return render(
        INDEX,
        block="cases" if request.headers.get("HX-Target") == "cases" else None,
        status=400 if problem else status,
        runs=queries.runs_page(**page_args(10, prefix=RUNS)),
        runs_cursor=runs_cursor,
        cases_pager_args={**filters, **runs_cursor},
        runs_pager_args={**filters, **cursor_args()},
        # Cases swapped in by htmx: the runs' pager, outside them, is swapped with them.
        runs_pager_oob=htmx_block("cases") is not None,
        cases=page,
        by_reason=queries.open_by_reason(),
        filters=filters,
        filter_problem=problem,
        filter_choices=FILTERS,
        run_form=run_form,
        bulk_form=bulk_form or BulkForm(formdata=None),
    )


@bp.get("/reconciliation")
def reconciliation():
    return _index()


@bp.post("/reconciliation/runs")
def reconciliation_run():
    form = RunForm()
    if not form.validate_on_submit():
        return _index(run_form=form, status=422)
    asked = runs.request_run(current_user, form.first_day.data, form.last_day.data)
    run, days = asked.run, f"{form.first_day.data} to {form.last_day.data}"
    if asked.started:
        flash(f"Run {run.id} started for {days}.", "success")
    elif run.status == ReconRunStatus.RUNNING and not runs.just_started(run):
        flash(f"Run {run.id} for that window is still running ({days}): no other started.", "info")
    else:
        flash(
            f"Run {run.id} for that window was started moments ago ({days}): no other started;"
            " its outcome is in the list.",
            "info",
        )
    return redirect(url_for("admin.reconciliation"), 303)


@bp.get("/reconciliation/cases.csv")
def reconciliation_cases_csv():
    """The cases, filtered as the screen is (status, reason, kind), as CSV."""
    return _csv("reconciliation-cases")


@bp.get("/reconciliation/runs.csv")
def reconciliation_runs_csv():
    return _csv("reconciliation-runs")


def _csv(name):
    try:
        return csv_download(name, request.args.to_dict())
    except ExportError as exc:
        return render("errors/422.html", status=422, message=exc.message)


@bp.get("/reconciliation/runs/<int:run_id>")
def reconciliation_run_detail(run_id):
    run = queries.get_run(run_id)
    if run is None:
        abort(404)
    page = queries.cases_page(status="all", run_id=run.id, **page_args(30))
    return render(RUN, run=run, cases=page)


def _case_or_404(case_id):
    case = queries.get_case(case_id)
    if case is None:
        abort(404)
    return case


@bp.get("/reconciliation/cases/<int:case_id>")
def reconciliation_case(case_id):
    case = _case_or_404(case_id)
    return render(CASE, case=case, form=AcceptForm(formdata=None), history=case_history(case.id))


@bp.get("/reconciliation/cases/by-reference/<reference>")
def reconciliation_case_by_reference(reference):
    """From a row elsewhere (the transactions console) to its case. No case yet (no run
    has checked it): to the reference's transactions, saying so; a reference in none of
    our records is a 404 that says that, not a bare one."""
    reference = reference.strip()[:64]
    case = queries.case_by_reference(reference)
    if case is not None:
        return redirect(url_for("admin.reconciliation_case", case_id=case.id), 303)
    found = references.find(reference)
    if found is not None and found.known:
        flash(
            f"No discrepancy for {found.reference.text}: no reconciliation run has a case "
            "about it yet. Here are its transactions.",
            "info",
        )
        return redirect(url_for("admin.transactions", reference=found.reference.text), 303)
    return render(NO_CASE, status=404, reference=reference, found=found)


@bp.post("/reconciliation/cases/<int:case_id>/sync")
def reconciliation_sync(case_id):
    case = _case_or_404(case_id)
    try:
        synced = resolving.sync(current_user, case.id)
    except resolving.ResolveError as exc:
        flash(str(exc), "error")
    else:
        flash(synced.message, "info" if synced.meanwhile_by else "success")
    return redirect(url_for("admin.reconciliation_case", case_id=case_id), 303)


@bp.post("/reconciliation/cases/<int:case_id>/accept")
def reconciliation_accept(case_id):
    case = _case_or_404(case_id)
    form = AcceptForm()
    if form.validate_on_submit():
        try:
            resolving.accept(current_user, case.id, form.note.data)
        except resolving.ResolveError as exc:
            form.note.errors = [*form.note.errors, str(exc)]
        else:
            flash("Accepted with your note.", "success")
            return redirect(url_for("admin.reconciliation_case", case_id=case_id), 303)
    return render_form(CASE, form, case=case, history=case_history(case.id))


@bp.post("/reconciliation/cases/bulk")
def reconciliation_bulk():
    form = BulkForm()
    if not form.validate_on_submit():
        return _index(bulk_form=form, status=422)
    done, refused = resolving.resolve_many(
        current_user, form.case.data, form.action.data, form.note.data
    )
    if done:
        flash(f"{done} case{'s' if done != 1 else ''} resolved.", "success")
    for case_id, message in refused[:10]:
        flash(f"Case {case_id}: {message}", "error")
    return redirect(url_for("admin.reconciliation"), 303)
