"""Price breakup per individual booking, coupons over a visit, wallet application.

Every step is rounded half-up to the paisa and totals are sums of rounded parts, so
every breakdown adds up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from .policy import DEFAULT_POLICY, GST_MODE_FEE_AND_PLATFORM, Policy
from .rates import allocate_pro_rata, apply_bps, format_inr
from .text import N_, Text

__all__ = [
    "PriceBreakup",
    "price_item",
    "Coupon",
    "CouponResult",
    "apply_coupon",
    "WalletSplit",
    "split_wallet",
    "MIN_ONLINE_PAYMENT",
    "team_shares",
    "wallet_part",
    "online_minimum_coupon",
    "online_minimum_at_work",
    "MSG_ONLINE_MINIMUM",
    "online_minimum_notice",
    "ProviderEarning",
    "provider_earning",
]


def _money(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be int paise")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class PriceBreakup:
    """F, P, G and the total, in paise. ``total == fee + platform_fee + gst`` always.

    ``taxable_value`` is the amount GST was charged on (P, P + F, or F + P by mode),
    kept for GST reports; ``fee_taxable`` says whether F was part of it (receipts show
    exempt care and the taxed platform fee as separate lines)."""

    fee: int
    platform_fee: int
    gst: int
    total: int
    taxable_value: int = 0
    fee_taxable: bool = False


def price_item(fee: int, taxable: bool = False, policy: Policy = DEFAULT_POLICY) -> PriceBreakup:
    """P = platform_fee_bps × F; GST = gst_bps × taxable part, where the taxable part is
    P (+ F when the service is flagged ``taxable``) in the default ``platform_only`` mode,
    and F + P for every service in ``fee_and_platform`` mode. GST is rounded once on
    the taxable part."""
    _money("fee", fee)
    platform_fee = apply_bps(fee, policy.platform_fee_bps)
    fee_taxable = taxable or policy.gst_mode == GST_MODE_FEE_AND_PLATFORM
    taxable_value = platform_fee + (fee if fee_taxable else 0)
    gst = apply_bps(taxable_value, policy.gst_bps)
    return PriceBreakup(
        fee=fee,
        platform_fee=platform_fee,
        gst=gst,
        total=fee + platform_fee + gst,
        taxable_value=taxable_value,
        fee_taxable=fee_taxable,
    )


@dataclass(frozen=True)
class Coupon:
    """``kind`` is ``"percent"`` (``value`` in basis points) or ``"flat"`` (``value`` in paise)."""

    kind: str
    value: int

    def __post_init__(self) -> None:
        if self.kind not in ("percent", "flat"):
            raise ValueError("coupon kind must be 'percent' or 'flat'")
        _money("coupon value", self.value)
        if self.kind == "percent" and self.value > 10_000:
            raise ValueError("a percent coupon cannot exceed 10000 bps (100%)")


@dataclass(frozen=True)
class CouponResult:
    discount_total: int
    discounts: list[int]  # each item's share of the discount
    paid_amounts: list[int]  # each item's total minus its share


def apply_coupon(items_totals: list[int], coupon: Coupon | None) -> CouponResult:
    """Discount on the visit total (percent rounded half-up, or flat), capped at the visit
    total, spread over the items pro rata to their totals by largest remainder. Shares
    sum exactly to the discount and no item's share exceeds its total."""
    for t in items_totals:
        _money("item total", t)
    visit_total = sum(items_totals)
    if coupon is None or visit_total == 0:
        discount = 0
    elif coupon.kind == "percent":
        discount = apply_bps(visit_total, coupon.value)
    else:
        discount = coupon.value
    discount = min(discount, visit_total)
    shares = allocate_pro_rata(discount, list(items_totals))
    return CouponResult(
        discount_total=discount,
        discounts=shares,
        paid_amounts=[t - s for t, s in zip(items_totals, shares)],
    )


# Razorpay's smallest order or payment link: ₹1. What goes online is 0 or at least this.
MIN_ONLINE_PAYMENT = 100


def wallet_part(amount_due_total: int, wallet_asked: int) -> int:
    """What the wallet pays of a visit's ``amount_due_total`` when the patient offers
    ``wallet_asked`` (already capped at the balance): all of it when it covers the due,
    else as much as leaves at least ``MIN_ONLINE_PAYMENT`` to pay online (50 paise left
    over cannot be paid through Razorpay; the wallet keeps 50 paise more instead)."""
    wallet = min(max(wallet_asked, 0), amount_due_total)
    if 0 < amount_due_total - wallet < MIN_ONLINE_PAYMENT:
        wallet = max(amount_due_total - MIN_ONLINE_PAYMENT, 0)
    return wallet


def online_minimum_coupon(
    items_totals: list[int], coupon: Coupon | None, wallet_asked: int
) -> Coupon | None:
    """The coupon as a visit can use it: a coupon that leaves less than
    ``MIN_ONLINE_PAYMENT`` to pay, which the wallet does not cover, takes that much less
    (a flat coupon of its discount less the shortfall: the same pro-rata spread), so
    ``MIN_ONLINE_PAYMENT`` is paid online. Otherwise the coupon itself."""
    result = apply_coupon(items_totals, coupon)
    due = sum(result.paid_amounts)
    if 0 < due < MIN_ONLINE_PAYMENT and wallet_asked < due:
        return Coupon("flat", max(result.discount_total - (MIN_ONLINE_PAYMENT - due), 0))
    return coupon


def online_minimum_at_work(
    items_totals: list[int], coupon: Coupon | None, discount: int, wallet: int, online: int
) -> bool:
    """Whether a price already fixed for a checkout (the ``discount``, ``wallet`` part and
    ``online`` part it stored) is the minimum's doing, for the page that shows it again
    while its order is pending: ``MIN_ONLINE_PAYMENT`` online, and a coupon that took less
    than it gives (``online_minimum_coupon``) or a wallet that paid all the rest
    (``wallet_part``). What was asked of the wallet is not stored: a wallet asked for
    exactly all but the minimum reads as cut, one of under the minimum cut to nothing
    (on a visit whose coupon leaves exactly that) as not."""
    if online != MIN_ONLINE_PAYMENT:
        return False
    return wallet > 0 or discount < apply_coupon(items_totals, coupon).discount_total


MSG_ONLINE_MINIMUM = N_(
    "An online payment is at least %(amount)s, so your coupon or wallet covers a little"
    " less of this visit."
)


def online_minimum_notice() -> Text:
    """Why a visit's page asks for the minimum online (``online_minimum_coupon``,
    ``wallet_part``): the one sentence every page showing that price says, naming the
    rule's amount as pages write money."""
    return Text(MSG_ONLINE_MINIMUM, amount=format_inr(MIN_ONLINE_PAYMENT))


@dataclass(frozen=True)
class WalletSplit:
    wallet_total: int  # taken from the wallet
    gateway_total: int  # the amount of the Razorpay order
    items: list[tuple[int, int]]  # per item: (paid from wallet, paid via gateway)


def split_wallet(
    amount_due_total: int, wallet_balance: int, item_paid_amounts: list[int]
) -> WalletSplit:
    """Apply up to ``wallet_balance`` to a visit whose items cost ``item_paid_amounts``
    (after coupon; they must sum to ``amount_due_total``). The wallet part is spread pro
    rata over the items (largest remainder), so each item knows its wallet-paid portion,
    which always returns to the wallet on refund. A negative balance counts as 0."""
    _money("amount_due_total", amount_due_total)
    for amount in item_paid_amounts:
        _money("item paid amount", amount)
    if sum(item_paid_amounts) != amount_due_total:
        raise ValueError("item paid amounts must sum to the amount due")
    if not isinstance(wallet_balance, int) or isinstance(wallet_balance, bool):
        raise TypeError("wallet_balance must be int paise")
    wallet_total = min(max(wallet_balance, 0), amount_due_total)
    wallet_shares = allocate_pro_rata(wallet_total, list(item_paid_amounts))
    return WalletSplit(
        wallet_total=wallet_total,
        gateway_total=amount_due_total - wallet_total,
        items=[(w, a - w) for w, a in zip(wallet_shares, item_paid_amounts)],
    )


def team_shares(amount: int, providers: list) -> list[tuple]:
    """``amount`` in equal shares over a team, ``[(provider, share)]`` in provider id
    order, the odd paisa to the lowest id first (docs/payouts.md "Team appointments"):
    a completion's earning and a move's fee split alike. ``providers``: objects with
    ``id``."""
    _money("amount", amount)
    team = sorted(providers, key=lambda p: p.id)
    if not team:
        return []
    return list(zip(team, allocate_pro_rata(amount, [1] * len(team))))


@dataclass(frozen=True)
class ProviderEarning:
    fee: int
    commission: int
    earning: int  # fee - commission


def provider_earning(
    fee: int, commission_bps: int | None = None, policy: Policy = DEFAULT_POLICY
) -> ProviderEarning:
    """Earning on completion = F − commission, commission = rate × F rounded half-up
    (the provider's own rate, or the policy default when ``None``)."""
    _money("fee", fee)
    rate = policy.commission_bps if commission_bps is None else commission_bps
    commission = apply_bps(fee, rate)
    return ProviderEarning(fee=fee, commission=commission, earning=fee - commission)
