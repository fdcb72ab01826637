"""Does a settlement's header add up to its recon rows? (POLICY: settlement fees, tax on
fees and net matched to the payments.)

Razorpay (and the sandbox) define a settlement as what its recon rows credit less what
they debit::

    amount = Σ credit − Σ debit         fees = Σ row fees         tax = Σ row taxes

a payment's credit being its amount less its fee, a refund's debit its amount, a
transfer's debit its amount and fee, an adjustment (one credited back, a chargeback
taken) either. Gross (``amount + fees``, what left the gateway's hold) is then the rows'
credited amounts less their debited ones, whatever the fees: when gross matches, every
row is there ("complete"); when it does not, rows are missing (Razorpay's report is late)
and the next ingest reads the day again. A complete settlement whose fees or tax still
differ is flagged. The rows other than payments and refunds (``is_adjustment``) are what
clearing never held: their signed total (``adjusted``) is posted on its own. Plain
functions over plain values, no database."""

from __future__ import annotations

from dataclasses import dataclass

from portal.domain.rates import format_inr

PAYMENT, REFUND = "payment", "refund"


@dataclass(frozen=True, slots=True)
class RowTotals:
    count: int = 0
    gross: int = 0  # credited rows' amounts less debited rows'
    fees: int = 0  # GST included, as Razorpay's header
    tax: int = 0


def signed_amount(kind, amount, credit=None, debit=None) -> int:
    """A recon row's amount as its settlement's gross counts it: taken off for a debit,
    added for a credit, as the row's own ``credit`` and ``debit`` say (a row debits when
    its debit exceeds its credit). A row without them (stored before they were kept) is
    signed by its type, a refund being the debit then known."""
    if credit is None and debit is None:
        return -amount if kind == REFUND else amount
    return -amount if (debit or 0) > (credit or 0) else amount


def totals_of(rows) -> RowTotals:
    """Totals of recon rows given as ``(signed amount, fee, tax)`` (``signed_amount``)."""
    count = gross = fees = tax = 0
    for amount, fee, row_tax in rows:
        count += 1
        gross += amount
        fees += fee
        tax += row_tax
    return RowTotals(count, gross, fees, tax)


def is_adjustment(kind) -> bool:
    """A row other than a payment or a refund: a transfer, an adjustment (a chargeback or
    dispute debit, an amount credited back), anything else Razorpay adds. Gateway clearing
    held the payments and refunds (captures and refunds post to it); not these, yet the
    settlement's gross counts them."""
    return kind not in (PAYMENT, REFUND)


def adjusted(rows) -> int:
    """The signed total (``signed_amount``) of the adjustment rows among rows given as
    ``(kind, signed amount)``: negative when they took more than they credited back."""
    return sum(amount for kind, amount in rows if is_adjustment(kind))


def is_complete(amount, fees, totals: RowTotals) -> bool:
    """Every row is there: the header's gross is the rows' credits less their debits."""
    return amount + fees == totals.gross


def differences(amount, fees, tax, totals: RowTotals) -> dict[str, dict[str, int]]:
    """``{what: {"header": …, "rows": …}}`` for each of gross, fees, tax and amount that
    the rows do not add up to; empty when the settlement adds up."""
    pairs = {
        "gross": (amount + fees, totals.gross),
        "fees": (fees, totals.fees),
        "tax": (tax, totals.tax),
        "amount": (amount, totals.gross - totals.fees),
    }
    return {k: {"header": h, "rows": r} for k, (h, r) in pairs.items() if h != r}


_WORDS = {"fees": "fee", "tax": "GST on fees"}


def describe(diffs) -> str | None:
    """The note an admin reads, e.g. "rows do not add up: fee differs by ₹0.01"; None when
    nothing differs."""
    if not diffs:
        return None
    if "gross" in diffs:
        d = diffs["gross"]
        short = d["header"] - d["rows"]
        what = (
            f"{format_inr(short, always_show_paise=True)} of its payments not in the recon rows"
            if short > 0
            else f"recon rows {format_inr(-short, always_show_paise=True)} above its gross"
        )
        return f"rows do not add up: {what}"
    # Gross matching, the amount to the bank differs exactly as the fees do: not repeated.
    parts = [
        f"{_WORDS[k]} differs by {format_inr(abs(d['header'] - d['rows']), always_show_paise=True)}"
        for k, d in diffs.items()
        if k in ("fees", "tax")
    ]
    return "rows do not add up: " + ", ".join(parts)
