"""Section 206AA: a provider without a PAN on file when a payout is made is deducted at the
higher of the rate in force and the policy's "TDS rate without a PAN" (20%), under the
same threshold rule (docs/payouts.md, "TDS without a PAN"). The payout records the rate
and why (``tds_rate_bps``, ``tds_higher_section``); once a PAN is entered the next
payouts go back to 10%, and nothing already deducted changes."""

from datetime import date

from portal.accounts.models import User
from portal.catalog import pan as pan_service
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.payouts import admin, runs
from portal.reports import tds
from tests.payouts.conftest import payouts_of

PAN = "ABCPK1234L"


def _three_payouts(world, x, provider, user, *, pan_before_third=False):
    """₹30,000 (under the threshold), ₹30,000 (crossing: the year at ₹60,000), ₹10,000."""
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    if pan_before_third:
        pan_service.enter_own_pan(db.session.get(User, user.id), PAN, PAN)
        db.session.commit()
    world.earn(provider, user, 1_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 15))
    x.settle()
    return payouts_of(provider.id)


def _report_equals_the_ledger():
    report = tds.report(tds.parse({"fy": "2026-27"}))
    assert report["tds"] == balance(chart.TDS_PAYABLE), (report["tds"], report["rows"])
    return report


def test_without_a_pan_the_crossing_payout_and_later_ones_deduct_20_percent(mid_year, world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    first, crossing, later = _three_payouts(world, x, provider, user)
    assert [p.tds for p in (first, crossing, later)] == [0, 1_200_000, 200_000], (
        "no PAN: 20% of the year's ₹60,000 at the crossing, then 20% of ₹10,000"
    )
    assert [(p.tds_rate_bps, p.tds_higher_section) for p in (first, crossing, later)] == [
        (1_000, None),  # nothing deducted: under the rule's own rate
        (2_000, "206AA"),
        (2_000, "206AA"),
    ]
    assert [p.tds_section for p in (crossing, later)] == ["194J", "194J"]
    assert balance(chart.TDS_PAYABLE) == 1_400_000
    _report_equals_the_ledger()


def test_with_a_pan_the_same_payouts_deduct_10_percent(mid_year, world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    provider.pan = PAN
    db.session.commit()
    payouts = _three_payouts(world, x, provider, user)
    assert [p.tds for p in payouts] == [0, 600_000, 100_000]
    assert {(p.tds_rate_bps, p.tds_higher_section) for p in payouts} == {(1_000, None)}
    _report_equals_the_ledger()


def test_a_pan_entered_after_the_crossing_brings_later_payouts_back_to_10_percent(
    mid_year, world, x
):
    """The crossing payout deducted 20% of ₹60,000 without a PAN; the PAN entered after it
    makes the next ₹10,000 deduct 10% (₹1,000). What was deducted stays: the replay takes
    the crossing payout under its own rate, so nothing is given back or asked again."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    first, crossing, later = _three_payouts(world, x, provider, user, pan_before_third=True)
    assert [p.tds for p in (first, crossing, later)] == [0, 1_200_000, 100_000]
    assert (crossing.tds_rate_bps, crossing.tds_higher_section) == (2_000, "206AA")
    assert (later.tds_rate_bps, later.tds_higher_section) == (1_000, None)
    report = _report_equals_the_ledger()
    # The report shows each rate apart, the 206AA row marked.
    q3 = sorted(
        (r.rate_bps, r.higher_section, int(r.gross), int(r.tds), int(r.payouts))
        for r in report["rows"]
    )
    assert q3 == [
        (1_000, None, 4_000_000, 100_000, 2),  # the ₹30,000 under the threshold, the ₹10,000
        (2_000, "206AA", 3_000_000, 1_200_000, 1),
    ]
    # The provider's own quarter adds the rows up.
    [quarter] = [q for q in tds.for_provider(provider, "2026-27") if q.payouts]
    assert (quarter.gross, quarter.tds, quarter.payouts) == (7_000_000, 1_300_000, 3)


def test_pay_now_shows_and_pays_the_no_pan_rate(mid_year, world, x, make_user):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 6_000_000)
    shown = admin.pay_now_preview(provider.id)
    assert (shown.gross, shown.tds, shown.net) == (6_000_000, 1_200_000, 4_800_000)
    actor = db.session.get(User, make_user("admin").id)
    payout = admin.pay_now(actor, provider.id, shown.gross, shown.net)
    assert (payout.tds, payout.tds_higher_section) == (1_200_000, "206AA")
    x.settle()
    _report_equals_the_ledger()


def test_a_reversed_no_pan_payout_gives_its_tds_back_and_the_next_is_taxed_anew(mid_year, world, x):
    """The crossing payout (20% of ₹60,000) comes back reversed; the PAN is entered; the
    money is paid again with the PAN on file: 10% of the year's ₹60,000."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 6_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.commit()
    [crossing] = payouts_of(provider.id)
    assert crossing.tds == 1_200_000
    x.sandbox.set_faults(payout_outcome="reversed")
    x.sandbox.store.force_outcome(crossing.attempt_rows[0].razorpay_payout_id or "", "reversed")
    x.settle()
    x.sandbox.set_faults(payout_outcome="processed")
    pan_service.enter_own_pan(db.session.get(User, user.id), PAN, PAN)
    db.session.commit()
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    crossing, again = payouts_of(provider.id)
    assert crossing.returned and (again.gross, again.tds) == (6_000_000, 600_000)
    assert again.tds_higher_section is None
    assert balance(chart.TDS_PAYABLE) == 600_000
    _report_equals_the_ledger()
