"""Money and rate fields typed by people: "250", "250.50", "₹1,250.5" → integer paise,
"12.5" (%) → basis points. Parsed with integers or Decimal, never float.

An amount is read only in a form nobody can mean two ways (docs/security.md, "Money
typed"): plain digits, or grouped with commas the Indian way (1,00,000) or the Western way
(100,000); at most two decimals; an optional ₹ and sign before. Devanagari digits (१२३)
are read as 123, as Indian operators may type them; other scripts' digits, underscores
("1_000"), spaces inside ("15 00") and commas out of place ("1,0,0") are refused with a
message, not guessed."""

import re
import unicodedata
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


MSG_RUPEE_GROUPING = N_(
    "Type the amount without spaces or underscores, with commas only between groups of "
    "digits, e.g. 1,00,000.50 or 100,000.50."
)
MSG_RUPEE_DIGITS = N_("Type the amount in the digits 0–9 or ०–९, one kind throughout.")
_ASCII_DIGITS, _DEVANAGARI = set("0123456789"), set("०१२३४५६७८९")
_TO_ASCII = str.maketrans("०१२३४५६७८९", "0123456789")
_RUPEES = r"\d+|\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})+,\d{3}"  # plain, Western, Indian
_GROUPED = re.compile(_RUPEES, re.ASCII)
_AMOUNT = re.compile(
    rf"(?P<sign>[+-]?)₹?\s*(?P<rupees>{_RUPEES})(?:\.(?P<paise>\d{{1,2}}))?", re.ASCII
)


def _refusal(text):
    """Why ``text`` is not an amount: the message that says what to change."""
    digits = {c for c in text if unicodedata.category(c) == "Nd"}
    if digits - _ASCII_DIGITS - _DEVANAGARI or (digits & _ASCII_DIGITS and digits & _DEVANAGARI):
        return MSG_RUPEE_DIGITS
    rupees = text.translate(_TO_ASCII).split(".")[0].lstrip("+-₹ ")
    inner_space = re.search(r"\d.*\s", text)  # text is stripped: a space after a digit is inside
    if "_" in text or inner_space or ("," in rupees and not _GROUPED.fullmatch(rupees)):
        return MSG_RUPEE_GROUPING
    return RUPEE_MESSAGE


def parse_rupees(text):
    """ "250.50", "₹1,00,000.5", "100,000", "१२३" → paise; None when empty; ValueError,
    its message for the person, for anything else (letters, three decimals, exponents
    such as "1e3", "1_000", "15 00", "1,0,0", "١٢٣")."""
    text = (text or "").strip()
    if not text:
        return None
    if sum(c.isdigit() for c in text) > 20:  # before any arithmetic on a 10,000-digit number
        raise ValueError(N_("That number is too large."))
    found = _AMOUNT.fullmatch(text.translate(_TO_ASCII))
    mixed = set(text) & _ASCII_DIGITS and set(text) & _DEVANAGARI
    if found is None or mixed:
        raise ValueError(_refusal(text))
    rupees = int(found["rupees"].replace(",", ""))
    paise = rupees * 100 + int((found["paise"] or "0").ljust(2, "0"))
    if paise > MAX_PAISE:
        raise ValueError(N_("That amount is too large."))
    return -paise if found["sign"] == "-" else paise


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
