import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.rates import (
    allocate_pro_rata,
    apply_bps,
    div_round_half_up,
    financial_year,
    financial_year_bounds,
    financial_year_end,
    financial_year_start,
    format_inr,
    percent_text,
    rupees,
)


@pytest.mark.parametrize(
    "amount,bps,expected",
    [
        (10_000, 500, 500),
        (10_050, 500, 503),  # 502.5 -> 503 (half up)
        (10_030, 500, 502),  # 501.5 -> 502
        (10_010, 500, 501),  # 500.5 -> 501
        (10_009, 500, 500),  # 500.45 -> 500
        (1, 5_000, 1),  # 0.5 -> 1
        (1, 4_999, 0),
        (0, 1_800, 0),
        (-10_050, 500, -503),  # symmetric: halves away from zero
        (-1, 5_000, -1),
        (12_345, 10_000, 12_345),
    ],
)
def test_apply_bps_rounds_half_up(amount, bps, expected):
    assert apply_bps(amount, bps) == expected


@pytest.mark.parametrize("bad", [1.5, "10", None, True])
def test_apply_bps_refuses_non_int(bad):
    with pytest.raises(TypeError):
        apply_bps(bad, 500)
    with pytest.raises(TypeError):
        apply_bps(100, bad)


@given(st.integers(-(10**12), 10**12), st.integers(0, 20_000))
def test_apply_bps_matches_exact_rounding(amount, bps):
    from fractions import Fraction

    exact = Fraction(amount * bps, 10_000)
    result = apply_bps(amount, bps)
    assert abs(result - exact) <= Fraction(1, 2)
    if abs(result - exact) == Fraction(1, 2):
        assert abs(result) > abs(exact)  # ties away from zero
    assert apply_bps(-amount, bps) == -result


def test_div_round_half_up_zero():
    with pytest.raises(ZeroDivisionError):
        div_round_half_up(1, 0)
    assert div_round_half_up(5, -2) == -3
    assert div_round_half_up(-5, -2) == 3


def test_allocate_examples():
    assert allocate_pro_rata(100, [1, 1, 1]) == [34, 33, 33]  # tie: lowest index first
    assert allocate_pro_rata(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate_pro_rata(10, [0, 5, 5]) == [0, 5, 5]
    assert allocate_pro_rata(0, [0, 0]) == [0, 0]
    assert allocate_pro_rata(-100, [1, 1, 1]) == [-34, -33, -33]
    assert allocate_pro_rata(0, []) == []


def test_allocate_largest_remainder_not_index():
    # exact shares 1.2, 2.4(…) : weights 1, 2, 2 of 6 -> 1.2, 2.4, 2.4 -> floors 1,2,2 -> +1 to index 1
    assert allocate_pro_rata(6, [1, 2, 2]) == [1, 3, 2]
    # remainders .25 .75 -> second gets the paisa
    assert allocate_pro_rata(1, [1, 3]) == [0, 1]


def test_allocate_refusals():
    with pytest.raises(ValueError):
        allocate_pro_rata(5, [0, 0])
    with pytest.raises(ValueError):
        allocate_pro_rata(5, [-1, 2])
    with pytest.raises(ValueError):
        allocate_pro_rata(5, [])
    with pytest.raises(TypeError):
        allocate_pro_rata(5.0, [1])


@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**8), min_size=1, max_size=12))
def test_allocate_sums_exactly_and_is_close(total, weights):
    if sum(weights) == 0:
        return
    shares = allocate_pro_rata(total, weights)
    assert sum(shares) == total
    W = sum(weights)
    for share, w in zip(shares, weights):
        assert abs(share * W - total * w) < W  # within one paisa of the exact share
        if w == 0:
            assert share == 0


@given(st.lists(st.integers(0, 10**8), min_size=1, max_size=12), st.data())
def test_allocate_never_exceeds_weights_when_total_fits(weights, data):
    if sum(weights) == 0:
        return
    total = data.draw(st.integers(0, sum(weights)))
    shares = allocate_pro_rata(total, weights)
    assert all(0 <= s <= w for s, w in zip(shares, weights))


@given(st.integers(0, 10**9), st.lists(st.integers(1, 10**6), min_size=1, max_size=8))
def test_allocate_is_deterministic(total, weights):
    assert allocate_pro_rata(total, weights) == allocate_pro_rata(total, list(weights))


@pytest.mark.parametrize(
    "day,label",
    [
        (dt.date(2026, 4, 1), "2026-27"),
        (dt.date(2026, 3, 31), "2025-26"),
        (dt.date(2027, 3, 31), "2026-27"),
        (dt.date(2099, 12, 31), "2099-00"),
        (dt.date(2025, 1, 15), "2024-25"),
    ],
)
def test_financial_year(day, label):
    assert financial_year(day) == label
    start, end = financial_year_bounds(label)
    assert start <= day <= end
    assert financial_year_start(day) == start
    assert financial_year_end(day) == end


def test_financial_year_uses_india_time_for_aware_datetimes():
    utc_evening = dt.datetime(2026, 3, 31, 19, 0, tzinfo=dt.UTC)  # 00:30 IST 1 April
    assert financial_year(utc_evening) == "2026-27"
    assert financial_year(dt.datetime(2026, 3, 31, 23, 0)) == "2025-26"  # naive: local


@pytest.mark.parametrize("label", ["2026-28", "2026", "26-27", "abcd-ef", "2026-027"])
def test_financial_year_bounds_refuses(label):
    with pytest.raises(ValueError):
        financial_year_bounds(label)


@given(st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(9998, 12, 31)))
def test_financial_year_bounds_property(day):
    start, end = financial_year_bounds(financial_year(day))
    assert start <= day <= end
    assert (start.month, start.day, end.month, end.day) == (4, 1, 3, 31)


@pytest.mark.parametrize(
    "paise,text",
    [
        (50_000, "₹500"),
        (12_345_678, "₹1,23,456.78"),
        (43_210, "₹432.10"),
        (5, "₹0.05"),
        (0, "₹0"),
        (-25_000, "−₹250"),
        (rupees(5_00_000), "₹5,00,000"),
    ],
)
def test_format_inr(paise, text):
    assert format_inr(paise) == text


def test_format_inr_always_paise():
    assert format_inr(50_000, always_show_paise=True) == "₹500.00"
    with pytest.raises(TypeError):
        format_inr(1.5)


@pytest.mark.parametrize(
    "bps,text",
    [
        (1_250, "12.5"),
        (750, "7.5"),
        (1_000, "10"),
        (5, "0.05"),
        (0, "0"),
        (10_000, "100"),
        (1_234_567, "12345.67"),  # a float with "%g" said 12345.7
        (-1_250, "-12.5"),  # divmod alone said -13.5
    ],
)
def test_percent_text_states_basis_points_exactly(bps, text):
    assert percent_text(bps) == text
