"""Section 206AA on the pages: the provider's earnings page (its TDS card, the payout's
row and its statement line) says why more was deducted and where to fix it, in English
and Hindi; the bank page's PAN card says what a missing PAN costs; the admin's payout
page, the TDS report and its CSV show the rate applied and mark the 206AA rows."""

import re
from datetime import date

from flask_babel import refresh

from portal.accounts.models import User
from portal.catalog import pan as pan_service
from portal.exports import build
from portal.extensions import db
from portal.payouts import runs
from tests.i18n.untranslated import untranslated
from tests.payouts.conftest import payouts_of
from tests.plugin import csv_rows

PAN = "ABCPK1234L"
NO_PAN = (
    "No PAN on file: TDS at 20% (section 206AA). Add your PAN to have 10% deducted on later "
    "payouts."
)


def _crossed_without_a_pan(world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Meera")
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(provider, user, 3_000_000)  # the year at ₹60,000: 20% of it, no PAN
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    world.earn(provider, user, 1_000_000)  # 20% of ₹10,000
    runs.run_cycle("WEEKLY", date(2026, 11, 15))
    x.settle()
    return provider, user


def _card(html):
    return html.split('id="tds"', 1)[1].split("</section>", 1)[0]


def _payout_row(html, payout):
    return html.split(f'id="payout-{payout.id}"', 1)[1].split("</tr>", 1)[0]


def test_the_earnings_page_says_why_more_was_deducted_and_where_to_fix_it(
    mid_year, world, x, client, login
):
    provider, user = _crossed_without_a_pan(world, x)
    _first, crossing, later = payouts_of(provider.id)
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    card = _card(html)
    assert NO_PAN in re.sub(r"<[^>]+>", "", card), card
    assert 'href="/provider/bank#tds-pan"' in card  # the PAN entry page
    assert "20% TDS now applies to each payout" in card
    assert "₹14,000" in card  # 20% of ₹60,000 and of ₹10,000
    assert NO_PAN in _payout_row(html, later)
    crossing_row = _payout_row(html, crossing)
    assert "TDS catch-up" in crossing_row and NO_PAN in crossing_row
    assert "each later payout deducts" not in crossing_row  # 20% only while no PAN
    statement = html.split('id="statement"', 1)[1].split("</section>", 1)[0]
    assert statement.count(NO_PAN) == 2  # each 206AA payout's line

    bank = client.get("/provider/bank").get_data(as_text=True)
    pan_card = bank.split('id="tds-pan"', 1)[1].split("</section>", 1)[0]
    assert "Without it, TDS is deducted at 20% (section 206AA) instead of 10%." in pan_card


def test_after_the_pan_is_entered_the_page_says_later_payouts_deduct_10_percent(
    mid_year, world, x, client, login
):
    provider, user = _crossed_without_a_pan(world, x)
    pan_service.enter_own_pan(db.session.get(User, user.id), PAN, PAN)
    db.session.commit()
    later = payouts_of(provider.id)[-1]
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    card = _card(html)
    assert "206AA" not in card and "10% TDS now applies to each payout" in card
    assert "₹14,000" in card  # nothing deducted is changed
    assert (
        "No PAN was on file when this payout was made: TDS at 20% (section 206AA). Your PAN "
        "is on file now: later payouts deduct 10%."
    ) in _payout_row(html, later)


def test_the_206aa_words_in_hindi(mid_year, world, x, client, login):
    provider, user = _crossed_without_a_pan(world, x)
    later = payouts_of(provider.id)[-1]
    login(user)
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()  # Flask-Babel keeps the locale on the app context the builders hold
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert 'lang="hi' in html
    data = {"Dr Meera", "2026-27", "194J", "ABCPK1234L", user.email}
    card, row = _card(html), _payout_row(html, later)
    assert "206AA" in card and "20%" in card and "206AA" in row
    assert untranslated(card, data=data) == [] and untranslated(row, data=data) == []
    bank = client.get("/provider/bank").get_data(as_text=True)
    pan_card = bank.split('id="tds-pan"', 1)[1].split("</section>", 1)[0]
    assert "206AA" in pan_card and untranslated(pan_card, data=data) == []


def test_the_admins_payout_page_report_and_csv_show_the_rate_and_mark_206aa(
    mid_year, world, x, client, login, make_user
):
    doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Anil")
    doctor.pan = PAN
    db.session.commit()
    world.earn(doctor, doctor_user, 6_000_000)
    runs.run_cycle("WEEKLY", date(2026, 10, 25))
    x.settle()
    provider, _user = _crossed_without_a_pan(world, x)
    crossing = payouts_of(provider.id)[1]

    login(make_user("admin"))
    detail = client.get(f"/admin/payouts/{crossing.id}").get_data(as_text=True)
    assert "Section 206AA: the provider had no PAN on file when this payout was made" in detail
    assert "at 20% (section 206AA: no PAN)" in detail

    html = client.get("/admin/reports/tds?fy=2026-27").get_data(as_text=True)
    body = html.split('id="tds-rows"')[1].split("</table>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>")[1].split("</tbody>")[0], re.S)
    cells = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]
    assert [c[:5] for c in cells] == [
        ["Q3", "Dr Anil", PAN, "194J", "10%"],
        ["Q3", "Dr Meera", "not on file", "194J", "10%"],  # the ₹30,000 under the threshold
        ["Q3", "Dr Meera", "not on file", "194J", "20% (206AA: no PAN)"],
    ]
    assert 'class="tds-206aa"' in body
    assert "Rate" in body.split("</thead>")[0]
    total = body.split("<tfoot>")[1]
    assert "₹20,000" in total  # ₹6,000 + ₹14,000: the ledger's tds_payable

    parsed = csv_rows("".join(build("tds", {"fy": "2026-27"}).iter_csv()))
    header, data = parsed[5], parsed[6:]
    assert header == [
        "Financial year",
        "Quarter",
        "Provider",
        "PAN",
        "Section",
        "Rate (%)",
        "Higher rate",
        "Gross paid",
        "TDS deducted",
        "Payouts covered",
    ]
    assert data == [
        ["2026-27", "Q3", "Dr Anil", PAN, "194J", "10", "", "60000.00", "6000.00", "1"],
        ["2026-27", "Q3", "Dr Meera", "not on file", "194J", "10", "", "30000.00", "0.00", "1"],
        [
            "2026-27",
            "Q3",
            "Dr Meera",
            "not on file",
            "194J",
            "20",
            "206AA",
            "40000.00",
            "14000.00",
            "2",
        ],
        [],
        ["2026-27", "Total", "", "", "", "", "", "130000.00", "20000.00", "4"],
    ]


def test_pay_now_says_the_206aa_rate_before_the_admin_confirms(world, x, client, make_user, login):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 6_000_000)
    db.session.commit()
    login(make_user("admin"))
    ask = client.get(f"/admin/payouts/providers/{provider.id}/pay").get_data(as_text=True)
    assert "TDS deducted (section 194J, at 20% under section 206AA: no PAN on file): ₹12,000" in ask
    assert "Yes, pay ₹48,000" in ask
