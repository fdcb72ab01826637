"""A visit's price: per-item breakup (stored on the item when it is added), the coupon
spread pro rata by largest remainder, and the wallet split pro rata. Pure arithmetic over
the domain rules; nothing here writes."""

from dataclasses import dataclass, field

from portal.booking.models import FLAT, PERCENT
from portal.domain import pricing as rules


@dataclass(frozen=True)
class QuoteLine:
    item_id: int | None
    fee: int
    platform_fee: int
    gst: int
    total: int
    discount_share: int
    paid_amount: int
    wallet_paid: int
    gateway_paid: int


@dataclass(frozen=True)
class Quote:
    lines: list = field(default_factory=list)
    subtotal: int = 0
    discount: int = 0
    wallet_used: int = 0
    amount_due: int = 0  # through the gateway, after discount and wallet
    # The coupon took less, or the wallet paid less, than asked so that ₹1 (Razorpay's
    # smallest payment) is paid online: the visit's page says why (``online_minimum_notice``).
    online_minimum: bool = False
    # Why the visit's coupon is not in this price (``coupons.lapsed``: it can no longer be
    # used; the payment detaches it), or None: the patient's page says so.
    coupon_lapsed: str | None = None
    # The open payment link whose amount this is (the coupon lapsed since it was sent, and
    # the link keeps the price it offered): the pay button opens it (``prices.pay_quote``).
    kept_by_link: object = None

    @property
    def online_minimum_notice(self):
        """Why ₹1 is paid online (a ``Text`` for the page's ``t`` filter), or None."""
        return rules.online_minimum_notice() if self.online_minimum else None

    @property
    def payable(self):
        """What the visit costs after the discount (wallet + gateway)."""
        return self.subtotal - self.discount

    @property
    def fee(self):
        return sum(line.fee for line in self.lines)

    @property
    def platform_fee(self):
        return sum(line.platform_fee for line in self.lines)

    @property
    def gst(self):
        return sum(line.gst for line in self.lines)


def domain_coupon(coupon):
    if coupon is None:
        return None
    kind = {PERCENT: "percent", FLAT: "flat"}[coupon.kind]
    return rules.Coupon(kind, int(coupon.value))


def build_quote(items, coupon=None, wallet_available=0):
    """``items``: rows with fee/platform_fee/gst/total (the visit's priced items).
    ``wallet_available``: what the patient asks to use, already capped at the balance.
    What is left to pay online is 0 or at least ₹1 (``rules.MIN_ONLINE_PAYMENT``): the
    wallet pays less, or a coupon takes less, to leave that (``rules.wallet_part``,
    ``rules.online_minimum_coupon``)."""
    totals = [i.total for i in items]
    asked = max(int(wallet_available), 0)
    asked_coupon = domain_coupon(coupon)
    usable = rules.online_minimum_coupon(totals, asked_coupon, asked)
    shares = rules.apply_coupon(totals, usable)
    due = sum(shares.paid_amounts)
    wallet = rules.wallet_part(due, asked)
    split = rules.split_wallet(due, wallet, shares.paid_amounts)
    lines = [
        QuoteLine(
            getattr(item, "id", None),
            item.fee,
            item.platform_fee,
            item.gst,
            item.total,
            share,
            paid,
            w,
            g,
        )
        for item, share, paid, (w, g) in zip(
            items, shares.discounts, shares.paid_amounts, split.items
        )
    ]
    return Quote(
        lines=lines,
        subtotal=sum(totals),
        discount=shares.discount_total,
        wallet_used=split.wallet_total,
        amount_due=split.gateway_total,
        online_minimum=usable is not asked_coupon or wallet < min(asked, due),
    )
