"""``format_inr`` groups digits with integers (fast) and must read exactly as Babel's
en_IN currency format, which it replaced in the hot path of money tables, but for the
minus sign: "−" (U+2212), as the pages write it beside every amount taken off."""

from decimal import Decimal

from babel.numbers import format_currency
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.rates import format_inr


def babel(paise, always_show_paise=False):
    text = format_currency(Decimal(paise) / 100, "INR", locale="en_IN").replace("-", "−")
    if not always_show_paise and paise % 100 == 0 and text.endswith(".00"):
        text = text[:-3]
    return text


@given(st.integers(min_value=-(10**16), max_value=10**16))
def test_format_inr_reads_as_babel(paise):
    assert format_inr(paise) == babel(paise)
    assert format_inr(paise, always_show_paise=True) == babel(paise, True)


def test_examples():
    assert format_inr(12_345_678) == "₹1,23,456.78"
    assert format_inr(50_000) == "₹500"
    assert format_inr(-1_050) == "−₹10.50"  # U+2212, not a hyphen
    assert format_inr(100_000_000_00) == "₹10,00,00,000"
