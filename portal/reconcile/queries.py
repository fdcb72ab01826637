"""Reads for other pages: the reconciliation indicator of a list's rows, in one query."""

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.pagination import Order, keyset_page
from portal.reconcile.models import CaseKind, CaseStatus, Reason, ReconCase, ReconRun

#: what a row shows when no run has looked at its reference yet
UNCHECKED = "unchecked"

#: A reference's statuses, least to most in need of a look. A reference may have several
#: cases (an unsettled payment has its payment case and a settlement case, both keyed by
#: its pay_ id); it shows the last of these it has, so a discrepancy is never hidden behind
#: a match. The console's rows, its CSV and its filter all read it (docs/transactions.md).
SEVERITY = (CaseStatus.MATCHED, CaseStatus.RESOLVED, CaseStatus.PENDING, CaseStatus.DISCREPANCY)


def _severity(status_column):
    return sa.case({str(s): i for i, s in enumerate(SEVERITY)}, value=status_column, else_=-1)


def status_by_reference(references: Iterable[str | None]) -> dict[str, str]:
    """Gateway id -> the reference's status (the most severe of its cases, ``SEVERITY``)
    for the given references; a reference no run has seen is absent (show it as
    ``UNCHECKED``). One query."""
    refs = sorted({r for r in references if r})
    if not refs:
        return {}
    rows = db.session.execute(
        sa.select(ReconCase.reference, ReconCase.status)
        .where(ReconCase.reference.in_(refs))
        .order_by(_severity(ReconCase.status))
    )
    return dict(rows.all())  # the most severe comes last, and is kept


def status_of(reference_column):
    """The status ``status_by_reference`` gives, as a correlated subquery of a gateway-id
    column (NULL when no case has it): a select's column, one statement for every row."""
    case = aliased(ReconCase)
    return (
        sa.select(case.status)
        .where(case.reference == reference_column)
        .order_by(_severity(case.status).desc())
        .limit(1)
        .scalar_subquery()
    )


def references_with_status(status):
    """A select of the references whose status (as above) is ``status``: those with a case
    in it and none more severe."""
    worse = [str(s) for s in SEVERITY[SEVERITY.index(status) + 1 :]]
    query = sa.select(ReconCase.reference).where(ReconCase.status == status)
    if worse:
        other = aliased(ReconCase)
        query = query.where(
            ~sa.exists().where(other.reference == ReconCase.reference, other.status.in_(worse))
        )
    return query


def open_cases_by_visit(visit_ids: Iterable[int]) -> dict[int, int]:
    """Visit id -> number of open discrepancies, for the visits given (absent: none)."""
    ids = sorted(set(visit_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(ReconCase.visit_id, sa.func.count())
        .where(ReconCase.visit_id.in_(ids), ReconCase.status == CaseStatus.DISCREPANCY)
        .group_by(ReconCase.visit_id)
    )
    return dict(rows.all())


def open_discrepancy_count() -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).where(ReconCase.status == CaseStatus.DISCREPANCY)
    )


# --- the reconciliation screen ------------------------------------------------------------

RUN_ORDER = (Order(ReconRun.started_at, descending=True), Order(ReconRun.id, descending=True))
CASE_ORDER = (Order(ReconCase.updated_at, descending=True), Order(ReconCase.id, descending=True))
OPEN = "open"  # the screen's default filter: discrepancy or pending
STATUS_FILTERS = (OPEN, *[str(s) for s in CaseStatus], "all")
REASON_FILTERS = tuple(str(r) for r in Reason)
KIND_FILTERS = tuple(str(k) for k in CaseKind)


def runs_page(*, after=None, before=None, per_page=10):
    return keyset_page(
        sa.select(ReconRun), RUN_ORDER, after=after, before=before, per_page=per_page
    )


def cases_page(
    *, status=OPEN, reason=None, kind=None, run_id=None, after=None, before=None, per_page=30
):
    """Cases newest change first; ``status`` one of STATUS_FILTERS."""
    query = cases_query(status=status, reason=reason, kind=kind, run_id=run_id)
    return keyset_page(query, CASE_ORDER, after=after, before=before, per_page=per_page)


def cases_query(*, status=OPEN, reason=None, kind=None, run_id=None):
    """The select behind the cases list (and its CSV)."""
    query = sa.select(ReconCase)
    if status == OPEN:
        query = query.where(ReconCase.status.in_((CaseStatus.DISCREPANCY, CaseStatus.PENDING)))
    elif status != "all":
        query = query.where(ReconCase.status == status)
    if reason:
        query = query.where(ReconCase.reason == reason)
    if kind:
        query = query.where(ReconCase.kind == kind)
    if run_id:
        query = query.where(ReconCase.last_run_id == run_id)
    return query


def open_by_reason() -> list[tuple[str, int]]:
    """Open discrepancies per reason, the largest group first."""
    rows = db.session.execute(
        sa.select(ReconCase.reason, sa.func.count())
        .where(ReconCase.status == CaseStatus.DISCREPANCY)
        .group_by(ReconCase.reason)
    ).all()
    return sorted(((r or "", n) for r, n in rows), key=lambda x: (-x[1], x[0]))


def get_run(run_id):
    return db.session.get(ReconRun, run_id)


def get_case(case_id):
    return db.session.get(ReconCase, case_id)


def case_by_reference(reference):
    """The case of a gateway id whose status the reference shows (``SEVERITY``: a payment
    may also have a settlement case under its pay_ id), the first such if several."""
    return db.session.scalar(
        sa.select(ReconCase)
        .where(ReconCase.reference == reference)
        .order_by(_severity(ReconCase.status).desc(), ReconCase.id)
    )
