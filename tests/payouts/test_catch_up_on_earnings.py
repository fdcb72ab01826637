"""The provider's own page explains a TDS catch-up payout with the rule the admin sees, and
its TDS card says when 10% applies to each payout and which figures are gross or net
(review finding: "Payout #29: ₹1,022.50 to your bank + ₹5,627.50 TDS" with no word why,
and "TDS applies once the year's payouts exceed ₹50,000" beside ₹76,225 paid out)."""

from portal.domain.payouts import catch_up_note
from portal.domain.policy import DEFAULT_POLICY
from tests.payouts.conftest import payouts_of

# On file: these payouts deduct 194J's 10% (without one, section 206AA's 20%).
PAN = "ABCPK1234L"

NOTE = "TDS catch-up: this payout took your gross payouts for FY"


def test_the_note_says_one_rule_to_the_admin_and_to_the_provider():
    rule = DEFAULT_POLICY.tds_rule_for("2026-27")
    admin = catch_up_note(665_000, 562_750, rule, "2026-27")
    yours = catch_up_note(665_000, 562_750, rule, "2026-27", yours=True)
    assert admin.startswith("TDS catch-up: this payout took the provider's gross payouts")
    assert yours.startswith(NOTE)
    assert admin.split("gross payouts", 1)[1] == yours.split("gross payouts", 1)[1]
    assert catch_up_note(665_000, 66_500, rule, "2026-27", yours=True) is None


def _crossed(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0, pan=PAN)
    world.earn(provider, user, 45_000_00)
    x.settle()
    world.earn(provider, user, 10_000_00)
    x.settle()
    first, second = payouts_of(provider.id)
    assert (first.tds, second.tds) == (0, 5_500_00)
    return provider, user, first, second


def test_the_earnings_page_explains_the_catch_up_and_the_tds_card(world, x, client, login):
    provider, user, first, second = _crossed(world, x)
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    payouts = html.split('id="payouts"', 1)[1]
    row = payouts.split(f'id="payout-{second.id}"', 1)[1].split("</tr>", 1)[0]
    assert NOTE in row and "over the ₹50,000 threshold" in row
    assert NOTE not in payouts.split(f'id="payout-{first.id}"', 1)[1].split("</tr>", 1)[0]
    statement = html.split('id="statement"', 1)[1].split("</section>", 1)[0]
    assert statement.count(NOTE) == 1
    card = html.split('id="tds"', 1)[1].split("</section>", 1)[0]
    assert "10% TDS now applies to each payout" in card
    assert "TDS applies once" not in card
    assert (
        "₹55,000 gross (before TDS)" in card
        and "₹49,500 after TDS (payouts still on their way included)" in card
    )


def test_below_the_threshold_the_card_says_when_tds_starts(world, x, client, login):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 10_000_00)
    x.settle()
    login(user)
    card = client.get("/provider/earnings").get_data(as_text=True).split('id="tds"', 1)[1]
    card = card.split("</section>", 1)[0]
    assert "TDS applies once the year's gross payouts exceed ₹50,000." in card
    assert "now applies" not in card


def test_the_provider_s_note_and_card_are_said_in_hindi(app):
    from flask_babel import force_locale

    from portal.web.filters import translate

    rule = DEFAULT_POLICY.tds_rule_for("2026-27")
    note = catch_up_note(665_000, 562_750, rule, "2026-27", yours=True)
    with app.test_request_context(), force_locale("hi"):
        said = translate(note)
    assert said != str(note) and "₹50,000" in said and "194J" in said and "2026-27" in said
