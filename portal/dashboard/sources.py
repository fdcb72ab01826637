"""Figures the dashboard reads from capabilities built alongside it, in one place to point
at them when they are merged:

* ``discrepancies``: the reconciliation package's case table (helper "recon"): open
  DISCREPANCY cases, and the share of items reconciled since ``since`` that were one.
  Until it is merged there is no such table and the dashboard shows "—".
* ``other_pending_approvals``: approvals queues besides refund overrides and policy
  changes (the wallet's manual adjustments awaiting a second administrator).

Each returns quickly (one indexed count) and never raises for a missing capability."""


def discrepancies(since):
    """(open discrepancies, discrepancy rate 0..1) or (None, None) when not available.

    After the merge: count the reconciliation cases with status DISCREPANCY not resolved
    (open), and divide the cases created since ``since`` with status DISCREPANCY by all
    cases created since then."""
    return None, None


def other_pending_approvals():
    """{label: count} of other queues (e.g. {"wallet adjustments": n}); none yet."""
    return {}
