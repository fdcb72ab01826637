import dataclasses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portal.domain.policy import DEFAULT_POLICY, GST_MODE_FEE_AND_PLATFORM, Policy, TdsRule
from portal.domain.pricing import (
    MIN_ONLINE_PAYMENT,
    Coupon,
    PriceBreakup,
    apply_coupon,
    online_minimum_at_work,
    online_minimum_coupon,
    online_minimum_notice,
    price_item,
    provider_earning,
    split_wallet,
    wallet_part,
)

FEE_AND_PLATFORM = DEFAULT_POLICY.with_changes(gst_mode=GST_MODE_FEE_AND_PLATFORM)
fees = st.integers(0, 10**9)


def test_default_policy_values():
    p = DEFAULT_POLICY
    assert (p.platform_fee_bps, p.gst_bps, p.commission_bps) == (500, 1800, 500)
    assert p.payout_minimum == 50_000
    assert p.imps_limit == 50_000_000
    assert p.adjustment_approval_threshold == 1_000_000
    assert p.tds_rule_for("2026-27") == TdsRule("2025-26", 1_000, 5_000_000, "194J")
    assert p.allowed_meet_domains == ("zoom.us", "meet.google.com", "teams.microsoft.com")


def test_policy_is_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_POLICY.gst_bps = 0
    with pytest.raises(ValueError):
        Policy(gst_mode="everything")
    with pytest.raises(ValueError):
        Policy(platform_fee_bps=-1)
    with pytest.raises(ValueError):
        Policy(payout_minimum=500.0)
    with pytest.raises(ValueError):
        Policy(tds_rules=())


def test_tds_rule_per_financial_year():
    policy = DEFAULT_POLICY.with_changes(
        tds_rules=(
            TdsRule("2024-25", 1_000, 3_000_000, "194J"),
            TdsRule("2025-26", 1_000, 5_000_000, "194J"),
            TdsRule("2027-28", 500, 6_000_000, "194J"),
        )
    )
    assert policy.tds_rule_for("2024-25").threshold == 3_000_000
    assert policy.tds_rule_for("2026-27").threshold == 5_000_000
    assert policy.tds_rule_for("2030-31").rate_bps == 500
    assert policy.tds_rule_for("2010-11").threshold == 3_000_000  # before the first: the first


def test_price_item_default_gst_on_platform_fee_only():
    assert price_item(100_000) == PriceBreakup(100_000, 5_000, 900, 105_900, 5_000, False)


def test_price_item_taxable_service():
    b = price_item(100_000, taxable=True)
    assert (b.platform_fee, b.gst, b.total, b.taxable_value) == (5_000, 18_900, 123_900, 105_000)


def test_price_item_fee_and_platform_mode():
    b = price_item(100_000, False, FEE_AND_PLATFORM)
    assert (b.gst, b.total, b.fee_taxable) == (18_900, 123_900, True)


def test_price_item_rounding_each_step():
    # F = ₹333.33: P = 1666.65 -> 1667; GST on P = 300.06 -> 300
    b = price_item(33_333)
    assert (b.platform_fee, b.gst, b.total) == (1_667, 300, 35_300)
    # F = 10 paise: P = 0.5 -> 1; GST = 0.18 -> 0
    assert price_item(10) == PriceBreakup(10, 1, 0, 11, 1, False)


def test_price_item_refuses_bad_fee():
    with pytest.raises(TypeError):
        price_item(100.0)
    with pytest.raises(ValueError):
        price_item(-1)


@given(fees, st.booleans(), st.sampled_from([DEFAULT_POLICY, FEE_AND_PLATFORM]))
def test_price_item_adds_up(fee, taxable, policy):
    b = price_item(fee, taxable, policy)
    assert b.total == b.fee + b.platform_fee + b.gst
    assert 0 <= b.platform_fee <= fee
    assert b.gst <= b.taxable_value


def test_coupon_percent_and_flat():
    r = apply_coupon([105_900, 52_950], Coupon("percent", 1_000))
    assert r.discount_total == 15_885
    assert sum(r.discounts) == 15_885
    assert r.paid_amounts == [105_900 - r.discounts[0], 52_950 - r.discounts[1]]
    r = apply_coupon([100, 200], Coupon("flat", 100))
    assert r.discounts == [33, 67] and r.paid_amounts == [67, 133]


def test_coupon_capped_at_visit_total():
    r = apply_coupon([100, 200], Coupon("flat", 10_000))
    assert r.discount_total == 300 and r.paid_amounts == [0, 0]


def test_no_coupon():
    r = apply_coupon([100, 200], None)
    assert r.discount_total == 0 and r.paid_amounts == [100, 200]
    assert apply_coupon([0, 0], Coupon("flat", 50)).discount_total == 0


def test_coupon_validation():
    with pytest.raises(ValueError):
        Coupon("bogo", 1)
    with pytest.raises(ValueError):
        Coupon("percent", 10_001)
    with pytest.raises(ValueError):
        Coupon("flat", -5)


coupons = st.one_of(
    st.builds(Coupon, st.just("percent"), st.integers(0, 10_000)),
    st.builds(Coupon, st.just("flat"), st.integers(0, 10**8)),
)


@given(st.lists(st.integers(0, 10**8), min_size=1, max_size=10), coupons)
def test_coupon_properties(totals, coupon):
    r = apply_coupon(totals, coupon)
    assert 0 <= r.discount_total <= sum(totals)
    assert sum(r.discounts) == r.discount_total
    assert all(0 <= d <= t for d, t in zip(r.discounts, totals))
    assert all(p >= 0 for p in r.paid_amounts)
    assert sum(r.paid_amounts) == sum(totals) - r.discount_total


def test_split_wallet_examples():
    s = split_wallet(300, 100, [100, 200])
    assert (s.wallet_total, s.gateway_total) == (100, 200)
    assert s.items == [(33, 67), (67, 133)]
    s = split_wallet(300, 1_000, [100, 200])
    assert s.gateway_total == 0 and s.items == [(100, 0), (200, 0)]
    s = split_wallet(300, -50, [100, 200])
    assert s.wallet_total == 0
    with pytest.raises(ValueError):
        split_wallet(301, 0, [100, 200])


@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=8), st.integers(-(10**6), 10**8))
def test_split_wallet_properties(items, balance):
    s = split_wallet(sum(items), balance, items)
    assert s.wallet_total == min(max(balance, 0), sum(items))
    assert s.wallet_total + s.gateway_total == sum(items)
    assert sum(w for w, _ in s.items) == s.wallet_total
    assert all(w >= 0 and g >= 0 and w + g == a for (w, g), a in zip(s.items, items))


def test_the_wallet_leaves_at_least_a_rupee_online():
    """Razorpay refuses an order under ₹1: the wallet covers all of a due or leaves ₹1
    (a balance of ₹529.00 on ₹529.50 left 50 paise and a "payments unavailable" error:
    review finding)."""
    assert wallet_part(52_950, 52_900) == 52_850
    assert wallet_part(52_950, 60_000) == 52_950
    assert wallet_part(52_950, 0) == 0
    assert wallet_part(52_950, 52_850) == 52_850  # ₹1.00 online already
    assert wallet_part(80, 30) == 0  # under ₹1 in all: all online (the coupon takes less)
    assert wallet_part(80, 80) == 80


def test_a_coupon_leaving_under_a_rupee_takes_that_much_less():
    flat = Coupon("flat", 52_900)
    assert online_minimum_coupon([52_950], flat, 0) == Coupon("flat", 52_850)
    assert online_minimum_coupon([52_950], flat, 50) is flat  # the wallet covers the 50
    assert online_minimum_coupon([52_950], Coupon("flat", 60_000), 0).value == 60_000  # free
    assert online_minimum_coupon([52_950], None, 0) is None
    percent = Coupon("percent", 9_990)  # 99.9 %: 52 paise left
    assert online_minimum_coupon([52_950], percent, 0) == Coupon("flat", 52_850)


def test_a_fixed_price_tells_whether_the_minimum_was_at_work():
    """A checkout stores the split (discount, wallet part, online part), not what was
    asked: its page, shown again while the order is pending, tells from the split
    whether the ₹1 minimum shaped it (it said nothing there: review finding)."""
    flat = Coupon("flat", 52_900)
    assert online_minimum_at_work([52_950], None, 0, 52_850, 100)  # ₹529 of the wallet
    assert online_minimum_at_work([52_950], flat, 52_850, 0, 100)  # the coupon cut
    assert not online_minimum_at_work([52_950], Coupon("flat", 52_850), 52_850, 0, 100)
    assert not online_minimum_at_work([52_950], None, 0, 10_000, 42_950)
    assert not online_minimum_at_work([52_950], flat, 52_900, 50, 0)  # nothing online
    assert not online_minimum_at_work([100], None, 0, 0, 100)  # a ₹1 visit, all online


@given(
    st.lists(st.integers(100, 10**6), min_size=1, max_size=4),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
@example([52_950], 0, 52_850)  # a wallet asked for exactly all but ₹1: reads as cut
@example([100], 0, 50)  # 50 paise asked on ₹1: cut to nothing, reads as not
def test_the_fixed_price_reads_as_the_fresh_one_did(items, flat, asked):
    """Whenever pricing afresh cut the coupon or the wallet for the minimum (what
    ``booking.pricing.build_quote`` flags), the stored split says so too; it says so
    otherwise only for a wallet asked for exactly all but the minimum (not kept)."""
    coupon = Coupon("flat", flat)
    usable = online_minimum_coupon(items, coupon, asked)
    shares = apply_coupon(items, usable)
    due = sum(shares.paid_amounts)
    wallet = wallet_part(due, asked)
    fresh = usable is not coupon or wallet < min(asked, due)
    stored = online_minimum_at_work(items, coupon, shares.discount_total, wallet, due - wallet)
    if stored != fresh:  # only where what was asked is the difference
        assert due - wallet == MIN_ONLINE_PAYMENT
        assert (stored and wallet == asked) or (not stored and wallet == 0 < asked < due)


def test_the_notice_names_the_minimum_as_the_rule_sets_it(monkeypatch):
    from portal.domain import pricing

    notice = online_minimum_notice()
    assert notice.values == {"amount": "₹1"} and "at least ₹1," in notice
    assert "₹" not in notice.template  # the amount is the formatter's, not typed in
    monkeypatch.setattr(pricing, "MIN_ONLINE_PAYMENT", 250)
    assert "at least ₹2.50," in online_minimum_notice()


@given(
    st.lists(st.integers(100, 10**6), min_size=1, max_size=4),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
def test_what_goes_online_is_nothing_or_at_least_a_rupee(items, flat, asked):
    coupon = online_minimum_coupon(items, Coupon("flat", flat), asked)
    shares = apply_coupon(items, coupon)
    due = sum(shares.paid_amounts)
    wallet = wallet_part(due, min(asked, due) if asked else 0)
    online = due - wallet
    assert online == 0 or online >= MIN_ONLINE_PAYMENT
    assert 0 <= wallet <= min(asked, due)
    assert shares.discount_total <= apply_coupon(items, Coupon("flat", flat)).discount_total


def test_provider_earning():
    e = provider_earning(100_000)
    assert (e.commission, e.earning) == (5_000, 95_000)
    assert provider_earning(33_333, 750).commission == 2_500  # 2499.975 -> 2500
    assert provider_earning(100_000, 0).earning == 100_000


def test_team_shares_give_the_odd_paisa_to_the_lowest_id_first():
    from types import SimpleNamespace

    from portal.domain.pricing import team_shares

    a, b, c = (SimpleNamespace(id=i) for i in (7, 3, 5))
    assert [(p.id, s) for p, s in team_shares(100_001, [a, b, c])] == [
        (3, 33_334),
        (5, 33_334),
        (7, 33_333),
    ]
    assert team_shares(500, []) == []
