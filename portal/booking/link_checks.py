"""What Razorpay says of a payment link when the portal ends it: the link's own state read
before its expiry is acted on, and again when Razorpay refuses to cancel it.

Why (review finding): the expiry job ended a pending link on the portal's word alone. A
link paid whose webhooks were all lost then got a new link (or the visit lapsed, its slot
freed), and the capture found later by reconciliation went to the wallet as a late
payment: the patient paid and lost the appointment. The order holds' sweep asks the
gateway in the same way (``booking.tasks``).

* ``settle(payment)``: a pending link past its expiry (its visit locked) is fetched. Each
  payment it holds is captured as the ``payment_link.paid`` webhook captures it
  (``payment_events.capture``: the webhook's one path, so a webhook arriving later finds
  the gateway id recorded and changes nothing). A link still payable there (our clock
  ahead of Razorpay's) is cancelled first, so nothing can be paid on it once the portal
  has ended it; a cancel refused because it was paid meanwhile reads it again and
  captures. Raises ``GatewayError`` or ``Undecided`` when Razorpay cannot say.
* The ``payments.cancel_link`` job (a link the portal ended for another reason: replaced,
  abandoned for a desk payment, its visit expired) does the same after Razorpay refuses
  the cancel: the payment made in the race is captured on the ended row, a late payment
  (the visit revived, or the wallet), never left at the gateway on no row."""

import logging

from portal import jobs
from portal.booking import lifecycle, payment_events
from portal.extensions import db
from portal.gateway import BadRequest, NotFound, get_payin
from portal.gateway.confirm import NotCapturedYet, Unconfirmed, confirmed_payment
from portal.payments.models import Payment

log = logging.getLogger("portal.booking.links")

CANCEL_LINK = lifecycle.CANCEL_LINK  # its name kept from portal.payments: queued rows
PAYABLE = ("created", "partially_paid")  # Razorpay's statuses a payment may still come in
PAID = ("paid", "partially_paid")
SOURCE = "link check"  # the capture's source: timeline "link check.captured", audit


class Undecided(Exception):
    """Razorpay answered, but not whether the link's money came in (a payment authorized,
    its capture still to come; a paid link whose payment it does not confirm)."""


def settle(payment):
    """Make sure nothing more can be paid on ``payment``'s link, capturing what was paid.
    Afterwards the row is SUCCESSFUL when the link paid for the visit; still PENDING when
    nothing (or nothing that confirms it) came in, and the link can no longer be paid."""
    payin = get_payin()
    try:
        link = payin.fetch_payment_link(payment.razorpay_link_id)
    except NotFound:
        # Unknown to the gateway (another account, a sandbox reset): nothing can be paid on it.
        log.warning("payment link %s is unknown to the gateway", payment.razorpay_link_id)
        return
    if link.get("status") in PAYABLE:
        try:
            payin.cancel_payment_link(link["id"])
        except BadRequest as exc:  # paid (or expired) since it was read: read it again
            log.info("payment link %s not cancelled: %s", link["id"], exc)
            link = payin.fetch_payment_link(link["id"])
    capture_paid(payment, link)


def capture_paid(payment, link):
    """Each payment ``link`` (the gateway's record) holds, confirmed with the gateway and
    captured on ``payment`` as its webhook would capture it. Undecided when the link says
    it was paid and no captured payment of it can be confirmed."""
    payin = get_payin()
    captured = 0
    for entry in link.get("payments") or []:
        payment_id = entry.get("payment_id") if isinstance(entry, dict) else None
        if not payment_id or entry.get("status") == "failed":
            continue
        try:
            found = confirmed_payment(payin, {"id": payment_id})
        except NotCapturedYet as exc:
            raise Undecided(str(exc)) from None
        except Unconfirmed as exc:
            log.error("payment link %s: %s", link.get("id"), exc)
            continue
        payment_events.capture(
            payment,
            razorpay_payment_id=found["id"],
            amount=int(found["amount"]),
            method=found.get("method"),
            source=SOURCE,
        )
        captured += 1
    if link.get("status") in PAID and not captured:
        raise Undecided(f"payment link {link.get('id')} is paid; no captured payment confirmed")


@jobs.job(CANCEL_LINK)
def cancel_link(payment_id):
    """A link the portal ended, cancelled at Razorpay after the commit that ended it.
    Razorpay refuses a link already paid or expired: the link is read then and a payment
    it holds captured (``capture_paid``), whatever became of its webhooks."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or not payment.razorpay_link_id:
        return
    payin = get_payin()
    try:
        payin.cancel_payment_link(payment.razorpay_link_id)
        return
    except BadRequest as exc:
        log.info("payment link %s not cancelled: %s", payment.razorpay_link_id, exc)
    try:
        link = payin.fetch_payment_link(payment.razorpay_link_id)
    except NotFound:
        return
    try:
        capture_paid(payment, link)
    except Undecided as exc:
        raise jobs.RetryLater(str(exc)) from exc
