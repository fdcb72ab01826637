"""The daily settlement fetch (the scheduler) and the admin's "fetch now" share ``ingest``."""

import logging

from portal.jobs import periodic

from .ingest import SettlementError, ingest

log = logging.getLogger(__name__)


@periodic("settlements.fetch", every=24 * 3600)
def fetch_settlements():
    """Read the last days' settlements; a gateway that cannot be read is logged and
    tried again by the next run (nothing half-stored)."""
    try:
        result = ingest()
    except SettlementError as exc:
        log.warning("settlements not fetched: %s", exc.message)
        return 0
    return result.new
