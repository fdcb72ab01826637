"""A provider's PAN is written only once the payouts of that profile and of its PANs being
made have committed (``common.lock_pan_write``): TDS is counted per PAN, and a payout reads
the PAN it locked the payee by again in its replay. A receiver of the catalog's
``provider_pan_writing``: the catalog sits below the payouts and cannot ask them itself."""

from portal import events
from portal.payouts.common import lock_pan_write


@events.provider_pan_writing.connect
def _after_the_payouts_being_made(sender, *, provider_id, pan, **_):
    lock_pan_write(provider_id, pan)
