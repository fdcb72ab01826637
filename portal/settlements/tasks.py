"""The daily settlement fetch (the scheduler), the admin's "fetch now" and each
reconciliation run (before its settlement check, ``reconcile.settled.read_latest``)
share ``ingest``. The daily job also flags what has just left its window incomplete: it
is the one read whose window a settlement leaves for good ("fetch now", the runs and the
command read in between, some with other windows), so it decides when a settlement has
been read for the last time (docs/decisions.md)."""

import logging

from portal.db import utcnow
from portal.jobs import periodic

from .ingest import SettlementError, flag_left_incomplete, ingest, lookback_start

log = logging.getLogger(__name__)


@periodic("settlements.fetch", every=24 * 3600)
def fetch_settlements():
    """Read the last days' settlements, then flag those just left behind with their rows
    incomplete; a gateway that cannot be read is logged and tried again by the next run
    (nothing half-stored). The flag follows even then: a settlement before this run's
    window is read by no later run."""
    until = utcnow()
    new = 0
    try:
        new = ingest(until=until).new
    except SettlementError as exc:
        log.warning("settlements not fetched: %s", exc.message)
    flag_left_incomplete(lookback_start(until))
    return new
