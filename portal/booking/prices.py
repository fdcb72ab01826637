"""A visit's price as it stands, and freezing it for a payment: the coupon spread, the
wallet split, the coupon use taken and the wallet part reserved. Runs in the caller's unit
of work (``portal.booking.pricing`` holds the arithmetic)."""

from dataclasses import replace

from portal.booking import coupons, postings, queries
from portal.booking.errors import BookingError
from portal.booking.pricing import Quote, QuoteLine, build_quote, domain_coupon
from portal.db import utcnow
from portal.domain import pricing as rules
from portal.domain.states import BookingStatus, PaymentStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.payments import records
from portal.payments.models import LINK, ORDER, WALLET, Payment


def wallet_balance(user_id):
    """The patient's spendable wallet balance in paise (a ledger sum)."""
    return balance(chart.patient_wallet(user_id))


def wallet_available(patient_id, reserved=0):
    """What the patient may use from the wallet: the balance (never below 0), plus what a
    visit's pending checkout holds reserved (its ``wallet_applied``) when that checkout is
    asked for again (the same order, its wallet part kept)."""
    return max(wallet_balance(patient_id), 0) + reserved


def wallet_available_for_visit(patient_id, visit_id):
    """``wallet_available`` with what the patient's visit awaiting payment holds reserved
    (read by id: for a page that has not loaded the visit)."""
    return wallet_available(patient_id, queries.reserved_wallet(patient_id, visit_id))


def _holds_payment(visit):
    return any(p.status == PaymentStatus.PENDING for p in visit.payments)


def _wallet_asked(visit, wallet_paise):
    """``wallet_paise`` capped at the patient's balance (read only when one is asked)."""
    if not wallet_paise:
        return 0
    if isinstance(wallet_paise, bool) or not isinstance(wallet_paise, int):
        raise TypeError("wallet_paise must be int paise")
    return min(max(wallet_paise, 0), max(wallet_balance(visit.patient_id), 0))


def quote(visit, wallet_paise=0):
    """The visit's price. While it is open: computed now (coupon spread pro rata, the wallet
    capped at the balance and at what is due). Once checked out or paid: the stored split;
    while its order is pending (the page offers paying again), with whether the ₹1
    minimum shaped it (``rules.online_minimum_at_work``)."""
    if visit.is_open and not _holds_payment(visit):
        items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
        return build_quote(items, visit.coupon, _wallet_asked(visit, wallet_paise))
    items = [i for i in visit.items if i.status != BookingStatus.EXPIRED] or list(visit.items)
    lines = [
        QuoteLine(
            i.id,
            i.fee,
            i.platform_fee,
            i.gst,
            i.total,
            i.discount_share,
            i.paid_amount,
            i.wallet_paid,
            i.gateway_paid,
        )
        for i in items
    ]
    subtotal = sum(i.total for i in items)
    discount = sum(i.discount_share for i in items)
    wallet = sum(i.wallet_paid for i in items)
    due = subtotal - discount - wallet
    return Quote(
        lines=lines,
        subtotal=subtotal,
        discount=discount,
        wallet_used=wallet,
        amount_due=due,
        online_minimum=visit.is_open
        and rules.online_minimum_at_work(
            [i.total for i in items], domain_coupon(visit.coupon), discount, wallet, due
        ),
    )


def _priced_now(visit, wallet_paise):
    items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    return build_quote(items, visit.coupon, wallet_paise)


def _without_lapsed_coupon(visit, wallet_paise):
    """The visit priced now as its payment will fix it: a coupon that can no longer be
    used (``coupons.lapsed``) left out, and said so (``Quote.coupon_lapsed``)."""
    reason = coupons.lapsed(visit)
    if reason is None:
        return _priced_now(visit, wallet_paise)
    items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    return replace(build_quote(items, None, wallet_paise), coupon_lapsed=reason)


def pay_quote(visit, wallet_paise=0):
    """What the patient's pay button does with ``wallet_paise`` asked (the amounts it
    states and carries; ``checkout`` refuses others): paying again for the pending order
    (its wallet part asked again, ``same_wallet_request``) keeps the order's split (and
    its coupon, whose use it holds); any other request replaces a pending checkout and
    prices the visit now, the wallet capped at the balance plus what that checkout holds
    reserved (given back first), and a coupon that can no longer be used left out
    (``Quote.coupon_lapsed``: the payment detaches it, ``fix_price``)."""
    pending = visit.pending_payment
    if not visit.is_open or (pending is None and _holds_payment(visit)):
        return quote(visit, wallet_paise)
    if pending is None:
        return _without_lapsed_coupon(visit, _wallet_asked(visit, wallet_paise))
    if pending.kind == ORDER and same_wallet_request(visit, wallet_paise):
        return quote(visit, wallet_paise)
    kept = link_kept(visit, wallet_paise)
    if kept is not None:
        return kept
    asked = min(
        max(int(wallet_paise or 0), 0), wallet_available(visit.patient_id, visit.wallet_applied)
    )
    return _without_lapsed_coupon(visit, asked)


def link_kept(visit, wallet_paise=0):
    """The open payment link's price, when its coupon has lapsed since it was sent
    (docs/booking.md: the link is an offer made, kept until it ends): the stored split,
    with why the coupon would not be taken now and the link (``Quote.kept_by_link``);
    the patient's pay button states that amount and opens the link. None when no link is
    pending, its coupon still holds, or the wallet is asked for (a link has no wallet
    part: another request, priced now)."""
    pending = visit.pending_payment
    if pending is None or pending.kind != LINK or not pending.link_url or wallet_paise:
        return None
    reason = coupons.lapsed(visit) if visit.discount else None
    if reason is None:
        return None
    return replace(quote(visit), coupon_lapsed=reason, kept_by_link=pending)


def desk_quote(visit):
    """What a desk payment records (``amount_due``), as the patient's page would state it:
    an open link whose coupon lapsed since it was sent keeps its price (``link_kept``, the
    desk takes it); else the visit priced now without a wallet part, a pending checkout
    being abandoned first (its wallet part given back), and a coupon that can no longer
    be used left out (``Quote.coupon_lapsed``: the payment detaches it). The admin's
    button states it and carries it; ``record_desk_payment`` refuses another."""
    return link_kept(visit) or _without_lapsed_coupon(visit, 0)


def refresh_discount(visit):
    visit.discount = quote(visit).discount if visit.coupon is not None else 0


def _store_split(visit, q):
    items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    for item, line in zip(items, q.lines):
        item.discount_share, item.paid_amount = line.discount_share, line.paid_amount
        item.wallet_paid, item.gateway_paid = line.wallet_paid, line.gateway_paid
    visit.discount, visit.wallet_applied = q.discount, q.wallet_used


def fix_price(visit, wallet_paise, *, detach_lapsed_by=None):
    """Freeze the price for a payment: coupon use taken, split stored, wallet reserved.
    ``detach_lapsed_by``: the patient's checkout (its actor), whose page stated the price
    without a coupon that can no longer be used (``pay_quote``): such a coupon leaves the
    visit here (``coupons.detach_lapsed``) instead of refusing the payment. Returns
    (quote, wallet payment or None)."""
    if detach_lapsed_by is not None:
        coupons.detach_lapsed(visit, detach_lapsed_by)
    q = quote(visit, wallet_paise)
    if visit.coupon is not None and not coupons.has_use(visit):
        now = utcnow()  # one instant for the check and the use's own (take_use)
        message = coupons.check(visit.coupon, visit.patient_id, now, visit_id=visit.id)
        if message:
            raise BookingError(message, field="coupon")
        coupons.take_use(visit, q.discount, now)
    _store_split(visit, q)
    wallet_payment = None
    if q.wallet_used:
        wallet_payment = Payment(kind=WALLET, amount=q.wallet_used, status=PaymentStatus.PENDING)
        visit.payments.append(wallet_payment)
        db.session.flush()
        records.add_attempt(wallet_payment, "wallet.reserved", PaymentStatus.PENDING)
        postings.reserve_wallet(visit, wallet_payment)
    return q, wallet_payment


def same_wallet_request(visit, wallet_paise):
    """Would this request price the visit as the pending checkout did (the same wallet part
    and discount)? Priced afresh: a coupon cut for the ₹1 minimum (``build_quote``) is
    whole again when the wallet asked for now covers the rest."""
    available = wallet_available(visit.patient_id, visit.wallet_applied)
    fresh = _priced_now(visit, min(max(int(wallet_paise or 0), 0), available))
    return (fresh.wallet_used, fresh.discount) == (visit.wallet_applied, visit.discount)
