"""Reads for other pages: the reconciliation indicator of a list's rows, in one query."""

from collections.abc import Iterable

import sqlalchemy as sa

from portal.extensions import db
from portal.reconcile.models import CaseStatus, ReconCase

#: what a row shows when no run has looked at its reference yet
UNCHECKED = "unchecked"


def status_by_reference(references: Iterable[str | None]) -> dict[str, str]:
    """Gateway id -> case status (matched, pending, discrepancy, resolved) for the given
    references; a reference no run has seen is absent (show it as ``UNCHECKED``)."""
    refs = sorted({r for r in references if r})
    if not refs:
        return {}
    rows = db.session.execute(
        sa.select(ReconCase.reference, ReconCase.status).where(ReconCase.reference.in_(refs))
    )
    return dict(rows.all())


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
