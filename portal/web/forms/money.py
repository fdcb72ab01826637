"""Money and rate fields typed by people: "250", "250.50", "₹1,250.5" → integer paise,
"12.5" or "12.5%" → basis points. Read with integers, never float.

An amount is read only in a form nobody can mean two ways (docs/security.md, "Money
typed"): plain digits, or grouped with commas the Indian way (1,00,000) or the Western way
(100,000); at most two decimals; an optional ₹ and sign before. Devanagari digits (१२३)
are read as 123, as Indian operators may type them; other scripts' digits, underscores
("1_000"), spaces inside ("15 00") and commas out of place ("1,0,0") are refused with a
message, not guessed. A percentage follows the same rules with an optional "%" after and
no commas at all ("12,5" is 12.5 to some, 125 to others). Both are read by ``numbers.read``,
the reading every typed number shares (the policy form's durations too)."""

import re

from wtforms import StringField, ValidationError

from portal.domain.ids import is_digits
from portal.i18n import N_
from portal.web.forms.numbers import MSG_TOO_LARGE, Rules, read

RUPEE_MESSAGE = N_("Enter an amount in rupees, e.g. 250 or 250.50.")
# Far above any price, and within every money column (BIGINT paise, INTEGER basis points):
# a longer number is a typing slip or a probe, not an amount.
MAX_PAISE = 10**12  # ₹1,000 crore
MAX_BPS = 2**31 - 1


MSG_RUPEE_GROUPING = N_(
    "Type the amount without spaces or underscores, with commas only between groups of "
    "digits, e.g. 1,00,000.50 or 100,000.50."
)
MSG_RUPEE_DIGITS = N_("Type the amount in the digits 0–9 or ०–९, one kind throughout.")
_RUPEES = r"\d+|\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})+,\d{3}"  # plain, Western, Indian
_GROUPED = re.compile(_RUPEES, re.ASCII)
_AMOUNT = re.compile(
    rf"(?P<sign>[+-]?)₹?\s*(?P<whole>{_RUPEES})(?:\.(?P<fraction>\d{{1,2}}))?", re.ASCII
)


PERCENT_MESSAGE = "Enter a percentage such as 10 or 12.5."
# Percentages are typed on admin pages only (coupon, commission, policy): English, so not
# N_ (no translation would ever be read). MSG_PERCENT_DIGITS stays its own sentence, not
# MSG_RUPEE_DIGITS with the noun as a parameter: the Hindi of that one names राशि twice and
# is built around it, and a noun dropped into a translated sentence rarely agrees with it.
MSG_PERCENT_FORM = "Type the percentage without spaces, underscores or commas, e.g. 12.5 or 12.5%."
MSG_PERCENT_DIGITS = "Type the percentage in the digits 0–9 or ०–९, one kind throughout."
# No grouping in a percentage: "12,5" is a decimal comma to some, 125 to others.
_PERCENT = re.compile(r"(?P<sign>[+-]?)(?P<whole>\d+)(?:\.(?P<fraction>\d{1,2}))?\s*%?", re.ASCII)


_RUPEE_RULES = Rules(_AMOUNT, _GROUPED, RUPEE_MESSAGE, MSG_RUPEE_GROUPING, MSG_RUPEE_DIGITS)
_PERCENT_RULES = Rules(_PERCENT, None, PERCENT_MESSAGE, MSG_PERCENT_FORM, MSG_PERCENT_DIGITS)


def _hundredths(text, rules):
    """A typed amount or rate in hundredths (paise, basis points), signed; None when empty;
    ValueError with the message for the person (``numbers.read``; the patterns allow at
    most two decimals)."""
    number = read(text, rules)
    if number is None:
        return None
    value = number.whole * 100 + int(number.fraction.ljust(2, "0"))
    return -value if number.negative else value


def parse_rupees(text):
    """ "250.50", "₹1,00,000.5", "100,000", "१२३" → paise; None when empty; ValueError,
    its message for the person, for anything else (letters, three decimals, exponents
    such as "1e3", "1_000", "15 00", "1,0,0", "١٢٣")."""
    paise = _hundredths(text, _RUPEE_RULES)
    if paise is not None and abs(paise) > MAX_PAISE:
        raise ValueError(N_("That amount is too large."))
    return paise


def parse_percent_bps(text):
    """ "12.5", "12.5%", "१२.५" → 1250 basis points; None when empty; ValueError, its
    message for the person, for anything else: the rules of ``parse_rupees`` without
    grouping commas ("1_0", "1,0", "12,5", "١٠", ".5", "12%%")."""
    bps = _hundredths(text, _PERCENT_RULES)
    if bps is not None and abs(bps) > MAX_BPS:
        raise ValueError(MSG_TOO_LARGE)
    return bps


def shown_paise(text):
    """The amount (paise) a page showed and its form posts back in a hidden field, which
    the person agreed to (a refund, a fee); None when absent or not a number."""
    return int(text) if is_digits(text) and len(text) <= 12 else None


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
