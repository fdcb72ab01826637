"""Integer-paise arithmetic: rounding, pro-rata allocation, the Indian financial year,
and rupee formatting.

Money is ``int`` paise everywhere; rates are ``int`` basis points (1 bp = 0.01%,
10_000 bp = 100%). Nothing here touches ``float``.
"""

from __future__ import annotations

import datetime as _dt

from .timezone import CLINIC_TZ

BPS_DENOMINATOR = 10_000
INDIA_TZ = CLINIC_TZ  # the financial year is Indian by law

__all__ = [
    "BPS_DENOMINATOR",
    "INDIA_TZ",
    "apply_bps",
    "bps_to_text",
    "div_round_half_up",
    "allocate_pro_rata",
    "financial_year",
    "financial_year_start",
    "financial_year_end",
    "financial_year_bounds",
    "format_inr",
    "paise_to_text",
    "percent_text",
    "rupees",
]


def _check_int(name: str, value) -> None:
    # bool is an int subclass; refuse it (and floats, Decimals …) in money paths.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"{name} must be an int (paise or basis points), got {type(value).__name__}"
        )


def rupees(amount: int) -> int:
    """Whole rupees to paise: ``rupees(500) == 50_000``. For writing defaults legibly."""
    _check_int("amount", amount)
    return amount * 100


def div_round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves away from zero.

    For a negative quotient the magnitude is rounded half-up and the sign put back, so
    ``-2.5 -> -3`` (symmetric: ``f(-x) == -f(x)``), which keeps a reversal the exact
    mirror of the original posting.
    """
    _check_int("numerator", numerator)
    _check_int("denominator", denominator)
    if denominator == 0:
        raise ZeroDivisionError("denominator is zero")
    negative = (numerator < 0) != (denominator < 0)
    q, r = divmod(abs(numerator), abs(denominator))
    if 2 * r >= abs(denominator):
        q += 1
    return -q if negative else q


def apply_bps(amount_paise: int, bps: int) -> int:
    """``amount × bps / 10_000`` rounded half-up to the paisa (halves away from zero
    for negative amounts, see :func:`div_round_half_up`).

    >>> apply_bps(10_050, 500)   # 5% of ₹100.50 = 502.5 paise
    503
    >>> apply_bps(-10_050, 500)
    -503
    """
    _check_int("amount_paise", amount_paise)
    _check_int("bps", bps)
    return div_round_half_up(amount_paise * bps, BPS_DENOMINATOR)


def allocate_pro_rata(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` paise over ``weights`` (non-negative ints) in proportion, by the
    largest-remainder method, so the shares sum to ``total`` exactly.

    Every share is the floor of its exact share, and the paise left over go one each to
    the largest fractional remainders; ties go to the lower index. A negative ``total``
    is allocated as the mirror image of its magnitude. Zero-weight items get 0.
    If ``0 <= total <= sum(weights)`` every share is at most its weight.

    Raises ``ValueError`` for a negative weight, or a non-zero total over weights that
    are all zero (there is nothing to be proportional to).
    """
    _check_int("total", total)
    for w in weights:
        _check_int("weight", w)
        if w < 0:
            raise ValueError("weights must be non-negative")
    weight_sum = sum(weights)
    if total == 0:
        return [0] * len(weights)
    if weight_sum == 0:
        raise ValueError("cannot allocate a non-zero total over zero weights")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = []
    remainders = []
    for index, w in enumerate(weights):
        q, r = divmod(magnitude * w, weight_sum)
        shares.append(q)
        remainders.append((-r, index))  # sort: largest remainder first, then lowest index
    leftover = magnitude - sum(shares)
    for _, index in sorted(remainders)[:leftover]:
        shares[index] += 1
    return [sign * s for s in shares]


# --- Indian financial year (1 April – 31 March) ---------------------------------------


def _as_indian_date(value: _dt.date | _dt.datetime) -> _dt.date:
    """A date as is; an aware datetime converted to India time first (a payout at
    00:30 IST on 1 April belongs to the new year even though it is 31 March in UTC).
    A naive datetime is taken as already local."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(INDIA_TZ)
        return value.date()
    if isinstance(value, _dt.date):
        return value
    raise TypeError("expected a date or datetime")


def _fy_start_year(value) -> int:
    d = _as_indian_date(value)
    return d.year if d.month >= 4 else d.year - 1


def financial_year(value: _dt.date | _dt.datetime) -> str:
    """The Indian financial year label: ``financial_year(date(2026, 4, 1)) == "2026-27"``,
    ``financial_year(date(2026, 3, 31)) == "2025-26"``."""
    start = _fy_start_year(value)
    return f"{start}-{(start + 1) % 100:02d}"


def financial_year_start(value: _dt.date | _dt.datetime) -> _dt.date:
    """1 April of the financial year containing ``value``."""
    return _dt.date(_fy_start_year(value), 4, 1)


def financial_year_end(value: _dt.date | _dt.datetime) -> _dt.date:
    """31 March (inclusive) of the financial year containing ``value``."""
    return _dt.date(_fy_start_year(value) + 1, 3, 31)


def financial_year_bounds(label: str) -> tuple[_dt.date, _dt.date]:
    """``"2026-27" -> (date(2026, 4, 1), date(2027, 3, 31))``; refuses a malformed label."""
    try:
        head, tail = label.split("-")
        start = int(head)
        if len(head) != 4 or len(tail) != 2 or int(tail) != (start + 1) % 100:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"not a financial year label: {label!r} (expected e.g. '2026-27')"
        ) from None
    return _dt.date(start, 4, 1), _dt.date(start + 1, 3, 31)


# --- formatting -------------------------------------------------------------------------


def _indian_grouping(n: int) -> str:
    """``12345678`` → ``"1,23,45,678"``: the last three digits, then pairs."""
    digits = str(n)
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs = []
    while len(head) > 2:
        pairs.append(head[-2:])
        head = head[:-2]
    return ",".join([head, *reversed(pairs), tail] if head else [*reversed(pairs), tail])


def percent_text(bps: int) -> str:
    """Basis points as every page and message states a rate, without the "%":
    ``1250`` → ``"12.5"``, ``1000`` → ``"10"``, ``5`` → ``"0.05"``. Integers: ``"%g"`` of a
    float keeps six digits. An ASCII minus, as a percentage field reads it back."""
    _check_int("bps", bps)
    whole, rest = divmod(abs(bps), 100)
    text = f"{whole}.{rest:02d}".rstrip("0") if rest else str(whole)
    return f"-{text}" if bps < 0 else text


def bps_to_text(bps) -> str:
    """A rate as its field shows it again: :func:`percent_text`, "" when not set."""
    return "" if bps is None else percent_text(int(bps))


def paise_to_text(paise) -> str:
    """25050 → "250.50", 25000 → "250" (the value put back in an input), "" when not set."""
    if paise is None:
        return ""
    rupees, rest = divmod(int(paise), 100)
    return f"{rupees}.{rest:02d}" if rest else str(rupees)


MINUS = "\u2212"  # "−": how every negative amount is written


def format_inr(paise: int, *, always_show_paise: bool = False) -> str:
    """Rupees with Indian digit grouping: ``format_inr(12_345_678) == "₹1,23,456.78"``.

    Whole-rupee amounts drop the ``.00`` (``format_inr(50_000) == "₹500"``) so the
    messages in POLICY.md read as written ("Required: ₹500"); pass
    ``always_show_paise=True`` for aligned columns (``"₹500.00"``).

    The same text as Babel's ``format_currency(…, "INR", locale="en_IN")`` (a test
    compares them), done with integers: Babel takes about 0.3 ms a call, most of a
    50-row money table's rendering time. But for the sign: a negative amount reads
    ``"−₹250"`` with the minus sign (U+2212) the pages write before every amount taken
    off, not Babel's ASCII hyphen.
    """
    _check_int("paise", paise)
    rupees, rest = divmod(abs(paise), 100)
    text = f"{MINUS if paise < 0 else ''}₹{_indian_grouping(rupees)}.{rest:02d}"
    if not always_show_paise and rest == 0:
        text = text[:-3]
    return text
