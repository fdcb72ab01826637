"""Paying for a visit: the patient's checkout (wallet part reserved, the rest one Razorpay
order), the checkout and payment-link callbacks, and a payment taken at the clinic's desk.

Each use case is one unit of work. A broken rule raises ``BookingError``; a payment that
cannot be verified or started raises ``PaymentError``."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

from portal.audit.service import record
from portal.booking import lifecycle, paid, payment_events, prices
from portal.booking.access import require_admin, visit_for
from portal.booking.errors import (  # noqa: F401  (the callback's messages, re-exported)
    MSG_BAD_SIGNATURE,
    MSG_CONFIRMING,
    MSG_NOT_PAID,
    BookingError,
    PaymentError,
)
from portal.booking.holds import HoldLeft
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain import schedule
from portal.domain.rates import format_inr
from portal.domain.states import BookingStatus, PaymentStatus, VisitStatus
from portal.domain.text import Text
from portal.gateway import GatewayError, get_payin
from portal.gateway.confirm import (
    NotCapturedYet,
    Unconfirmed,
    confirmed_link,
    confirmed_payment,
)
from portal.i18n import N_
from portal.ledger import accounts as chart
from portal.payments import records
from portal.payments.models import DESK, LINK, ORDER, Payment

log = logging.getLogger("portal.booking")

MSG_VISIT_CLOSED = N_("This visit is already paid; items can no longer be changed")
MSG_EMPTY = N_("Add at least one appointment first")
MSG_HOLD_EXPIRED = N_("Your hold on these slots has expired; please choose them again")
MSG_TOO_MANY_ATTEMPTS = N_("Too many payment attempts; please contact the clinic")
MSG_NOTHING_TO_PAY = N_("Nothing is left to pay for this visit")
MSG_RECEIPT_NO = N_("Enter the receipt number")
MSG_GATEWAY_DOWN = N_("Payments are unavailable right now; please try again in a few minutes")
# The amounts the pay button stated are not what paying would take now (a coupon edited or
# removed, an item added, the wallet's balance moved while the page was open): nothing is
# taken until the patient confirms the new ones (the cancellation's MSG_REFUND_CHANGED).
MSG_PRICE_CHANGED = N_(
    "The price changed while this page was open: it is now %(now)s, not the %(was)s "
    "shown. Check the new amount and confirm again."
)
MSG_PRICE_CHANGED_WALLET = N_(
    "The price changed while this page was open: it is now %(wallet)s from your wallet "
    "and %(online)s online, not %(was_wallet)s and %(was_online)s. Check the new amounts "
    "and confirm again."
)
# A checkout asked without the amounts its pay button stated (or with them unreadable) is
# asked again: money is taken only against figures the patient saw (``checkout``'s
# required ``shown``).
MSG_PRICE_UNSHOWN = N_("Check the amount on the pay button, then confirm again.")
# The desk's (admin pages are in English only).
MSG_DESK_AMOUNT_CHANGED = (
    "The amount due is now %(now)s, not the %(was)s shown: the visit changed while the "
    "page was open. Check the new amount and record it again."
)
# A desk payment asked without the amount its button stated (or with it unreadable) is asked
# again: the desk records only an amount the admin saw (``record_desk_payment``'s required
# ``confirmed_amount``).
MSG_DESK_AMOUNT_UNSHOWN = "Check the amount on the button and record the desk payment again."


def _as_shown(wallet, online, shown):
    """Refuse (nothing written: the caller's unit of work rolls back) when the wallet and
    online parts about to be taken are not the ``(wallet, online)`` paise the patient's
    button stated (``shown``, required by ``checkout``)."""
    if (wallet, online) == tuple(shown):
        return
    was_wallet, was_online = shown
    if wallet or was_wallet:
        message = Text(
            MSG_PRICE_CHANGED_WALLET,
            wallet=format_inr(wallet),
            online=format_inr(online),
            was_wallet=format_inr(was_wallet),
            was_online=format_inr(was_online),
        )
    else:
        message = Text(MSG_PRICE_CHANGED, now=format_inr(online), was=format_inr(was_online))
    raise BookingError(message)


def ready_for_payment(visit):
    if not visit.is_open:
        raise BookingError(MSG_VISIT_CLOSED)
    if not any(i.status == BookingStatus.SCHEDULED for i in visit.items):
        raise BookingError(MSG_EMPTY)


@contextmanager
def paying(actor, visit_id):
    """One unit of work on the locked visit, ready for a payment (the body's). A hold
    whose time passed is expired instead and committed (the slots are free at once), then
    the caller hears why. One transaction and one lock where a check in a unit of work of
    its own, then the payment in another, read the visit, its items and the actor twice."""
    with unit_of_work() as session:
        visit = visit_for(actor, visit_id)
        lifecycle.load_items(visit)
        ready_for_payment(visit)
        if not lifecycle.is_hold_stale(visit):
            yield visit, session
            return
        lifecycle.expire(visit, actor=actor)
    raise BookingError(MSG_HOLD_EXPIRED)


@dataclass
class CheckoutResult:
    """``redirect_url`` is a GET-able checkout page with the sandbox; with real Razorpay the
    hosted checkout needs a POST (``needs_post``: render ``form_fields`` as hidden inputs of
    a form posting to ``form_action``). ``redirect_url is None``: paid, nothing to do."""

    payment: Payment | None
    redirect_url: str | None
    form_action: str | None = None
    form_fields: dict = field(default_factory=dict)

    @property
    def needs_post(self):
        return bool(self.form_fields) and self.redirect_url == self.form_action


def _checkout_target(payment, callback_url, visit):
    payin = get_payin()
    if payin.is_sandbox:
        return CheckoutResult(payment, payin.checkout_url(payment.razorpay_order_id, callback_url))
    patient = visit.patient
    action, fields = payin.hosted_checkout(
        payment.razorpay_order_id,
        callback_url,
        description=f"Visit {visit.number}",
        prefill={"name": patient.name, "email": patient.email, "contact": patient.phone or ""},
    )
    return CheckoutResult(payment, action, action, fields)


def _stated(shown):
    """``shown`` as ``(wallet, online)`` whole paise, else None (missing or unreadable)."""
    if not isinstance(shown, (tuple, list)) or len(shown) != 2:
        return None
    if any(isinstance(p, bool) or not isinstance(p, int) for p in shown):
        return None
    return tuple(shown)


def checkout(actor, visit_id, wallet_paise=0, callback_url=None, *, shown):
    """Pay for a visit: the wallet part is reserved, the rest becomes one Razorpay order
    and the hold is extended to the order's lifetime (``BOOKING_ORDER_MINUTES``, 30).
    Fully covered by the wallet (or the coupon): confirmed at once, ``redirect_url=None``.
    Again on a visit awaiting payment: the same order (a retry) while fewer than 5
    attempts exist; a different ``wallet_paise`` abandons the old order for a new one.
    ``shown`` (required): the ``(wallet, online)`` paise the pay button stated
    (``prices.pay_quote(visit, wallet_paise)``: its ``wallet_used``, ``amount_due``);
    other amounts now refuse with the new ones, and so do none (``None`` or not two whole
    numbers of paise): nothing reserved, ordered or confirmed."""
    if not callback_url:
        raise ValueError("checkout needs the callback_url Razorpay returns to")
    # Required, never defaulted: a caller without the amounts shown would otherwise skip
    # the check and take whatever is due now (review finding: a pay post without
    # ``shown_wallet``/``shown_online`` did). Refused before anything is read.
    shown = _stated(shown)
    if shown is None:
        raise BookingError(MSG_PRICE_UNSHOWN)
    with paying(actor, visit_id) as (visit, session):
        pending = visit.pending_payment
        if (
            pending is not None
            and pending.kind == ORDER
            and prices.same_wallet_request(visit, wallet_paise)
        ):
            # A retry: back to the same order while the attempt limit allows.
            _as_shown(visit.wallet_applied, pending.amount, shown)
            if not schedule.may_retry_payment(pending.attempt_count, policy()):
                raise BookingError(MSG_TOO_MANY_ATTEMPTS)
            records.add_attempt(pending, "checkout.retry", PaymentStatus.PENDING)
            return _checkout_target(pending, callback_url, visit)
        kept = prices.link_kept(visit, wallet_paise)
        if kept is not None:
            # The link's offer stands (its coupon lapsed since): pay that link, no order.
            _as_shown(0, kept.amount_due, shown)
            return CheckoutResult(pending, pending.link_url)
        if pending is not None or visit.status == VisitStatus.PENDING_PAYMENT:
            lifecycle.abandon_checkout(visit, "checkout restarted", actor)
        q, wallet_payment = prices.fix_price(visit, wallet_paise, detach_lapsed_by=actor)
        _as_shown(q.wallet_used, q.amount_due, shown)
        now = utcnow()
        if q.amount_due == 0:
            lifecycle.confirm(
                visit,
                gateway_amount=0,
                money_account=chart.GATEWAY_CLEARING,
                actor=actor,
                source="wallet",
            )
            record(
                actor,
                "visit.checkout",
                "visit",
                visit.id,
                after={"wallet": q.wallet_used, "gateway": 0, "discount": q.discount},
            )
            return CheckoutResult(wallet_payment, None)
        payment = Payment(
            kind=ORDER,
            amount=q.amount_due,
            status=PaymentStatus.PENDING,
            created_by_id=actor.id,
            expires_at=now + lifecycle.order_lifetime(),
        )
        visit.payments.append(payment)
        session.flush()
        try:
            order = get_payin().create_order(
                q.amount_due,
                receipt=f"{visit.number}-P{payment.id}",
                notes={"visit": visit.number, "portal_payment": str(payment.id)},
            )
        except GatewayError as exc:
            raise PaymentError(MSG_GATEWAY_DOWN) from exc
        payment.razorpay_order_id = order["id"]
        records.add_attempt(
            payment, "order.created", PaymentStatus.PENDING, detail={"order": order["id"]}
        )
        visit.hold_expires_at = max(visit.hold_expires_at or now, payment.expires_at)
        lifecycle.refresh_status(visit)
        record(
            actor,
            "visit.checkout",
            "visit",
            visit.id,
            after={
                "wallet": q.wallet_used,
                "gateway": q.amount_due,
                "discount": q.discount,
                "order": order["id"],
                "payment_id": payment.id,
            },
        )
        return _checkout_target(payment, callback_url, visit)


def complete_checkout_callback(params, visit_id=None):
    """Razorpay's checkout came back: verify the signature with the SDK (for an order of
    ``visit_id`` when given), confirm the payment with the gateway, then confirm the visit
    (idempotent with the webhook, whichever comes first). Returns ``paid.Paid``: what the
    capture came to (confirmed; or in the wallet when the visit no longer waited for this
    order, a link sent meanwhile; refunded for a closed account), its ``visit`` as left.
    Raises PaymentError with a fixed message. The return is CSRF-exempt and may be
    anonymous, so nothing is written unless it is signed and matches: a refused return is
    only logged."""
    order_id = _param(params, "razorpay_order_id")
    payment_id = _param(params, "razorpay_payment_id")
    signature = _param(params, "razorpay_signature")
    if not (order_id and payment_id and signature):
        # Never the posted error[description]: anyone can post that text.
        raise PaymentError(MSG_NOT_PAID)
    with unit_of_work():
        payment = records.find_payment(order_id=order_id)
        payin = get_payin()
        if (
            payment is None
            or (visit_id is not None and payment.master_id != visit_id)
            or not payin.verify_payment_signature(order_id, payment_id, signature)
        ):
            log.warning(
                "refused checkout return for visit %s (order %r, payment %r)",
                visit_id,
                order_id[:64],
                payment_id[:64],
            )
            raise PaymentError(MSG_BAD_SIGNATURE)
        fetched = _confirmed_return(payin, order_id, payment_id)
        return paid.paid(_capture(payment, payment_id, fetched, "callback"), payment_id)


def hold_after_unpaid_return(actor, visit_id, now=None):
    """The patient came back from the gateway unpaid (declined, cancelled, unverified):
    what the page tells them of the hold (``HoldLeft``), or None when the visit no longer
    awaits a payment (paid meanwhile, cancelled). A hold whose time passed is let go now,
    as a payment would let it go (``paying``), not a minute later by the sweep: the page
    then offers Book again, which the message says to use. One unit of work."""
    now = now or utcnow()
    with unit_of_work():
        visit = visit_for(actor, visit_id)
        if lifecycle.is_hold_stale(visit, now):
            lifecycle.load_items(visit)
            lifecycle.expire(visit, actor=actor)
        if visit.status == VisitStatus.EXPIRED:
            return HoldLeft(lapsed=True)
        if visit.is_open and visit.hold_expires_at is not None:
            return HoldLeft(until=visit.hold_expires_at)
        return None


def _capture(payment, payment_id, fetched, source):
    """The capture of a checked return (nested in its unit of work: on SQLite the
    SAVEPOINT's BEGIN is what puts the capture's reads and writes in one transaction), in
    the amount and method the gateway's record (``fetched``) says."""
    return payment_events.capture(
        payment,
        razorpay_payment_id=payment_id,
        amount=int(fetched["amount"]),
        method=fetched.get("method"),
        source=source,
    )


def _param(params, name):
    value = params.get(name)
    return value.strip()[:128] if isinstance(value, str) else ""


def _confirmed_return(payin, order_id, payment_id):
    """The signature proves the browser came from the gateway; the money is what the
    gateway's record says (amount, order, captured). Unreachable: the webhook confirms."""
    try:
        return confirmed_payment(payin, {"id": payment_id, "order_id": order_id})
    except NotCapturedYet:
        raise PaymentError(MSG_CONFIRMING) from None  # the capture's webhook confirms it
    except Unconfirmed as exc:
        log.error("checkout return not confirmed by the gateway: %s", exc)
        raise PaymentError(MSG_BAD_SIGNATURE) from None
    except GatewayError:
        raise PaymentError(MSG_CONFIRMING) from None


def complete_link_callback(params):
    """Razorpay's redirect after a payment link was paid (``callback_url``, GET): the
    signature over ``link_id|reference_id|status|payment_id`` verified with the SDK (in
    constant time) for a link of ours, the payment and the link confirmed with the gateway's
    record, then captured as its webhook would capture it (whichever comes first; a replay
    changes nothing). Returns ``paid.Paid`` (what the capture came to: confirmed, still
    being confirmed, in the wallet, refunded); raises PaymentError(MSG_BAD_SIGNATURE) with
    nothing written for anything unsigned, unknown or not matching."""
    link_id = _param(params, "razorpay_payment_link_id")
    payment_id = _param(params, "razorpay_payment_id")
    reference_id = _param(params, "razorpay_payment_link_reference_id")
    status = _param(params, "razorpay_payment_link_status")
    signature = _param(params, "razorpay_signature")
    with unit_of_work():
        payment = records.find_payment(link_id=link_id) if link_id else None
        payin = get_payin()
        if (
            payment is None
            or payment.kind != LINK
            or not (payment_id and signature)
            or status != "paid"  # Razorpay redirects only after a payment
            or not payin.verify_payment_link_signature(
                link_id, reference_id, status, payment_id, signature
            )
        ):
            log.warning(
                "refused payment link return (link %r, payment %r)", link_id[:64], payment_id[:64]
            )
            raise PaymentError(MSG_BAD_SIGNATURE)
        try:
            fetched = confirmed_payment(payin, {"id": payment_id})
            confirmed_link(payin, {"id": link_id}, fetched)
        except NotCapturedYet:
            # its webhook confirms it; a capture recorded already says what it came to
            return paid.paid(payment.visit, payment_id)
        except Unconfirmed as exc:
            log.error("payment link return not confirmed by the gateway: %s", exc)
            raise PaymentError(MSG_BAD_SIGNATURE) from None
        except GatewayError:
            return paid.paid(payment.visit, payment_id)
        return paid.paid(_capture(payment, payment_id, fetched, "link_callback"), payment_id)


def record_desk_payment(admin, visit_id, receipt_no, *, confirmed_amount):
    """Paid at the clinic's desk (cash/card machine): confirmed at once into ``cash_desk``.
    A pending checkout is abandoned first (its wallet part given back), so what is
    recorded is the whole amount due (``prices.desk_quote``), a coupon that can no longer
    be used detached (``coupons.detach_lapsed``, audited), as at the patient's checkout.
    An open payment link whose coupon lapsed since it was sent keeps its price: the desk
    records the link's amount, the link ends and its coupon use is kept (decision,
    docs/booking.md). ``confirmed_amount`` (required): the paise the admin's button stated
    (``prices.desk_quote(visit).amount_due``); another amount now is refused with the new
    one, and so is none (``None`` or not a whole number of paise): nothing recorded."""
    require_admin(admin)
    receipt_no = " ".join((receipt_no or "").split())
    if not receipt_no:
        raise BookingError(MSG_RECEIPT_NO, field="receipt_no")
    # Required, never defaulted: a caller without the amount shown would otherwise skip
    # the check and record whatever is due now. Refused before anything is read.
    if isinstance(confirmed_amount, bool) or not isinstance(confirmed_amount, int):
        raise BookingError(MSG_DESK_AMOUNT_UNSHOWN)
    with paying(admin, visit_id) as (visit, session):
        kept = prices.link_kept(visit)
        if kept is not None:
            lifecycle.abandon_checkout(visit, "paid at the desk", admin, keep_price=True)
            q = kept
        else:
            lifecycle.abandon_checkout(visit, "paid at the desk", admin)
            q, _ = prices.fix_price(visit, 0, detach_lapsed_by=admin)
        if q.amount_due != confirmed_amount:
            raise BookingError(
                Text(
                    MSG_DESK_AMOUNT_CHANGED,
                    now=format_inr(q.amount_due),
                    was=format_inr(confirmed_amount),
                )
            )
        payment = None
        if q.amount_due:
            payment = Payment(
                kind=DESK,
                amount=q.amount_due,
                status=PaymentStatus.SUCCESSFUL,
                receipt_no=receipt_no[:64],
                method="desk",
                paid_at=utcnow(),
                created_by_id=admin.id,
            )
            visit.payments.append(payment)
            session.flush()
            records.add_attempt(
                payment, "desk.paid", PaymentStatus.SUCCESSFUL, detail={"receipt_no": receipt_no}
            )
        lifecycle.confirm(
            visit,
            gateway_amount=q.amount_due,
            money_account=chart.CASH_DESK,
            actor=admin,
            source="desk",
        )
        record(
            admin,
            "payment.desk",
            "visit",
            visit.id,
            after={"amount": q.amount_due, "receipt_no": receipt_no},
        )
    return payment
