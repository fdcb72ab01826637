"""A doctor's own "TDS by quarter" (``/provider/earnings/tds`` and its CSV), seeded through
the real payout engine over FY 2026-27: a crossing payout and one more in Q1, the second
failing for good in Q2 (taken back there), nothing in Q3, two payouts in Q4 of which one
comes back after the year ended (taken back in Q4, docs/payouts.md "TDS"). Each quarter
of the page and of the file equals the admin TDS report's row for the provider, a nil
quarter is a ₹0.00 row, another provider's payouts never show, whatever is sent."""

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
import time_machine
from flask_babel import refresh

from portal.extensions import db
from portal.payouts import runs
from portal.payouts.reports import tds_this_year
from portal.reports import tds
from tests.i18n.untranslated import untranslated
from tests.payouts.conftest import payouts_of
from tests.plugin import csv_rows

FY = "2026-27"
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
# Read in the next year: the March payout has come back, the current year is 2027-28.
AFTER = datetime(2027, 4, 20, 6, 0, tzinfo=UTC)
PAN = "ABCPA1234F"
# The provider's file's last columns: the part of a quarter's TDS at section 206AA's rate.
HIGHER_RATE_HEADERS = ["Higher rate", "Higher rate (%)", "TDS at the higher rate"]


def _at(day):
    return time_machine.travel(datetime.combine(day, datetime.min.time(), UTC).replace(hour=6))


@pytest.fixture
def year(app, world, x, immediate_retries):
    """Asha's year (see the module's docstring) and Ravi's one payout; their users. A
    failed attempt is retried at once (``immediate_retries``)."""
    asha, asha_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Asha")
    ravi, ravi_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Ravi")
    asha.pan = PAN
    db.session.commit()
    with _at(date(2026, 6, 20)):  # Q1: Asha crosses the threshold at once (10 % of ₹60,000)
        world.earn(asha, asha_user, 6_000_000)
        world.earn(ravi, ravi_user, 3_000_000)  # Ravi: below it, no TDS
        runs.run_cycle("WEEKLY", date(2026, 6, 20))
        x.settle()
    x.sandbox.set_faults(payout_outcome="failed")
    with _at(date(2026, 6, 27)):  # Q1: ₹10,000 more, TDS ₹1,000 …
        world.earn(asha, asha_user, 1_000_000)
        runs.run_cycle("WEEKLY", date(2026, 6, 27))
        db.session.commit()
    with _at(date(2026, 7, 6)):  # … failing for good in Q2 (three attempts): taken back
        x.settle()
    x.sandbox.set_faults(payout_outcome="processed")
    with _at(date(2027, 3, 8)):  # Q4: ₹20,000 earned and the ₹10,000 back: TDS ₹3,000
        world.earn(asha, asha_user, 2_000_000)
        runs.run_cycle("WEEKLY", date(2027, 3, 8))
        x.settle()
    with _at(date(2027, 3, 22)):  # Q4: ₹40,000, TDS ₹4,000, reversed by the bank …
        world.earn(asha, asha_user, 4_000_000)
        runs.run_cycle("WEEKLY", date(2027, 3, 22))
        db.session.commit()
        march = payouts_of(asha.id)[-1]
        x.sandbox.set_faults(payout_outcome="reversed")
        x.sandbox.store.force_outcome(march.attempt_rows[0].razorpay_payout_id, "reversed")
    with _at(date(2027, 4, 5)):  # … in April, after the year ended: taken back in Q4
        x.settle()
    x.sandbox.set_faults(payout_outcome="processed")
    payouts = payouts_of(asha.id)
    assert [(p.gross, p.tds, p.returned) for p in payouts] == [
        (6_000_000, 600_000, False),
        (1_000_000, 100_000, True),
        (3_000_000, 300_000, False),
        (4_000_000, 400_000, True),
    ]
    assert payouts[1].status == "FAILED" and payouts[1].attempts == 3
    return asha, asha_user, ravi, ravi_user


# Asha's quarters: (gross, TDS, payouts), integer paise.
EXPECTED = {
    "Q1": (7_000_000, 700_000, 2),
    "Q2": (-1_000_000, -100_000, -1),  # the failed payout taken back
    "Q3": (0, 0, 0),  # nil
    "Q4": (3_000_000, 300_000, 1),  # the March reversal (in April) nets out in Q4
}


def test_the_year_shown_is_one_of_theirs_or_the_current_one_with_a_notice():
    years = ["2027-28", "2026-27"]
    assert tds.provider_year(None, years, "2027-28") == ("2027-28", None)
    assert tds.provider_year(" 2026-27 ", years, "2027-28") == ("2026-27", None)
    for asked in ("2019-20", "2026-2027", "banana"):
        fy, notice = tds.provider_year(asked, years, "2027-28")
        assert (
            fy == "2027-28" and notice == "Choose a financial year from the list. Showing 2027-28."
        )
        assert asked not in notice  # what was typed is not echoed


def _page_rows(html):
    """{quarter: (gross, TDS, payouts)} of the page's table, and its total."""
    rows = {}
    for key in (*(q.lower() for q in QUARTERS), "total"):
        row = html.split(f'<tr id="tds-{key}"')[1].split("</tr>")[0]
        gross, tax = map(int, re.findall(r'data-amount="(-?\d+)"', row))
        payouts = int(re.sub(r"<[^>]+>", "", row.split("<td")[-1].split(">", 1)[1]).strip())
        rows[key.upper() if key != "total" else "Total"] = (gross, tax, payouts)
    return rows


def _admin_rows(provider_name):
    report = tds.report(tds.parse({"fy": FY}))  # every provider: the admin's page
    return {
        r.quarter: (r.gross, r.tds, r.payouts)
        for r in report["rows"]
        if r.provider == provider_name
    }


def test_each_quarter_equals_the_admin_reports_row_and_a_nil_quarter_shows(
    year, app, client, login
):
    asha, asha_user, ravi, _ravi_user = year
    admin = _admin_rows("Dr Asha")
    assert set(admin) == {"Q1", "Q2", "Q4"}  # the report has no row for a nil quarter
    assert admin == {q: EXPECTED[q] for q in admin}
    with time_machine.travel(AFTER):  # signed in then: a session idle since would have ended
        login(asha_user)
        answer = client.get(f"/provider/earnings/tds?fy={FY}")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    page = _page_rows(html)
    for quarter in QUARTERS:
        assert page[quarter] == admin.get(quarter, (0, 0, 0)) == EXPECTED[quarter], quarter
    assert page["Total"] == (9_000_000, 900_000, 2)
    # The year's total is the earnings page's "TDS this financial year" of that year.
    assert tds_this_year(asha.id, datetime(2027, 3, 31, tzinfo=UTC)) == (FY, 900_000, 9_000_000)
    q3 = html.split('<tr id="tds-q3"')[1].split("</tr>")[0]
    assert "Q3 (Oct–Dec 2026)" in q3 and "194J" in q3 and q3.count("₹0.00") == 2
    assert "Q4 (Jan–Mar 2027)" in html and "Q1 (Apr–Jun 2026)" in html
    assert "ABCPA••••F" in html and PAN not in html  # the PAN masked
    assert "Dr Ravi" not in html
    assert 'id="tan"' not in html  # no CLINIC_TAN set: the line is left out
    # The years they have payouts in, and the current one (the default).
    choice = html.split('<select id="fy"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]+)"', choice) == ["2027-28", FY]


def test_the_default_is_the_current_year_and_a_bad_year_falls_back_with_a_message(
    year, client, login
):
    _asha, asha_user, _ravi, _ravi_user = year
    with time_machine.travel(AFTER):  # signed in then: a session idle since would have ended
        login(asha_user)
        default = client.get("/provider/earnings/tds").get_data(as_text=True)
        assert "Financial year 2027-28" in default and 'role="alert"' not in default
        assert _page_rows(default)["Total"] == (0, 0, 0)  # nothing paid in 2027-28 yet
        for bad in ("2019-20", "banana", "2026-2027", "9999-00", " 2025 ", "x" * 500):
            answer = client.get("/provider/earnings/tds", query_string={"fy": bad})
            html = answer.get_data(as_text=True)
            assert answer.status_code == 200, bad
            assert "Choose a financial year from the list. Showing 2027-28." in html, bad
            assert "Financial year 2027-28" in html
        assert client.get("/provider/earnings/tds?fy=2026-27%00").status_code < 500
        # The file of a year not theirs is not another year's file: the page says why.
        refused = client.get("/provider/earnings/tds.csv?fy=2019-20")
        assert refused.status_code == 422 and refused.mimetype == "text/html"
        assert "Choose a financial year from the list." in refused.get_data(as_text=True)


def test_another_providers_payouts_never_show_whatever_is_sent(
    year, app, client, login, monkeypatch
):
    asha, _asha_user, _ravi, ravi_user = year
    monkeypatch.setitem(app.config, "CLINIC_TAN", "BLRA12345E")
    with time_machine.travel(AFTER):  # signed in then: a session idle since would have ended
        login(ravi_user)
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
        assert "deducts this TDS under its TAN BLRA12345E" in html
        page = _page_rows(html)
        assert page["Q1"] == (3_000_000, 0, 1) == _admin_rows("Dr Ravi")["Q1"]
        assert page["Total"] == (3_000_000, 0, 1)
        assert "ABCPA" not in html  # Asha's PAN; Ravi has none, and is sent to enter it
        assert re.search(r'PAN not on file — <a href="/provider/bank#tds-pan">add it on', html)
        # Asha's id in every parameter a handler might read: still Ravi's own figures.
        sneaky = {"fy": FY, "provider_id": asha.id, "provider": asha.id, "id": asha.id}
        again = client.get("/provider/earnings/tds", query_string=sneaky).get_data(as_text=True)
        assert _page_rows(again) == page
        file = client.get("/provider/earnings/tds.csv", query_string=sneaky)
        assert file.status_code == 200 and file.mimetype == "text/csv"
        rows = csv_rows(file.get_data(as_text=True))
        assert "Provider: Dr Ravi" in rows[1][0] and "Asha" not in file.get_data(as_text=True)
        # Q1's figures, then no part at a higher rate (the file's last three columns).
        assert rows[6][5:] == ["30000.00", "0.00", "1", "", "", "0.00"]


def test_the_csv_has_the_pages_rows_and_total(year, app, client, login):
    _asha, asha_user, _ravi, _ravi_user = year
    with time_machine.travel(AFTER):  # signed in then: a session idle since would have ended
        login(asha_user)
        answer = client.get(f"/provider/earnings/tds.csv?fy={FY}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert 'filename="tds-2026-27-' in answer.headers["Content-Disposition"]
    rows = csv_rows(answer.get_data(as_text=True))
    assert rows[0] == ["Report: TDS by quarter"]
    assert rows[1] == ["Filters: Financial year: 2026-27; Provider: Dr Asha"]
    # The section 206AA columns come last (below): a spreadsheet built on the file before
    # they were added reads the same columns where it did.
    assert rows[5:] == [
        ["Financial year", "Quarter", "Months", "PAN", "Section", "Gross of payouts made",
         "TDS deducted", "Payouts covered", *HIGHER_RATE_HEADERS],
        ["2026-27", "Q1", "Apr–Jun 2026", "ABCPA••••F", "194J", "70000.00", "7000.00", "2",
         "", "", "0.00"],
        ["2026-27", "Q2", "Jul–Sep 2026", "ABCPA••••F", "194J", "-10000.00", "-1000.00", "-1",
         "", "", "0.00"],
        ["2026-27", "Q3", "Oct–Dec 2026", "ABCPA••••F", "194J", "0.00", "0.00", "0",
         "", "", "0.00"],
        ["2026-27", "Q4", "Jan–Mar 2027", "ABCPA••••F", "194J", "30000.00", "3000.00", "1",
         "", "", "0.00"],
        [],
        ["2026-27", "Total", "", "", "", "90000.00", "9000.00", "2", "", "", "0.00"],
    ]  # fmt: skip
    # The admin's TDS export: every provider, the PAN as on file, the rate applied.
    login(_admin(app))
    admin = client.get(f"/admin/reports/tds?fy={FY}&format=csv")
    admin_rows = csv_rows(admin.get_data(as_text=True))
    assert admin_rows[5][:4] == ["Financial year", "Quarter", "Provider", "PAN"]
    assert ["2026-27", "Q1", "Dr Asha", PAN, "194J", "10", "", "70000.00", "7000.00", "2"] in (
        admin_rows
    )


def _admin(app):
    from portal.accounts.models import User
    from tests.plugin import user_maker

    made = user_maker(app)("admin")
    return db.session.get(User, made.id)


def test_the_page_in_hindi(year, app, client, login, monkeypatch):
    _asha, asha_user, _ravi, _ravi_user = year
    monkeypatch.setitem(app.config, "CLINIC_TAN", "BLRA12345E")
    with time_machine.travel(AFTER):  # signed in then: a session idle since would have ended
        login(asha_user)
        client.post("/language", data={"language": "hi", "next": "/"})
        # Flask-Babel keeps the locale on the app context, which the world's builders
        # hold for the whole test (tests/payouts/test_payouts_web.py): read it again.
        refresh()
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
    assert 'lang="hi-IN"' in html
    assert "Q1 (अप्रैल–जून 2026)" in html and "Q4 (जन॰–मार्च 2027)" in html
    assert "BLRA12345E" in html and "ABCPA••••F" in html
    assert _page_rows(html)["Total"] == (9_000_000, 900_000, 2)
    data = {"Dr Asha", "ABCPA••••F", "BLRA12345E", "194J", FY, "2027-28", asha_user.email}
    assert untranslated(html, data=data) == []


def test_a_pan_entered_shows_on_the_tds_pages_and_the_admins_report(
    year, app, client, login, make_user
):
    """Ravi had none ("not on file" on both pages): he enters his PAN on his bank page; his
    TDS page and file show it masked, the admin's TDS report in full. The admin corrects
    it on Ravi's provider form: every page shows the correction."""
    from portal.catalog.models import Specialization

    _asha, _asha_user, ravi, ravi_user = year
    ravi.specializations = [db.session.scalar(sa.select(Specialization))]  # his form needs one
    db.session.commit()
    admin = make_user("admin")
    with time_machine.travel(AFTER):  # signed in then: a session idle since would have ended
        login(admin)
        report = client.get(f"/admin/reports/tds?fy={FY}").get_data(as_text=True)
        assert _report_pans(report) == {"Dr Asha": PAN, "Dr Ravi": "not on file"}
        login(ravi_user)
        saved = client.post(
            "/provider/bank/pan", data={"pan": "bcdpr5678k", "confirm_pan": "BCDPR5678K"}
        )
        assert saved.status_code == 303
        page = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
        assert "Your PAN on file: BCDPR••••K" in page and "BCDPR5678K" not in page
        rows = csv_rows(client.get(f"/provider/earnings/tds.csv?fy={FY}").get_data(as_text=True))
        assert {row[3] for row in rows[6:10]} == {"BCDPR••••K"}
        login(admin)
        report = client.get(f"/admin/reports/tds?fy={FY}").get_data(as_text=True)
        assert _report_pans(report) == {"Dr Asha": PAN, "Dr Ravi": "BCDPR5678K"}
        # The admin corrects a digit on Ravi's form.
        form = {
            "display_name": "Dr Ravi",
            "kind": "DOCTOR",
            "registration_no": "KMC-77",
            "pan": "BCDPR5679K",
            "commission": "0",
            "payout_schedule": "WEEKLY",
            "clinic_ids": [str(c.id) for c in ravi.clinics],
            "specialization_ids": [str(s.id) for s in ravi.specializations],
            "active": "y",
        }
        assert client.post(f"/admin/providers/{ravi.id}/edit", data=form).status_code == 303
        report = client.get(f"/admin/reports/tds?fy={FY}").get_data(as_text=True)
        assert _report_pans(report)["Dr Ravi"] == "BCDPR5679K"
        login(ravi_user)
        file = client.get(f"/provider/earnings/tds.csv?fy={FY}").get_data(as_text=True)
        assert "BCDPR••••K" in file and "5679" not in file


def _report_pans(html):
    """{provider: PAN as the admin's TDS report shows it} of its rows."""
    table = html.split('<table id="tds-rows"')[1].split("</tbody>")[0]
    return {
        cells[1]: cells[2]
        for row in table.split("<tr>")[2:]
        if len(cells := re.findall(r"<td[^>]*>([^<]*)</td>", row)) > 2
    }


def test_the_gross_column_names_payouts_made_and_counts_one_awaiting_a_retry(
    mid_year, world, x, client, login
):
    """The column said "Gross paid" while it counts a payout that failed and waits for its
    retry (TDS is deducted when a payout is made: it counts until it fails for good):
    the heading says what it counts and the note says a payout on its way counts.

    ``mid_year``: the page opens on this financial year, the payout's (across 1 April
    00:00 IST it opened on the new year, nothing paid in it)."""
    from portal.db import utcnow
    from portal.domain.rates import financial_year

    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == "FAILED" and not payout.returned  # awaiting its retry
    login(user)
    html = client.get("/provider/earnings/tds").get_data(as_text=True)
    assert _page_rows(html)["Total"] == (100_000, 0, 1)
    assert financial_year(utcnow()) in html
    assert "Gross paid" not in html and ">Gross of payouts made<" in html
    assert (
        "A payout counts in the quarter it was made, even while it is still on its way or "
        "waiting for a retry."
    ) in html


def test_a_provider_without_a_profile_gets_no_file(client, login, make_user):
    """No profile, no figures: the CSV answers 404 with the page saying why, not a 200
    page at a ``.csv`` address (re-read finding); the page itself says so with a 200."""
    login(make_user("provider"))
    file = client.get("/provider/earnings/tds.csv")
    assert file.status_code == 404 and "text/html" in file.content_type
    assert client.get("/provider/earnings/tds").status_code == 200


# --- section 206AA: amounts deducted at the higher rate for want of a PAN ------------------

NO_PAN_MARK = "₹14,000.00 of it at 20% (section 206AA: no PAN on file when it was deducted)"


@pytest.fixture
def no_pan_year(app, world, x):
    """Meera, no PAN on file, in Q3 of 2026-27: ₹30,000 (under the threshold), ₹30,000
    (crossing: 20% of ₹60,000) and ₹10,000 (20%) under section 206AA; then she enters her
    PAN and ₹10,000 more deducts 10%. Q3's TDS, ₹15,000, is ₹14,000 at 20% and ₹1,000 at
    10%; the admin's report has a row for each rate, the 206AA one marked."""
    from portal.accounts.models import User
    from portal.catalog.pan import enter_own_pan

    meera, meera_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Meera")
    with _at(date(2026, 11, 20)):
        for day, amount in ((1, 3_000_000), (8, 3_000_000), (15, 1_000_000)):
            world.earn(meera, meera_user, amount)
            runs.run_cycle("WEEKLY", date(2026, 11, day))
        x.settle()
        enter_own_pan(db.session.get(User, meera_user.id), PAN, PAN)
        db.session.commit()
    with _at(date(2026, 11, 29)):
        world.earn(meera, meera_user, 1_000_000)
        runs.run_cycle("WEEKLY", date(2026, 11, 29))
        x.settle()
    assert [(p.tds, p.tds_higher_section) for p in payouts_of(meera.id)] == [
        (0, None),
        (1_200_000, "206AA"),
        (200_000, "206AA"),
        (100_000, None),
    ]
    return meera, meera_user


def test_amounts_deducted_at_section_206aas_rate_are_marked_as_the_admins_report_marks_them(
    no_pan_year, client, login
):
    """Review finding: the admin's TDS report marks a row at section 206AA's rate
    ("206AA"), the provider's own page summed it into the quarter with no word. The
    quarter now says how much of its TDS was at that rate: the report's marked rows."""
    meera, meera_user = no_pan_year
    marked = [r for r in tds.report(tds.parse({"fy": FY}))["rows"] if r.provider == "Dr Meera"]
    assert [(r.quarter, r.rate_bps, r.higher_section, r.tds) for r in marked] == [
        ("Q3", 1_000, None, 100_000),
        ("Q3", 2_000, "206AA", 1_400_000),
    ]
    with _at(date(2026, 11, 30)):
        login(meera_user)
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
    page = _page_rows(html)
    assert page["Q3"] == (8_000_000, 1_500_000, 4)  # the quarter's figures unchanged
    q3 = html.split('<tr id="tds-q3"')[1].split("</tr>")[0]
    assert 'class="tds-206aa"' in q3.split(">", 1)[0]
    assert NO_PAN_MARK in re.sub(r"<[^>]+>", "", q3)
    for quarter in ("q1", "q2", "q4"):
        row = html.split(f'<tr id="tds-{quarter}"')[1].split("</tr>")[0]
        assert "206AA" not in row and "tds-206aa" not in row.split(">", 1)[0]
    # The year's total says its part at that rate too (here all of it in Q3).
    total = html.split('<tr id="tds-total"')[1].split("</tr>")[0]
    assert "tds-206aa" in total.split(">", 1)[0]
    assert NO_PAN_MARK in re.sub(r"<[^>]+>", "", total)
    assert _page_rows(html)["Total"] == (8_000_000, 1_500_000, 4)


def test_a_quarter_at_the_rules_rate_only_is_not_marked(year, client, login):
    _asha, asha_user, _ravi, _ravi_user = year
    with time_machine.travel(AFTER):
        login(asha_user)
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
    assert "206AA" not in html and "tds-206aa" not in html


def test_the_206aa_mark_in_hindi(no_pan_year, app, client, login):
    _meera, meera_user = no_pan_year
    with _at(date(2026, 11, 30)):
        login(meera_user)
        client.post("/language", data={"language": "hi", "next": "/"})
        refresh()
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
    for row in ("q3", "total"):  # the quarter and the year's total alike
        cells = html.split(f'<tr id="tds-{row}"')[1].split("</tr>")[0]
        assert "206AA" in cells and "₹14,000.00" in cells and "20%" in cells, row
        assert "इसमें से ₹14,000.00 20% की दर से (धारा 206AA: कटौती के समय PAN" in cells, row
    data = {"Dr Meera", "ABCPA••••F", "194J", FY, meera_user.email}
    assert untranslated(html, data=data) == []


def test_the_csv_says_which_part_of_a_quarters_tds_was_at_section_206aas_rate(
    no_pan_year, app, client, login
):
    """Review finding: the admin's file says "206AA" in its "Higher rate" column, the
    provider's own file summed that row into the quarter with no word. Their file now
    ends with the admin file's "Higher rate" column, that rate and the TDS deducted at
    it; the Total row, the year's."""
    _meera, meera_user = no_pan_year
    with _at(date(2026, 11, 30)):
        login(meera_user)
        rows = csv_rows(client.get(f"/provider/earnings/tds.csv?fy={FY}").get_data(as_text=True))
        login(_admin(app))
        admin = client.get(f"/admin/reports/tds?fy={FY}&format=csv").get_data(as_text=True)
    assert rows[5][8:] == HIGHER_RATE_HEADERS
    assert rows[5][:8] == [
        "Financial year", "Quarter", "Months", "PAN", "Section", "Gross of payouts made",
        "TDS deducted", "Payouts covered",
    ]  # fmt: skip
    assert [row[1:2] + row[6:7] + row[8:] for row in rows[6:]] == [
        ["Q1", "0.00", "", "", "0.00"],
        ["Q2", "0.00", "", "", "0.00"],
        ["Q3", "15000.00", "206AA", "20", "14000.00"],  # of ₹15,000: ₹1,000 at 10%
        ["Q4", "0.00", "", "", "0.00"],
        [],
        ["Total", "15000.00", "206AA", "20", "14000.00"],
    ]
    # The same words as the admin's file: its column, and its marked row's cells.
    admin_rows = csv_rows(admin)
    column = admin_rows[5].index("Higher rate")
    marked = [r for r in admin_rows[6:] if r and r[2] == "Dr Meera" and r[column]]
    assert [(r[1], r[5], r[column], r[8]) for r in marked] == [("Q3", "20", "206AA", "14000.00")]


@pytest.fixture
def no_pan_two_quarters(app, world, x):
    """Kiran, no PAN on file: ₹60,000 in Q2 of 2026-27 crosses the threshold at section
    206AA's 20% (₹12,000), ₹10,000 in Q3 deducts ₹2,000 at it."""
    kiran, kiran_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Kiran")
    for day, amount in ((date(2026, 8, 10), 6_000_000), (date(2026, 11, 9), 1_000_000)):
        with _at(day):
            world.earn(kiran, kiran_user, amount)
            runs.run_cycle("WEEKLY", day)
            x.settle()
    assert [(p.tds, p.tds_higher_section) for p in payouts_of(kiran.id)] == [
        (1_200_000, "206AA"),
        (200_000, "206AA"),
    ]
    return kiran, kiran_user


def test_the_total_says_the_years_tds_at_section_206aas_rate(no_pan_two_quarters, client, login):
    """Review finding: the Total row was not marked while a quarter in it was. It says
    the year's TDS at that rate, the sum of the quarters' marked parts."""
    _kiran, kiran_user = no_pan_two_quarters
    with _at(date(2026, 11, 30)):
        login(kiran_user)
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
    marks = {}
    for row in ("q1", "q2", "q3", "q4", "total"):
        cells = html.split(f'<tr id="tds-{row}"')[1].split("</tr>")[0]
        marked = "tds-206aa" in cells.split(">", 1)[0]
        marks[row] = (marked, re.findall(r"₹[\d,.]+ of it at 20%", re.sub(r"<[^>]+>", "", cells)))
    assert marks == {
        "q1": (False, []),
        "q2": (True, ["₹12,000.00 of it at 20%"]),
        "q3": (True, ["₹2,000.00 of it at 20%"]),
        "q4": (False, []),
        "total": (True, ["₹14,000.00 of it at 20%"]),
    }
    assert _page_rows(html)["Total"] == (7_000_000, 1_400_000, 2)


def test_the_years_part_at_a_higher_rate_nets_out_as_a_quarters_does():
    """The total's part at a higher rate is the quarters' added up per rate: a 206AA
    payout made in Q3 and reversed in Q4 marks both quarters (₹12,000, −₹12,000) and
    leaves nothing at that rate in the year, so the total is not marked, as a quarter
    whose marked row nets to nothing is not (``for_provider``)."""

    def quarter(name, *higher):
        tax = sum(h.tds for h in higher)
        return tds.ProviderQuarter(name, "", "194J", gross=0, tds=tax, payouts=0, higher=higher)

    made = tds.HigherRate("206AA", 2_000, 1_200_000)
    back = tds.HigherRate("206AA", 2_000, -1_200_000)
    more = tds.HigherRate("206AA", 2_000, 200_000)
    other_rate = tds.HigherRate("206AA", 2_500, 50_000)  # the rule changed within the year
    total = tds.ProviderTotals()
    for q in (quarter("Q3", made), quarter("Q4", back)):
        total.add(q)
    assert total.higher() == () and total.tds == 0
    (row,) = total.rows()
    assert row.quarter == "Total" and row.higher == ()
    total = tds.ProviderTotals()
    for q in (quarter("Q1"), quarter("Q2", made), quarter("Q3", other_rate, more)):
        total.add(q)
    assert total.higher() == (
        tds.HigherRate("206AA", 2_000, 1_400_000),
        tds.HigherRate("206AA", 2_500, 50_000),
    )
    assert total.rows()[0].higher == total.higher()


class _CellParts(HTMLParser):
    """{(row id, cell label): the parts directly in the cell}, elements and text, as the
    phone test counts a cell's child nodes (tests/e2e/test_mobile.py)."""

    VOID = {"br", "img", "input", "wbr"}

    def __init__(self):
        super().__init__()
        self.row, self.cell, self.depth, self.parts = None, None, 0, {}

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = dict(attrs).get("id")
        elif tag == "td":
            self.cell, self.depth = (self.row, dict(attrs).get("data-label")), 0
            self.parts[self.cell] = 0
        elif self.cell is not None:
            self.parts[self.cell] += self.depth == 0
            self.depth += tag not in self.VOID

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif self.cell is not None and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.cell is not None and self.depth == 0 and data.strip():
            self.parts[self.cell] += 1


def test_an_amount_and_its_206aa_line_are_one_block_in_the_cell(no_pan_two_quarters, client, login):
    """On a phone a card's cell is a flex row: the TDS and the line under it as two flex
    items sat apart across the card (docs/mobile.md: a cell of two parts is one span)."""
    _kiran, kiran_user = no_pan_two_quarters
    with _at(date(2026, 11, 30)):
        login(kiran_user)
        html = client.get(f"/provider/earnings/tds?fy={FY}").get_data(as_text=True)
    table = _CellParts()
    table.feed(html.split('<section class="card" id="tds-quarters">')[1].split("</table>")[0])
    assert ("tds-total", "TDS deducted") in table.parts and (
        "tds-q2",
        "TDS deducted",
    ) in table.parts
    assert {cell: n for cell, n in table.parts.items() if n > 1} == {}


def test_a_part_below_nothing_is_said_as_tds_given_back():
    """Review finding: a 206AA payout reversed in a later quarter left that quarter's part
    below nothing, and the page read "−₹12,000.00 of it at 20% …" for money given back."""
    made = tds.HigherRate("206AA", 2000, 1_200_000).said()
    back = tds.HigherRate("206AA", 2000, -1_200_000).said()
    assert made == "₹12,000.00 of it at 20% (section 206AA: no PAN on file when it was deducted)"
    assert back == (
        "₹12,000.00 of it given back, deducted at 20% (section 206AA: no PAN on file when it"
        " was deducted)"
    )
