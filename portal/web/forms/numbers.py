"""Numbers typed by people, read one way (docs/security.md, "Money typed"): the digits
0–9, or Devanagari ones (१२३, as Indian operators may type them), one kind throughout;
a plain decimal point; an optional sign. Other scripts' digits ("١٢٣"), underscores
("1_0"), spaces inside ("1 0"), exponents ("1e1"), "NaN" and commas out of place are
refused with a message saying what to change, never guessed (Python's ``Decimal`` and
``int`` read most of them).

A kind of number is its :class:`Rules`: the pattern it is written in and its messages.
:func:`read` is the one reading; ``money.py``'s amounts and percentages use it, and so does
:func:`parse_decimal`, a plain number with any number of decimals (the policy form's hours
and minutes)."""

import re
import unicodedata
from decimal import Decimal
from typing import NamedTuple

from portal.i18n import N_

# More digits are a typing slip or a probe: refused before any arithmetic (a number of
# 10,000 digits, or 1e999999999 times 3600, is no one's amount or duration).
MAX_DIGITS = 20
MSG_TOO_LARGE = N_("That number is too large.")

ASCII_DIGITS, DEVANAGARI = set("0123456789"), set("०१२३४५६७८९")
_TO_ASCII = str.maketrans("०१२३४५६७८९", "0123456789")


class Rules(NamedTuple):
    """How one kind of number is typed, and what to say when it is not."""

    form: re.Pattern  # groups: sign, whole, fraction (on the text in ASCII digits)
    grouped: re.Pattern | None  # the whole part's commas allowed, if any
    message: str  # not a number of this kind at all
    form_message: str  # underscores, spaces inside, commas out of place
    digits_message: str  # another script's digits, or two kinds mixed


def _refusal(text, rules):
    """Why ``text`` is not a number of ``rules``' kind: the message that says what to change."""
    digits = {c for c in text if unicodedata.category(c) == "Nd"}
    if digits - ASCII_DIGITS - DEVANAGARI or (digits & ASCII_DIGITS and digits & DEVANAGARI):
        return rules.digits_message
    whole = text.translate(_TO_ASCII).split(".")[0].lstrip("+-₹ ")
    inner_space = re.search(r"\d.*\s", text)  # text is stripped: a space after a digit is inside
    misplaced = "," in whole and not (rules.grouped and rules.grouped.fullmatch(whole))
    if "_" in text or inner_space or misplaced:
        return rules.form_message
    return rules.message


class Number(NamedTuple):
    """A number as typed, in ASCII digits: its sign, whole part and decimals."""

    negative: bool
    whole: int
    fraction: str  # the digits after the point, "" when none


def read(text, rules):
    """``text`` as a :class:`Number` of ``rules``' kind; None when empty; ValueError with
    the message for the person."""
    text = (text or "").strip()
    if not text:
        return None
    if sum(c.isdigit() for c in text) > MAX_DIGITS:
        raise ValueError(MSG_TOO_LARGE)
    found = rules.form.fullmatch(text.translate(_TO_ASCII))
    mixed = set(text) & ASCII_DIGITS and set(text) & DEVANAGARI
    if found is None or mixed:
        raise ValueError(_refusal(text, rules))
    whole = int(found["whole"].replace(",", ""))
    return Number(found["sign"] == "-", whole, found["fraction"] or "")


# The policy form's durations (admin pages: English, so not N_).
MSG_DECIMAL = "Enter a number such as 24 or 1.5."
MSG_DECIMAL_FORM = "Type the number without spaces, underscores or commas, e.g. 24 or 1.5."
MSG_DECIMAL_DIGITS = "Type the number in the digits 0–9 or ०–९, one kind throughout."
_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<whole>\d+)(?:\.(?P<fraction>\d+))?", re.ASCII)
_DECIMAL_RULES = Rules(_DECIMAL, None, MSG_DECIMAL, MSG_DECIMAL_FORM, MSG_DECIMAL_DIGITS)


def parse_decimal(text):
    """ "24", "1.5", "0.0025", "१.५" → an exact Decimal; None when empty; ValueError, its
    message for the person, for anything else: the rules of a percentage, any number of
    decimals ("1_0", "1e1", "١٠", ".5", "5.", "1,5", "NaN", more than 20 digits)."""
    number = read(text, _DECIMAL_RULES)
    if number is None:
        return None
    value = Decimal(f"{number.whole}.{number.fraction or 0}")
    return -value if number.negative else value
