"""The reconciliation report's CSVs: the cases (with the screen's filters: status, reason,
kind) and the runs (docs/reconciliation.md). Filters arrive as the screen's query string."""

import sqlalchemy as sa

from portal.exports import ExportError, ExportSpec, money, number, register, text, when
from portal.reconcile import queries
from portal.reconcile.models import ReconCase, ReconRun


def _of(name):
    """A column of the row's entity (an entity select streams rows of one entity)."""
    return lambda row: getattr(row[0], name)


CASE_FILTERS = {
    "status": queries.STATUS_FILTERS,
    "reason": queries.REASON_FILTERS,
    "kind": queries.KIND_FILTERS,
}


def parse(params):
    """The chosen filters; an unknown name or value is an ExportError naming it."""
    chosen = {}
    for name, value in params.items():
        value = (value or "").strip()
        if name not in CASE_FILTERS:
            raise ExportError(f"Unknown filter: {name[:40]}.", field=None)
        if not value:
            continue
        if value not in CASE_FILTERS[name]:
            raise ExportError(f"Unknown {name}: {value[:40]}.", field=name)
        chosen[name] = value
    return chosen


@register("reconciliation-cases")
def cases_export(params):
    f = parse(params)
    status = f.get("status", queries.OPEN)
    query = queries.cases_query(status=status, reason=f.get("reason"), kind=f.get("kind"))
    return ExportSpec(
        name="reconciliation-cases",
        title="Reconciliation cases",
        columns=[
            number("Case", _of("id")),
            text("Kind", _of("kind")),
            text("Reference", _of("reference")),
            text("Status", _of("status")),
            text("Reason", _of("reason")),
            number("Visit", _of("visit_id")),
            money("Our amount", _of("our_amount")),
            money("Gateway amount", _of("gateway_amount")),
            text("Our status", _of("our_status")),
            text("Gateway status", _of("gateway_status")),
            when("First seen", _of("first_seen_at")),
            when("Updated", _of("updated_at")),
            number("First run", _of("first_run_id")),
            number("Last run", _of("last_run_id")),
            text("Resolution", _of("resolution")),
            when("Resolved", _of("resolved_at")),
            text("Note", _of("note")),
        ],
        query=query.order_by(ReconCase.updated_at.desc(), ReconCase.id.desc()),
        filters=[("status", status), *((k, v) for k, v in f.items() if k != "status")],
    )


@register("reconciliation-runs")
def runs_export(params):
    if params:
        raise ExportError(f"Unknown filter: {sorted(params)[0][:40]}.")
    return ExportSpec(
        name="reconciliation-runs",
        title="Reconciliation runs",
        columns=[
            number("Run", _of("id")),
            when("Window from", _of("window_start")),
            when("Window to", _of("window_end")),
            text("Trigger", _of("trigger")),
            number("Started by", _of("started_by_id")),
            text("Status", _of("status")),
            when("Started", _of("started_at")),
            number("Duration ms", _of("duration_ms")),
            number("Gateway records", _of("gateway_records")),
            number("Our records", _of("our_records")),
            number("Matched", _of("matched")),
            number("Pending", _of("pending")),
            number("Discrepancies", _of("discrepancies")),
            number("New discrepancies", _of("new_discrepancies")),
            text("Error", _of("error")),
        ],
        query=sa.select(ReconRun).order_by(ReconRun.started_at.desc(), ReconRun.id.desc()),
    )
