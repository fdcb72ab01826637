import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain import payouts as dp
from portal.domain.payouts import cycle_payable, payout_mode, provider_earning, tds_for_payout
from portal.domain.policy import DEFAULT_POLICY, TdsRule
from portal.domain.rates import rupees

RULE = DEFAULT_POLICY.tds_rule_for("2026-27")  # 10%, ₹50,000, 194J
TH = RULE.threshold


def test_below_and_at_threshold_no_tds():
    r = tds_for_payout(rupees(20_000), rupees(30_000), rupees(30_000), RULE)
    assert r.tds == 0 and r.net == rupees(20_000) and not r.crossed_now
    assert r.untaxed_after == TH  # exactly at the threshold: not exceeded


def test_crossing_payout_taxes_the_whole_year_so_far():
    r = tds_for_payout(rupees(20_000), rupees(40_000), rupees(40_000), RULE)
    assert r.crossed_now and r.taxable_base == rupees(60_000)
    assert r.tds == rupees(6_000) and r.net == rupees(14_000)
    assert r.untaxed_after == 0 and r.shortfall_after == 0 and r.section == "194J"


def test_crossing_by_one_paisa():
    r = tds_for_payout(1, TH, TH, RULE)
    assert r.crossed_now
    # 10% of ₹50,000.01 = ₹5,000.001 -> due 500_000 paise, capped at the 1-paisa payout
    assert r.tds == 1 and r.net == 0 and r.shortfall_after == 500_000 - 1 + 0
    nxt = tds_for_payout(rupees(10_000), TH + 1, 0, RULE, fy_tds_shortfall_before=r.shortfall_after)
    assert nxt.tds == rupees(1_000) + r.shortfall_after and not nxt.crossed_now


def test_after_crossing_each_payout_taxed():
    r = tds_for_payout(rupees(1_000), rupees(60_000), 0, RULE)
    assert r.tds == rupees(100) and not r.crossed_now and r.taxable_base == rupees(1_000)


def test_rounding_half_up():
    r = tds_for_payout(12_345, rupees(60_000), 0, RULE)  # 1234.5 -> 1235
    assert r.tds == 1_235


def test_with_policy_and_year():
    r = tds_for_payout(rupees(20_000), rupees(40_000), rupees(40_000), DEFAULT_POLICY, fy="2026-27")
    assert r.tds == rupees(6_000)
    with pytest.raises(ValueError):
        tds_for_payout(1, 0, 0, DEFAULT_POLICY)
    with pytest.raises(ValueError):
        tds_for_payout(1, 0, 5, RULE)  # untaxed > gross paid


def test_seed_threshold_is_a_setting():
    old = TdsRule("2024-25", 1_000, rupees(40_000), "194J")
    assert tds_for_payout(rupees(10_000), rupees(40_000), rupees(40_000), old).tds == rupees(5_000)
    assert tds_for_payout(rupees(10_000), rupees(40_000), rupees(40_000), RULE).tds == 0


@given(st.lists(st.integers(1, rupees(30_000)), min_size=1, max_size=15))
def test_year_of_payouts_property(payouts):
    gross_before = untaxed = shortfall = total_tds = 0
    crossings = 0
    for gross in payouts:
        r = tds_for_payout(gross, gross_before, untaxed, RULE, fy_tds_shortfall_before=shortfall)
        assert 0 <= r.tds <= gross and r.net == gross - r.tds
        crossings += r.crossed_now
        gross_before += gross
        untaxed, shortfall = r.untaxed_after, r.shortfall_after
        total_tds += r.tds
    if gross_before > TH:
        assert crossings == 1 and untaxed == 0
        # everything taxed at 10% in the end (each payout rounds once: ± 1 paisa each)
        assert abs(total_tds + shortfall - gross_before // 10) <= len(payouts)
    else:
        assert crossings == 0 and total_tds == 0 and untaxed == gross_before


@pytest.mark.parametrize(
    "amount,mode",
    [
        (rupees(5_00_000), "IMPS"),
        (rupees(5_00_000) + 1, "NEFT"),
        (1, "IMPS"),
        (0, "IMPS"),
    ],
)
def test_payout_mode(amount, mode):
    assert payout_mode(amount) == mode


def test_payout_mode_vpa_and_setting():
    assert payout_mode(rupees(10), fund_account_type="vpa") == "UPI"
    assert payout_mode(rupees(10), DEFAULT_POLICY.with_changes(imps_limit=rupees(5))) == "NEFT"


def test_cycle_payable():
    d = cycle_payable(rupees(500), rupees(500))
    assert d.pay and d.amount == rupees(500) and d.carry_forward == 0
    d = cycle_payable(rupees(500) - 1, rupees(500))
    assert not d.pay and d.carry_forward == rupees(500) - 1
    assert d.message == "Minimum payout threshold not met. Required: ₹500, Available: ₹499.99"
    d = cycle_payable(43_200)
    assert d.message == "Minimum payout threshold not met. Required: ₹500, Available: ₹432"
    d = cycle_payable(-2_500)
    assert not d.pay and d.carry_forward == -2_500
    assert not cycle_payable(0, 0).pay


@given(st.integers(-(10**7), 10**9), st.integers(0, 10**6))
def test_cycle_properties(balance, minimum):
    d = cycle_payable(balance, minimum)
    assert d.amount + d.carry_forward == balance
    assert d.pay == (balance >= minimum and balance > 0)
    assert d.amount >= 0


@pytest.mark.parametrize(
    "gross, tds, reason, message",
    [
        (50, 0, dp.BELOW_GATEWAY_MINIMUM, "₹0.50 is below the smallest payout RazorpayX makes"),
        # under ₹1 whatever the TDS: the payable is named, as the earnings page names it
        (99, 10, dp.BELOW_GATEWAY_MINIMUM, "₹0.99 is below the smallest payout RazorpayX makes"),
        (99, 99, dp.BELOW_GATEWAY_MINIMUM, "₹0.99 is below the smallest payout RazorpayX makes"),
        (20_000, 20_000, dp.TDS_TAKES_ALL, "TDS due (₹200) takes the whole payable (₹200)"),
        (555_600, 555_550, dp.TDS_LEAVES_TOO_LITTLE, "₹0.50 is below the smallest payout"),
        (100, 0, None, ""),
        (555_650, 555_550, None, ""),
    ],
)
def test_gateway_payable(gross, tds, reason, message):
    d = dp.gateway_payable(gross, tds)
    assert (d.pay, d.reason, d.net) == (reason is None, reason, gross - tds)
    assert d.message.startswith(message) and bool(d.message) == (reason is not None)


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_gateway_payable_sends_exactly_a_net_of_a_rupee_or_more(gross, tds):
    if tds > gross:
        with pytest.raises(ValueError):
            dp.gateway_payable(gross, tds)
        return
    d = dp.gateway_payable(gross, tds)
    assert d.pay == (gross - tds >= dp.GATEWAY_MINIMUM_PAYOUT)


def test_earning():
    assert provider_earning(100_000).earning == 95_000


def test_the_catch_up_note_names_the_section_the_payout_was_deducted_under():
    """A year's rule edited after the payout (another section) must not rewrite what the
    payout's page says it was deducted under; without a stored section, the rule's."""
    rule = TdsRule("2025-26", 1_000, rupees(50_000), "194J")
    note = dp.catch_up_note(665_000, 562_750, rule, "2026-27", "194C")
    assert "(section 194C);" in note and "194J" not in note
    assert "(section 194J);" in dp.catch_up_note(665_000, 562_750, rule, "2026-27")
    assert dp.catch_up_note(665_000, 66_500, rule, "2026-27") is None  # the rate, no catch-up


def test_the_threshold_is_passed_only_above_it_as_tds_for_payout_reads_it():
    """One rule for the payout's TDS and the provider's TDS card (``over_threshold``): a
    year at exactly the threshold deducts nothing, one paisa more does."""
    from portal.domain.payouts import over_threshold

    rule = DEFAULT_POLICY.tds_rule_for("2026-27")
    assert not over_threshold(rule.threshold, rule)
    assert over_threshold(rule.threshold + 1, rule)
    assert tds_for_payout(rule.threshold, 0, 0, rule).tds == 0
    assert tds_for_payout(rule.threshold + 1, 0, 0, rule).tds > 0
