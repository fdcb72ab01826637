"""Money and rate fields typed by people: "250", "250.50", "₹1,250.5" → integer paise,
"12.5" (%) → basis points. Parsed with Decimal, never float."""

from decimal import Decimal, InvalidOperation

from wtforms import StringField, ValidationError

from portal.domain.ids import is_digits
from portal.i18n import N_

RUPEE_MESSAGE = N_("Enter an amount in rupees, e.g. 250 or 250.50.")
# Far above any price, and within every money column (BIGINT paise, INTEGER basis points):
# a longer number is a typing slip or a probe, not an amount.
MAX_PAISE = 10**12  # ₹1,000 crore
MAX_BPS = 2**31 - 1


def _decimal(text, places, message):
    cleaned = (text or "").strip().replace("₹", "").replace(",", "").replace(" ", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(message) from None
    if not value.is_finite() or value.as_tuple().exponent < -places:
        raise ValueError(message)
    if len(value.as_tuple().digits) > 20:  # before any arithmetic on a 10,000-digit number
        raise ValueError(N_("That number is too large."))
    return value


def parse_rupees(text):
    """ "250.50" → 25050 paise; None when empty; ValueError for anything else
    (letters, three decimals, exponents such as "1e3")."""
    if text is not None and any(c in str(text).lower() for c in "e"):
        raise ValueError(RUPEE_MESSAGE)
    value = _decimal(text, 2, RUPEE_MESSAGE)
    if value is None:
        return None
    paise = int(value * 100)
    if abs(paise) > MAX_PAISE:
        raise ValueError(N_("That amount is too large."))
    return paise


def parse_percent_bps(text):
    """ "12.5" → 1250 basis points; None when empty."""
    message = "Enter a percentage such as 10 or 12.5."
    if text is not None and "e" in str(text).lower():
        raise ValueError(message)
    value = _decimal(str(text).rstrip("%") if text is not None else text, 2, message)
    if value is None:
        return None
    bps = int(value * 100)
    if abs(bps) > MAX_BPS:
        raise ValueError(N_("That number is too large."))
    return bps


def shown_paise(text):
    """The amount (paise) a page showed and its form posts back in a hidden field, which
    the person agreed to (a refund, a fee); None when absent or not a number."""
    return int(text) if is_digits(text) and len(text) <= 12 else None


def paise_to_text(paise):
    """25050 → "250.50", 25000 → "250" (the value put back in an input)."""
    if paise is None:
        return ""
    rupees, rest = divmod(int(paise), 100)
    return f"{rupees}.{rest:02d}" if rest else str(rupees)


def bps_to_text(bps):
    if bps is None:
        return ""
    whole, rest = divmod(int(bps), 100)
    return f"{whole}.{rest:02d}".rstrip("0").rstrip(".") if rest else str(whole)


class RupeesField(StringField):
    """A rupee amount; ``.paise`` holds the parsed int (or None when left empty)."""

    paise = None

    def __init__(self, label=None, validators=None, minimum=0, **kwargs):
        kwargs.setdefault("render_kw", {"inputmode": "decimal", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)
        self.minimum = minimum

    def pre_validate(self, form):
        try:
            self.paise = parse_rupees(self.data)
        except ValueError as exc:
            self.paise = None
            raise ValidationError(str(exc)) from None
        if self.paise is not None and self.minimum is not None and self.paise < self.minimum:
            raise ValidationError(
                N_("Enter an amount above ₹0.")
                if self.minimum == 1
                else N_("The amount cannot be negative.")
            )
