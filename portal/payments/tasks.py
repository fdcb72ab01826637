"""Background work on payment records: cancelling a replaced or expired payment link at
Razorpay after the commit that ended it."""

import logging

from portal import jobs
from portal.extensions import db
from portal.gateway import BadRequest, get_payin
from portal.payments.models import Payment

log = logging.getLogger("portal.payments")


@jobs.job("payments.cancel_link")
def cancel_link(payment_id):
    """Best effort: if the link is already paid or expired there, the webhook handlers
    take it from there."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or not payment.razorpay_link_id:
        return
    try:
        get_payin().cancel_payment_link(payment.razorpay_link_id)
    except BadRequest as exc:
        log.info("payment link %s not cancelled: %s", payment.razorpay_link_id, exc)
