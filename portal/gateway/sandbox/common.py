"""What the sandbox's parts share: Razorpay's error shape, fees, signatures, limits."""

import hashlib
import hmac
import json
import re
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")

DEFAULT_DELAYS = {
    "refund": 3.0,  # pending -> processed / failed
    "refund_optimum": 1.0,  # instant refunds settle sooner
    "payout_queue": 1.0,  # queued -> processing
    "payout_process": 3.0,  # processing -> processed / failed / reversed
    "validation": 2.0,  # created -> completed / failed
    "settlement": 0.0,  # seconds after an IST day ends before it settles by itself
    # A payment's creation (the customer gave the details) to its capture (the bank
    # authorised it: an OTP, a UPI collect approved on the phone, a netbanking login):
    # its ``created_at`` is this much before the checkout's Pay, as at Razorpay, where
    # reconciliation meets the gap (docs/reconciliation.md, "Which times are compared").
    "payment_approval": 90.0,
}
# Outcomes chosen when nothing more specific is asked for (see Faults and notes).
DEFAULT_OUTCOMES = {"refund": "processed", "payout": "processed", "validation": "active"}

FEE_BPS = 200  # 2% gateway fee on payments
GST_BPS = 1800  # 18% GST on that fee
PAYOUT_FEE = 500  # ₹5 per payout, plus GST
IMPS_LIMIT = 5_00_000_00  # ₹5 lakh
IFSC = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}$")
VPA = re.compile(r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}$")
BANKS = {
    "HDFC": "HDFC Bank",
    "ICIC": "ICICI Bank",
    "SBIN": "State Bank of India",
    "UTIB": "Axis Bank",
    "KKBK": "Kotak Mahindra Bank",
}


class ApiError(Exception):
    """An error answered in Razorpay's body shape."""

    def __init__(
        self,
        description,
        *,
        status=400,
        code="BAD_REQUEST_ERROR",
        field=None,
        reason="input_validation_failed",
        source="business",
        step="NA",
        metadata=None,
    ):
        super().__init__(description)
        self.description = description
        self.status = status
        self.code = code
        self.field = field
        self.reason = reason
        self.source = source
        self.step = step
        self.metadata = metadata or {}

    def body(self):
        error = {
            "code": self.code,
            "description": self.description,
            "source": self.source,
            "step": self.step,
            "reason": self.reason,
            "metadata": self.metadata,
        }
        if self.field:
            error["field"] = self.field
        return {"error": error}


def not_found():
    return ApiError("The id provided does not exist", reason="NA", source="NA")


def round_half_up(numerator, denominator):
    return (2 * numerator + denominator) // (2 * denominator)


def gateway_fee(amount):
    """(fee, tax): Razorpay's ``fee`` includes the GST on it, ``tax`` is that GST."""
    base = round_half_up(amount * FEE_BPS, 10_000)
    tax = round_half_up(base * GST_BPS, 10_000)
    return base + tax, tax


def sign(message, secret):
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def fingerprint(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
