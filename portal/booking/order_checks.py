"""What Razorpay says of an order before a sweep ends what waits on it: the visits' holds
(``booking.tasks``) and the reschedule fees' checkouts (``reschedule_payment``).

A payment captured there whose return and webhooks never came is applied as its webhook
would apply it (found by the seeded simulation, seed 19 with lost webhooks). Applying is
all this does: whether anything is still left to expire is the sweep's to read afterwards,
under the row's lock, never assumed from "something was captured". A capture of the wrong
amount pays for nothing (the wallet); the order stays open and its hold must still run out
(review finding: the visits' sweep took any capture for "paid after all" and kept such a
visit pending for ever, its wallet part reserved and Razorpay asked every minute)."""

import logging

from portal.gateway import GatewayError, get_payin

log = logging.getLogger("portal.booking")


def apply_captures(order_id, apply):
    """Each payment captured on ``order_id`` at Razorpay passed to ``apply(payment_id,
    amount, method)``, the webhook's own path (idempotent: one already recorded changes
    nothing). False when the gateway could not answer: expiring blind could leave a
    capture we were never told of on nothing, so the caller waits for its next sweep."""
    try:
        found = get_payin().fetch_order_payments(order_id)
    except GatewayError:
        log.warning("order %s not checked; what waits on it is kept for now", order_id)
        return False
    for entity in found:
        if entity.get("status") == "captured":
            apply(entity["id"], int(entity.get("amount") or 0), entity.get("method"))
    return True
