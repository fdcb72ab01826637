"""The transactions console: every money movement, filtered (the filters live in the URL),
summed, paged by keyset, and one movement's detail with its timeline, Razorpay's record
beside ours and the audit trail.

Views parse the query with ``TransactionFilterForm`` and call the read module
(``portal.transactions.queries``); a bad filter is a 422 with the message beside its field.
The reconciliation column and filter read ``portal.reconcile`` (above the read module, so
the clause is built here and handed down)."""

import sqlalchemy as sa
from flask import abort, request
from sqlalchemy.dialects.postgresql import ARRAY

from portal.db import clinic_today
from portal.extensions import db
from portal.reconcile.models import ReconCase
from portal.reconcile.queries import UNCHECKED, references_with_status, status_by_reference
from portal.transactions import detail, queries
from portal.transactions.filters import PRESETS
from portal.transactions.models import TYPES
from portal.web.admin import bp
from portal.web.forms.transactions import TransactionFilterForm, unknown_keys
from portal.web.htmx import render
from portal.web.paging import page_args

LIST = "admin/transactions/index.html"
DETAIL = "admin/transactions/detail.html"
SUMMARY = "admin/transactions/_summary.html"
PER_PAGE = 50


RECON_LIST_MAX = 5000  # references listed inline; more: a sub-select


def recon_clause(status):
    """The rows whose reconciliation status is ``status`` (a reference no run has seen,
    or a movement without one, is "unchecked"): the status the rows show
    (``portal.reconcile.queries.SEVERITY``), so a filter lists what its rows say.

    Open cases are few: their references are read first and given as a list, so the
    planner reads them through the reference index instead of walking the time index
    and probing the cases for every row (150 ms → 5 ms over 1,000,000 rows)."""
    if not status:
        return None
    refs = sa.select(ReconCase.reference)
    if status == UNCHECKED:
        return lambda column: sa.or_(column.is_(None), column.not_in(refs))
    chosen = references_with_status(status)
    listed = list(db.session.scalars(chosen.limit(RECON_LIST_MAX + 1)))
    if not listed:
        return lambda column: sa.false()
    if len(listed) <= RECON_LIST_MAX:
        if db.session.get_bind().dialect.name == "postgresql":
            # One array parameter, not one per reference: binding 2,000 parameters cost
            # 60 ms a page against the query's 4 ms (the planner still hashes the array).
            refs = sa.bindparam("recon_refs", listed, type_=ARRAY(sa.String), unique=True)
            return lambda column: column == sa.any_(refs)
        return lambda column: column.in_(listed)
    return lambda column: column.in_(chosen)


@bp.get("/transactions")
def transactions():
    form = TransactionFilterForm(formdata=request.args)
    unknown = unknown_keys(request.args)
    form.validate()
    f = form.to_filter(clinic_today())
    context = {"form": form, "types": TYPES, "presets": PRESETS, "unknown": unknown}
    if unknown or f is None:
        return render(LIST, block="console", status=422, rows=None, **context)
    clause = recon_clause(f.recon)
    rows = queries.movements_page(f, recon_clause=clause, **page_args(PER_PAGE))
    recon = status_by_reference(m.reference for m in rows)
    return render(
        LIST,
        block="console",
        rows=rows,
        recon=recon,
        given_back=queries.given_back(rows),
        unchecked=UNCHECKED,
        args=form.args(),
        **context,
    )


@bp.get("/transactions/summary")
def transactions_summary():
    """The filtered set's sums, asked for by the console after its rows are shown (a year
    of movements takes longer to sum than a page takes to read)."""
    args = request.args
    form = TransactionFilterForm(formdata=args)
    form.validate()
    f = None if unknown_keys(args) else form.to_filter(clinic_today())
    if f is None:
        return render(SUMMARY, partial=True, status=422, summary=None, form=form)
    return render(
        SUMMARY,
        partial=True,
        summary=queries.summary(f, recon_clause=recon_clause(f.recon)),
        groups=queries.GROUPS,
        window=(f.start, f.end),
        form=form,
    )


@bp.get("/transactions/<int:movement_id>")
def transaction_detail(movement_id):
    m = queries.movement(movement_id)
    if m is None:
        abort(404)
    record = detail.record_of(m)
    return render(
        DETAIL,
        m=m,
        record=record,
        timeline=detail.timeline(m, record),
        gateway=detail.gateway_side(m),
        compared=detail.COMPARED,
        audit=queries.audit_trail(*m.record_key, m.visit_id),
        other_half=queries.other_half(m),
        given_back=m.id in queries.given_back([m]),
        recon=status_by_reference([m.reference]).get(m.reference or "", UNCHECKED),
    )
