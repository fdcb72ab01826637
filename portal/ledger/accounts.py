"""The chart of accounts: fixed codes, per-owner code builders, and each code's kind.

Pure (no database): the service uses :func:`kind_for` to create a missing account.
"""

from __future__ import annotations

from portal.domain.ids import is_digits

ASSET, LIABILITY, REVENUE, EXPENSE, EQUITY = "asset", "liability", "revenue", "expense", "equity"
KINDS = (ASSET, LIABILITY, REVENUE, EXPENSE, EQUITY)
DEBIT_NORMAL = frozenset({ASSET, EXPENSE})  # balance = debits − credits; others credits − debits

# --- fixed accounts -------------------------------------------------------------------
GATEWAY_CLEARING = "gateway_clearing"  # asset: captured by Razorpay, not yet settled
BANK = "bank"  # asset: settled funds (incl. the RazorpayX balance)
CASH_DESK = "cash_desk"  # asset: offline desk payments not yet banked
PATIENT_RECEIVABLE = "patient_receivable"  # asset: billed at the desk, not yet paid
GST_INPUT = "gst_input"  # asset: GST charged to us on gateway and payout fees (ITC)
UNEARNED_FEES = "unearned_fees"  # liability: care fees (F) held until completion/cancel
GST_PAYABLE = "gst_payable"  # liability: GST collected, owed to the government
TDS_PAYABLE = "tds_payable"  # liability: TDS deducted from payouts, owed to the government
REFUNDS_PAYABLE = "refunds_payable"  # liability: gateway refunds initiated, not yet processed
PAYOUTS_IN_TRANSIT = "payouts_in_transit"  # liability: payouts sent to RazorpayX, not yet final
PLATFORM_REVENUE = "platform_revenue"  # revenue: platform fee P (also on reschedule fees)
COMMISSION_REVENUE = "commission_revenue"  # revenue: commission on F and on reschedule penalties
CANCELLATION_REVENUE = "cancellation_revenue"  # revenue: paid amount retained on a cancellation
PENALTY_REVENUE = "penalty_revenue"  # revenue: provider cancellation penalties
DISCOUNTS = "discounts_given"  # expense: coupon shares (the platform bears coupons)
GATEWAY_FEES = "gateway_fees"  # expense: Razorpay fees at settlement
# expense: what settlements took besides payments, refunds and fees (transfers, chargebacks
# and other adjustment debits) less what they credited back
GATEWAY_ADJUSTMENTS = "gateway_adjustments"
PAYOUT_FEES = "payout_fees"  # expense: RazorpayX fees on payouts (GST apart, in gst_input)
WALLET_ADJUSTMENTS = "wallet_adjustments"  # expense: manual wallet credits (debits reduce it)
WALLET_RESERVED = "wallet_reserved"  # liability: wallet money set aside for a pending checkout
# liability: money the gateway's record and ours disagree on, accepted by an admin on the
# reconciliation screen (a stray payment owed back, an amount altered at the gateway; a
# debit balance is money clearing counted that the gateway does not have)
RECONCILIATION_SUSPENSE = "reconciliation_suspense"

FIXED = {
    GATEWAY_CLEARING: ASSET,
    BANK: ASSET,
    CASH_DESK: ASSET,
    PATIENT_RECEIVABLE: ASSET,
    GST_INPUT: ASSET,
    UNEARNED_FEES: LIABILITY,
    GST_PAYABLE: LIABILITY,
    TDS_PAYABLE: LIABILITY,
    REFUNDS_PAYABLE: LIABILITY,
    PAYOUTS_IN_TRANSIT: LIABILITY,
    WALLET_RESERVED: LIABILITY,
    RECONCILIATION_SUSPENSE: LIABILITY,
    PLATFORM_REVENUE: REVENUE,
    COMMISSION_REVENUE: REVENUE,
    CANCELLATION_REVENUE: REVENUE,
    PENALTY_REVENUE: REVENUE,
    DISCOUNTS: EXPENSE,
    GATEWAY_FEES: EXPENSE,
    GATEWAY_ADJUSTMENTS: EXPENSE,
    PAYOUT_FEES: EXPENSE,
    WALLET_ADJUSTMENTS: EXPENSE,
}

# --- per-owner accounts: "<prefix>:<owner id>" ----------------------------------------
PATIENT_WALLET = "patient_wallet"  # liability, owner "user" (the patient account holder)
PROVIDER_PAYABLE = "provider_payable"  # liability, owner "provider"

PREFIXES = {
    PATIENT_WALLET: (LIABILITY, "user"),
    PROVIDER_PAYABLE: (LIABILITY, "provider"),
}


def patient_wallet(user_id: int) -> str:
    return f"{PATIENT_WALLET}:{int(user_id)}"


def provider_payable(provider_id: int) -> str:
    return f"{PROVIDER_PAYABLE}:{int(provider_id)}"


def describe(code: str) -> tuple[str, str | None, str | None]:
    """``(kind, owner_type, owner_id)`` for a code; ``ValueError`` for an unknown one
    (accounts are never invented from a typo)."""
    if code in FIXED:
        return FIXED[code], None, None
    prefix, sep, owner_id = code.partition(":")
    if sep and prefix in PREFIXES and is_digits(owner_id) and not owner_id.startswith("0"):
        kind, owner_type = PREFIXES[prefix]
        return kind, owner_type, owner_id
    raise ValueError(f"unknown ledger account code: {code!r}")


def kind_for(code: str) -> str:
    return describe(code)[0]
