"""Figures the dashboard reads from another capability:

* ``discrepancies``: the reconciliation cases (``portal.reconcile``): open DISCREPANCY
  cases, and the share of cases first seen since ``since`` that were a discrepancy (open,
  or resolved by an administrator: a resolved case was one). Two indexed counts."""

import sqlalchemy as sa

from portal.extensions import db
from portal.reconcile.models import CaseStatus, ReconCase
from portal.reconcile.queries import open_discrepancy_count

# The discrepancy rate counts cases by when they were first seen (declared here, beside
# the only query that needs it; migration po11c1e50001 creates it).
sa.Index("ix_recon_cases_first_seen_at", ReconCase.first_seen_at)


def discrepancies(since):
    """(open discrepancies, discrepancy rate 0..1 or None when no case since ``since``)."""
    row = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(
                ReconCase.status.in_([CaseStatus.DISCREPANCY, CaseStatus.RESOLVED])
            ),
        ).where(ReconCase.first_seen_at >= since)
    ).one()
    total, bad = int(row[0]), int(row[1])
    return int(open_discrepancy_count() or 0), (bad / total if total else None)
