"""A TDS rule (rate, threshold) changed by a policy version partway through a financial
year (review finding). docs/policy.md: payouts are "paid under the rules of the day they
are paid". Each payout keeps the rule it was deducted under (``tds_rate_bps``,
``tds_threshold``): the year's replay takes each earlier payout under its own rule, only
the new payout under today's, and a payout's TDS note states its own rule."""

from datetime import UTC, date, datetime

import time_machine

from portal.accounts.models import User
from portal.extensions import db
from portal.payouts import runs
from portal.payouts.create import tds_for_next
from portal.payouts.reports import payout_tds_note, tds_this_year
from portal.policies import service as svc
from portal.policies import store
from portal.reports import tds
from tests.conftest import PASSWORD
from tests.payouts.conftest import payouts_of

# On file: these payouts deduct 194J's 10% (without one, section 206AA's 20%).
PAN = "ABCPK1234L"

REASON = "TDS rate corrected by the finance team"


def _admins(make_user):
    return [db.session.get(User, make_user("admin").id) for _ in range(2)]


def _change_tds(make_user, **values):
    maker, checker = _admins(make_user)
    changes = {f"tds_rules.0.{name}": value for name, value in values.items()}
    version = svc.propose(maker, changes, reason=REASON)
    svc.approve(checker, version.id, note="Checked with the CA")
    store.forget()


def _three_payouts_with_a_rate_change_before_the_third(world, x, make_user, bps):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 3_000_000)  # ₹30,000
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(provider, user, 3_000_000)  # ₹60,000 > ₹50,000: 10% of ₹60,000 = ₹6,000
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    _change_tds(make_user, rate_bps=bps)  # from now on: bps
    world.earn(provider, user, 1_000_000)  # ₹10,000
    runs.run_cycle("WEEKLY", date(2026, 11, 15))
    x.settle()
    return payouts_of(provider.id)


def test_a_lowered_rate_applies_to_the_next_payout_not_to_the_years_earlier_ones(
    mid_year, world, x, make_user
):
    """The first two payouts were taxed under 10% (₹6,000 at the crossing). The rate is 5%
    from now: the third payout of ₹10,000 deducts 5% of its own gross, ₹500. The replay
    re-taxed the year's earlier payouts at 5% and gave the 'excess' ₹3,000 back on this
    payout, so it deducted nothing."""
    first, crossing, third = _three_payouts_with_a_rate_change_before_the_third(
        world, x, make_user, 500
    )
    assert (first.tds, crossing.tds) == (0, 600_000)
    assert third.tds == 50_000, f"third payout deducted {third.tds} paise, not 5% of ₹10,000"
    # Each keeps the rule it was deducted under.
    assert [(p.tds_rate_bps, p.tds_threshold) for p in (first, crossing, third)] == [
        (1_000, 5_000_000),
        (1_000, 5_000_000),
        (500, 5_000_000),
    ]


def test_a_raised_rate_applies_to_the_next_payout_not_to_the_years_earlier_ones(
    mid_year, world, x, make_user
):
    """The same with the rate raised to 20%: the third payout deducts 20% of ₹10,000
    (₹2,000); the replay added another 10% of the year's ₹60,000 (₹6,000): ₹8,000."""
    _first, _crossing, third = _three_payouts_with_a_rate_change_before_the_third(
        world, x, make_user, 2_000
    )
    assert third.tds == 200_000, f"third payout deducted {third.tds} paise, not 20% of ₹10,000"


def test_a_raised_threshold_leaves_the_years_earlier_tds_where_it_is(mid_year, world, x, make_user):
    """The threshold raised to ₹1,00,000 after the year crossed ₹50,000: the next payout
    (the year now at ₹70,000, under the new threshold) deducts nothing, and the ₹6,000
    already deducted at the crossing is neither given back nor asked for again; the payout
    that takes the year over ₹1,00,000 deducts 10% of the gross not taxed yet (₹10,000 and
    its own ₹40,000)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 6_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    _change_tds(make_user, threshold=10_000_000)
    world.earn(provider, user, 1_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    world.earn(provider, user, 4_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 15))
    x.settle()
    crossing, under, over = payouts_of(provider.id)
    assert (crossing.tds, under.tds, over.tds) == (600_000, 0, 500_000)
    assert (crossing.tds_rate_bps, crossing.tds_threshold) == (1_000, 5_000_000)
    assert (under.tds_rate_bps, under.tds_threshold) == (1_000, 10_000_000)


def test_a_payout_reversed_after_a_rate_change_is_settled_under_each_payouts_own_rule(
    mid_year, world, x, make_user
):
    """The catch-up step still settles a reversal: ₹60,000 crosses under 10% (₹6,000), a
    ₹10,000 payout (₹1,000) comes back reversed, the rate goes to 5%, and the next payout
    (the ₹10,000 back and ₹10,000 more) deducts 5% of its own ₹20,000, ₹1,000. The old
    replay took the crossing payout at 5% too (₹3,000 due, ₹6,000 deducted) and gave the
    ₹3,000 back on it: it deducted nothing."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 6_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    world.earn(provider, user, 1_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    db.session.commit()
    second = payouts_of(provider.id)[-1]
    x.sandbox.set_faults(payout_outcome="reversed")
    x.sandbox.store.force_outcome(second.attempt_rows[0].razorpay_payout_id or "", "reversed")
    x.settle()
    x.sandbox.set_faults(payout_outcome="processed")
    _change_tds(make_user, rate_bps=500)
    world.earn(provider, user, 1_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 15))
    x.settle()
    crossing, reversed_, third = payouts_of(provider.id)
    assert (crossing.tds, reversed_.tds, reversed_.returned) == (600_000, 100_000, True)
    assert (third.gross, third.tds) == (2_000_000, 100_000)
    assert tds_this_year(provider.id)[1:] == (700_000, 8_000_000)


def test_a_payouts_tds_note_states_the_rule_it_was_deducted_under(
    mid_year, world, x, make_user, client
):
    """A regular payout taxed 10% of its own gross (₹1,000 on ₹10,000) under the old rate.
    After the rate was lowered to 5%, the provider's statement and the admin's payout page
    called it a 'TDS catch-up' that 'took your gross over the threshold' at '5%': both
    false. The crossing payout's note still says 10%."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    world.earn(provider, user, 1_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 15))
    x.settle()
    _first, crossing, regular = payouts_of(provider.id)
    assert regular.tds == 100_000  # 10% of ₹10,000: no catch-up
    assert payout_tds_note(regular) is None  # before the change: no note
    _change_tds(make_user, rate_bps=500)
    note = payout_tds_note(regular)
    assert note is None, f"a regular 10% payout is now described as: {note}"
    assert "so 10% of the year's untaxed gross" in str(payout_tds_note(crossing))

    admin = make_user("admin")
    client.post("/auth/login", data={"email": admin.email, "password": PASSWORD})
    html = client.get(f"/admin/payouts/{regular.id}").get_data(as_text=True)
    assert f"<h1>Payout {regular.id} " in html and 'id="tds-note"' not in html
    html = client.get(f"/admin/payouts/{crossing.id}").get_data(as_text=True)
    note = html.split('id="tds-note">')[1].split("</td>")[0]
    assert "catch-up" in note and "so 10% of the year" in note and "5%" not in note


LATER_UNDER_ITS_RULE = (
    "(section 194J); under the rule of that day, each later payout deducts 10% of its own gross."
)


def test_a_catch_up_note_says_later_payouts_under_its_own_days_rule(
    app, mid_year, world, x, make_user
):
    """Re-read finding: the crossing payout's note ended "later payouts deduct 10% of their
    own gross", true of the rule it was deducted under but, read after the rate went to 5%,
    a claim about today's later payouts that is false. It says it of that day's rule, in
    both voices and in Hindi."""
    from flask_babel import force_locale

    from portal.payouts.common import tds_note
    from portal.web.filters import translate

    _first, crossing, _third = _three_payouts_with_a_rate_change_before_the_third(
        world, x, make_user, 500
    )
    for note in (payout_tds_note(crossing), tds_note(crossing)):
        assert str(note).endswith(LATER_UNDER_ITS_RULE), note
        assert "later payouts deduct" not in note
    with app.test_request_context(), force_locale("hi"):
        said = translate(payout_tds_note(crossing))
    assert "उस दिन के नियम के अनुसार आगे के हर भुगतान से" in said and "194J" in said, said


def test_the_tds_report_and_the_providers_pages_agree_after_a_rate_change(
    world, x, make_user, client, login
):
    """Both read the payouts' stored TDS: after the rate went from 10% to 5% in Q3, the
    admin's report per quarter, its CSV, the provider's TDS by quarter and the earnings
    page's "TDS this financial year" all equal the sum of what was deducted."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Asha", pan=PAN)

    def at(day):
        return time_machine.travel(datetime.combine(day, datetime.min.time(), UTC).replace(hour=6))

    with at(date(2026, 8, 10)):  # Q2: crosses under 10% (₹6,000)
        world.earn(provider, user, 6_000_000)
        runs.run_cycle("WEEKLY", date(2026, 8, 10))
        x.settle()
    with at(date(2026, 10, 5)):  # Q3: the rate goes to 5%; ₹10,000 deducts ₹500
        _change_tds(make_user, rate_bps=500)
        world.earn(provider, user, 1_000_000)
        runs.run_cycle("WEEKLY", date(2026, 10, 5))
        x.settle()
    with at(date(2026, 10, 20)):
        assert [p.tds for p in payouts_of(provider.id)] == [600_000, 50_000]
        assert tds_for_next(provider.id, "2026-27", 1_000_000)[0] == 50_000
        report = tds.report(tds.parse({"fy": "2026-27"}))
        by = {r.quarter: (r.gross, r.tds, r.payouts) for r in report["rows"]}
        assert by == {"Q2": (6_000_000, 600_000, 1), "Q3": (1_000_000, 50_000, 1)}
        assert tds_this_year(provider.id) == ("2026-27", 650_000, 7_000_000)
        login(user)
        page = client.get("/provider/earnings/tds?fy=2026-27").get_data(as_text=True)
        total = page.split('<tr id="tds-total"')[1].split("</tr>")[0]
        assert 'data-amount="650000"' in total and 'data-amount="7000000"' in total
        body = client.get("/provider/earnings/tds.csv?fy=2026-27").get_data(as_text=True)
        assert "6500.00" in body and "500.00" in body
