"""Money typed by people (``portal.web.forms.money.parse_rupees``, every rupee field):
read only in a form nobody can mean two ways, else refused with a message saying what to
change (review rev2: "1_000", "15 00" → ₹1,500, "1,0,0" → ₹100 and "١٢٣" → ₹123 were
read as amounts). Percentages (``parse_percent_bps``: coupon percent, provider commission,
policy rates) follow the same rules without grouping commas: "1_0", "1,0" and "1 0" were
10 %, "12,5" was 125 %, "١٠" 10 %. Plain numbers (``numbers.parse_decimal``: the policy's
hours and minutes) too, with any number of decimals: "1_0", "1e1" and "١٠" were 10 hours
(review rv_forms). docs/security.md, "Money typed"."""

from decimal import Decimal

import pytest

from portal.web.forms.money import (
    MSG_RUPEE_DIGITS,
    MSG_RUPEE_GROUPING,
    RUPEE_MESSAGE,
    parse_percent_bps,
    parse_rupees,
)
from portal.web.forms.numbers import parse_decimal


@pytest.mark.parametrize(
    ("text", "paise"),
    [
        ("250", 250_00),
        ("250.5", 250_50),
        ("250.50", 250_50),
        ("  250.50  ", 250_50),  # spaces around are no part of it
        ("₹1,250.5", 1_250_50),
        ("₹ 1,500", 1_500_00),
        ("1,000", 1_000_00),  # Indian and Western alike
        ("1,00,000.50", 1_00_000_50),  # Indian grouping
        ("12,34,56,789", 12_34_56_789_00),
        ("100,000.50", 100_000_50),  # Western grouping
        ("1,234,567", 1_234_567_00),
        ("१२३", 123_00),  # Devanagari digits
        ("१,००,०००.५०", 1_00_000_50),
        ("-250.50", -250_50),  # a sign is the field's to refuse (the wallet's, a minimum)
        ("+5", 5_00),
        ("0", 0),
        ("", None),
        ("   ", None),
    ],
)
def test_an_amount_written_one_way_is_read(text, paise):
    assert parse_rupees(text) == paise


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1_000", MSG_RUPEE_GROUPING),  # Python's int() reads it as 1000
        ("15 00", MSG_RUPEE_GROUPING),  # was ₹1,500
        ("1 000", MSG_RUPEE_GROUPING),
        ("1000 .50", MSG_RUPEE_GROUPING),
        ("1,0,0", MSG_RUPEE_GROUPING),  # was ₹100
        ("10,0000", MSG_RUPEE_GROUPING),
        ("1,000,00", MSG_RUPEE_GROUPING),
        ("1,00,000,000", MSG_RUPEE_GROUPING),  # Indian then Western
        (",100", MSG_RUPEE_GROUPING),
        ("١٢٣", MSG_RUPEE_DIGITS),  # Arabic-Indic: was ₹123
        ("１２３", MSG_RUPEE_DIGITS),  # fullwidth
        ("१2३", MSG_RUPEE_DIGITS),  # two kinds in one amount
        ("10.005", RUPEE_MESSAGE),
        (".5", RUPEE_MESSAGE),
        ("250.", RUPEE_MESSAGE),
        ("1e3", RUPEE_MESSAGE),
        ("NaN", RUPEE_MESSAGE),
        ("Infinity", RUPEE_MESSAGE),
        ("−5", RUPEE_MESSAGE),  # U+2212: the wallet's field names it
        ("ten", RUPEE_MESSAGE),
        ("5\x00", RUPEE_MESSAGE),
    ],
)
def test_an_amount_that_could_be_meant_two_ways_is_refused(text, message):
    with pytest.raises(ValueError) as refused:
        parse_rupees(text)
    assert str(refused.value) == message


PERCENT = "Enter a percentage such as 10 or 12.5."
PERCENT_FORM = "Type the percentage without spaces, underscores or commas, e.g. 12.5 or 12.5%."
PERCENT_DIGITS = "Type the percentage in the digits 0–9 or ०–९, one kind throughout."


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("10", 1_000),
        ("12.5", 1_250),
        ("12.50", 1_250),
        ("0.05", 5),
        ("  7  ", 700),  # spaces around are no part of it
        ("12.5%", 1_250),  # a trailing % is the unit, as ₹ is before an amount
        ("12.5 %", 1_250),
        ("100", 10_000),
        ("१२.५", 1_250),  # Devanagari digits, as for amounts
        ("१०%", 1_000),
        ("0", 0),
        ("-5", -500),  # a sign is the field's to refuse (its range)
        ("+5", 500),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_a_percentage_written_one_way_is_read(text, bps):
    assert parse_percent_bps(text) == bps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1_0", PERCENT_FORM),  # was 10 %
        ("1 0", PERCENT_FORM),  # was 10 %
        ("12 .5", PERCENT_FORM),
        ("1,0", PERCENT_FORM),  # was 10 %
        ("12,5", PERCENT_FORM),  # a decimal comma: was 125 %
        ("1,000", PERCENT_FORM),  # no grouping in a percentage
        ("١٠", PERCENT_DIGITS),  # Arabic-Indic: was 10 %
        ("１０", PERCENT_DIGITS),  # fullwidth
        ("1०", PERCENT_DIGITS),  # two kinds in one number
        ("12.555", PERCENT),
        (".5", PERCENT),  # was 0.5 %
        ("5.", PERCENT),  # was 5 %
        ("12%%", PERCENT),  # was 12 %
        ("%12", PERCENT),
        ("%", PERCENT),
        ("₹10", PERCENT),
        ("1e1", PERCENT),
        ("NaN", PERCENT),
        ("Infinity", PERCENT),
        ("ten", PERCENT),
        ("5\x00", PERCENT),
        ("21474837", "That number is too large."),  # above the basis-point column
        ("1" * 21, "That number is too large."),
    ],
)
def test_a_percentage_that_could_be_meant_two_ways_is_refused(text, message):
    with pytest.raises(ValueError) as refused:
        parse_percent_bps(text)
    assert str(refused.value) == message


DECIMAL = "Enter a number such as 24 or 1.5."
DECIMAL_FORM = "Type the number without spaces, underscores or commas, e.g. 24 or 1.5."
DECIMAL_DIGITS = "Type the number in the digits 0–9 or ०–९, one kind throughout."


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("24", Decimal(24)),
        ("1.5", Decimal("1.5")),
        ("0.0025", Decimal("0.0025")),  # 9 seconds in hours: any number of decimals
        (" १.५ ", Decimal("1.5")),
        ("-1", Decimal(-1)),  # a sign is the field's to refuse (a duration of 0 or more)
        ("", None),
    ],
)
def test_a_plain_number_written_one_way_is_read(text, value):
    assert parse_decimal(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Review rv_forms: Decimal read these as 10 (hours, in the policy's durations).
        ("1_0", DECIMAL_FORM),
        ("1e1", DECIMAL),
        ("١٠", DECIMAL_DIGITS),
        ("1e999999999", DECIMAL),  # was decimal.Overflow times 3600, a 500
        ("１０", DECIMAL_DIGITS),
        ("1०", DECIMAL_DIGITS),
        ("1 0", DECIMAL_FORM),
        ("1,5", DECIMAL_FORM),
        (".5", DECIMAL),
        ("5.", DECIMAL),
        ("NaN", DECIMAL),
        ("Infinity", DECIMAL),
        ("9" * 21, "That number is too large."),
    ],
)
def test_a_plain_number_that_could_be_meant_two_ways_is_refused(text, message):
    with pytest.raises(ValueError) as refused:
        parse_decimal(text)
    assert str(refused.value) == message
