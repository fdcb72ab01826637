"""Section 206AA: a payee liable to TDS who has not furnished a PAN is deducted at the
higher of the rate in force and 20% (the policy's "TDS rate without a PAN", kept per
financial year with the 194J rule). The threshold rule is the same: nothing below it, the
crossing payout deducts on the year's untaxed gross, later payouts on their own gross."""

import pytest

from portal.domain import payouts as dp
from portal.domain.policy import DEFAULT_POLICY, TdsRule
from portal.domain.policy_data import FLOOR_SOURCES, FLOORS, from_data, problems, to_data
from portal.domain.rates import rupees

RULE = DEFAULT_POLICY.tds_rule_for("2026-27")  # 10%, ₹50,000, 194J; 20% without a PAN


def test_the_default_rule_deducts_20_percent_without_a_pan():
    assert (RULE.rate_bps, RULE.no_pan_rate_bps) == (1_000, 2_000)
    # Kept per financial year, like the 194J rate: each rule has its own.
    assert all(rule.no_pan_rate_bps == 2_000 for rule in DEFAULT_POLICY.tds_rules)


def test_below_the_threshold_nothing_is_deducted_pan_or_not():
    r = dp.tds_for_payout(rupees(30_000), 0, 0, RULE, pan_on_file=False)
    assert (r.tds, r.net, r.untaxed_after) == (0, rupees(30_000), rupees(30_000))
    # Nothing was deducted at the higher rate: the payout is stored under the rule's own.
    assert (r.rate_bps, r.higher_section) == (1_000, None)


def test_the_crossing_payout_without_a_pan_deducts_20_percent_of_the_years_untaxed_gross():
    r = dp.tds_for_payout(rupees(30_000), rupees(30_000), rupees(30_000), RULE, pan_on_file=False)
    assert r.crossed_now and r.taxable_base == rupees(60_000)
    assert (r.tds, r.net) == (rupees(12_000), rupees(18_000))
    assert (r.rate_bps, r.section, r.higher_section) == (2_000, "194J", "206AA")
    with_pan = dp.tds_for_payout(rupees(30_000), rupees(30_000), rupees(30_000), RULE)
    assert (with_pan.tds, with_pan.rate_bps, with_pan.higher_section) == (
        rupees(6_000),
        1_000,
        None,
    )


def test_later_payouts_without_a_pan_deduct_20_percent_of_their_own_gross():
    r = dp.tds_for_payout(rupees(10_000), rupees(60_000), 0, RULE, pan_on_file=False)
    assert (r.tds, r.rate_bps, r.higher_section) == (rupees(2_000), 2_000, "206AA")
    assert dp.tds_for_payout(rupees(10_000), rupees(60_000), 0, RULE).tds == rupees(1_000)


def test_the_higher_of_the_rate_in_force_and_the_no_pan_rate():
    high = TdsRule("2026-27", 2_500, rupees(50_000), "194J", no_pan_rate_bps=2_000)
    r = dp.tds_for_payout(rupees(10_000), rupees(60_000), 0, high, pan_on_file=False)
    assert (r.tds, r.rate_bps, r.higher_section) == (rupees(2_500), 2_500, "206AA")


def test_a_small_crossing_payout_without_a_pan_carries_the_rest_at_20_percent():
    r = dp.tds_for_payout(rupees(200), rupees(49_900), rupees(49_900), RULE, pan_on_file=False)
    assert (r.tds, r.net) == (rupees(200), 0)
    assert r.shortfall_after == rupees(10_020) - rupees(200)  # 20% of ₹50,100, less the ₹200


def test_rate_for_payee_says_the_rate_and_why():
    assert dp.rate_for_payee(RULE, pan_on_file=True) == (1_000, None)
    assert dp.rate_for_payee(RULE, pan_on_file=False) == (2_000, "206AA")


def test_the_no_pan_note_says_why_and_what_to_do():
    note = dp.no_pan_note(2_000, 1_000, yours=True)
    assert note == (
        "No PAN on file: TDS at 20% (section 206AA). Add your PAN to have 10% deducted on "
        "later payouts."
    )
    assert note.template == dp.MSG_NO_PAN_YOURS  # said in the reader's language
    entered = dp.no_pan_note(2_000, 1_000, yours=True, pan_now=True)
    assert entered == (
        "No PAN was on file when this payout was made: TDS at 20% (section 206AA). Your PAN "
        "is on file now: later payouts deduct 10%."
    )
    assert dp.no_pan_note(2_000, 1_000) == (
        "Section 206AA: the provider had no PAN on file when this payout was made, so TDS "
        "was deducted at 20%; with a PAN on file, payouts deduct 10%."
    )


# --- the policy setting ---------------------------------------------------------------------


def test_the_setting_round_trips_and_an_old_version_reads_20_percent():
    data = to_data(DEFAULT_POLICY)
    assert data["tds_rules"][0]["no_pan_rate_bps"] == 2_000
    data["tds_rules"][0]["no_pan_rate_bps"] = 3_000
    assert from_data(data).tds_rule_for("2026-27").no_pan_rate_bps == 3_000
    del data["tds_rules"][0]["no_pan_rate_bps"]  # a version stored before the setting
    assert from_data(data).tds_rule_for("2026-27").no_pan_rate_bps == 2_000


def _with(**values):
    data = to_data(DEFAULT_POLICY)
    data["tds_rules"][0].update(values)
    return data


def test_the_no_pan_rate_is_at_least_the_rate():
    errors = problems(_with(rate_bps=2_500, no_pan_rate_bps=2_000))
    assert errors == {
        "tds_rules.0.no_pan_rate_bps": (
            "The TDS rate without a PAN cannot be below the TDS rate (25%): section 206AA "
            "deducts the higher of the two."
        )
    }
    assert problems(_with(rate_bps=2_500, no_pan_rate_bps=2_500)) == {}


@pytest.mark.parametrize("bps", [0, 1_000, 1_999])
def test_the_no_pan_rate_is_at_least_20_percent(bps):
    assert problems(_with(no_pan_rate_bps=bps)) == {
        "tds_rules.0.no_pan_rate_bps": (
            "Section 206AA deducts at least 20% from a payee without a PAN: enter 20 or more."
        )
    }


def test_the_no_pan_rate_is_a_percentage():
    assert "tds_rules.0.no_pan_rate_bps" in problems(_with(no_pan_rate_bps=10_001))


def test_the_floor_is_one_the_form_shows():
    assert FLOORS["tds_rules.0.no_pan_rate_bps"] == 2_000
    assert FLOOR_SOURCES["tds_rules.0.no_pan_rate_bps"] == "section 206AA"
