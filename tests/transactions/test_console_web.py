"""The transactions console: each filter, the presets, the summary to the paisa, keyset
pages, failed rows marked, bad input refused with a message (422, never a 500), only
admins get in, and a reference with several reconciliation cases shows one status on the
page, in its CSV and to the filter. Rows are written straight into the read table (its
projection is tested in test_projection.py); the clock is Monday 1 June 2026, 08:00 IST."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.catalog.models import Provider
from portal.extensions import db
from portal.reconcile.models import ReconCase
from portal.transactions import models as mm
from portal.transactions.filters import MovementFilter
from portal.transactions.queries import Tally, summary
from tests.booking.factories import IST, NOW
from tests.querycount import counted_queries
from tests.transactions.csv_file import read

TODAY = NOW.date()


@pytest.fixture
def admin(app, clock, make_user, login):
    user = make_user("admin")
    login(user)
    return user


@pytest.fixture
def people(app, make_user):
    asha = make_user("patient", name="Asha Rao", email="asha@example.com")
    ravi = make_user("patient", name="Ravi Kumar", email="ravi@example.com")
    return asha, ravi


def _at(days_ago, hh=9):
    return (
        datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), IST)
        .replace(hour=hh)
        .astimezone(UTC)
    )


_n = {"i": 0}


def mv(**kw):
    _n["i"] += 1
    row = {
        "source": "payment",
        "source_id": _n["i"],
        "type": mm.PAYMENT_ONLINE,
        "status": "SUCCESSFUL",
        "failed": False,
        "bucket": mm.BUCKET_IN,
        "occurred_at": _at(0),
        "amount": 100_00,
        "net": 100_00,
        "reference": f"pay_T{_n['i']:04d}",
    }
    row.update(kw)
    m = mm.MoneyMovement(**row)
    db.session.add(m)
    return m


@pytest.fixture
def rows(app, clock, people, make_user):
    asha, ravi = people
    with app.app_context():
        mehta = Provider(user_id=make_user("provider", name="Mehta").id, display_name="Dr Mehta")
        db.session.add(mehta)
        db.session.flush()
        r = {
            "pay": mv(
                patient_id=asha.id,
                party_name="Asha Rao",
                visit_id=7,
                visit_number="V000007",
                amount=1_059_00,
                net=1_037_82,
                gateway_fee=21_18,
                gateway_tax=3_23,
                fee=1_000_00,
                platform_fee=50_00,
                gst=9_00,
            ),
            "failed": mv(
                patient_id=ravi.id,
                party_name="Ravi Kumar",
                status="FAILED",
                failed=True,
                bucket=None,
                amount=500_00,
                net=500_00,
            ),
            "refund": mv(
                source="refund",
                type=mm.REFUND_GATEWAY,
                status="PROCESSED",
                bucket=mm.BUCKET_REFUND,
                patient_id=asha.id,
                party_name="Asha Rao",
                visit_id=7,
                visit_number="V000007",
                amount=300_00,
                net=300_00,
                reference="rfnd_T1",
                occurred_at=_at(3),
            ),
            "payout": mv(
                source="payout",
                type=mm.PAYOUT,
                status="PROCESSED",
                bucket=mm.BUCKET_PAYOUT,
                provider_id=mehta.id,
                party_name="Dr Mehta",
                amount=800_00,
                net=720_00,
                reference="pout_T1",
                occurred_at=_at(10),
            ),
            "penalty": mv(
                source="ledger",
                type=mm.PROVIDER_PENALTY,
                status="POSTED",
                bucket=None,
                provider_id=mehta.id,
                party_name="Dr Mehta",
                amount=250_00,
                net=250_00,
                reference=None,
                occurred_at=_at(40),
            ),
            "old": mv(
                amount=2_000_00,
                net=2_000_00,
                occurred_at=_at(400),
                patient_id=ravi.id,
                party_name="Ravi Kumar",
            ),
        }
        db.session.add(
            ReconCase(
                kind="payment",
                reference=r["pay"].reference,
                status="discrepancy",
                reason="amount_differs",
            )
        )
        db.session.add(ReconCase(kind="refund", reference="rfnd_T1", status="matched"))
        db.session.commit()
        return {k: v.id for k, v in r.items()}


def ids(html):
    return {int(i) for i in re.findall(r'id="movement-(\d+)"', html)}


def get(client, query, status=200):
    answer = client.get("/admin/transactions" + query)
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return answer.get_data(as_text=True)


def test_default_is_the_last_seven_days_and_failed_rows_stand_out(admin, client, rows):
    html = get(client, "")
    assert ids(html) == {rows["pay"], rows["failed"], rows["refund"]}
    failed = re.search(rf'<tr id="movement-{rows["failed"]}"[^>]*>', html).group(0)
    assert 'class="failed"' in failed
    ok = re.search(rf'<tr id="movement-{rows["pay"]}"[^>]*>', html).group(0)
    assert "failed" not in ok
    assert "discrepancy" in html and "matched" in html and "unchecked" in html


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?preset=today", {"pay", "failed"}),
        ("?preset=7d", {"pay", "failed", "refund"}),
        ("?preset=month", {"pay", "failed"}),  # 1 June: the month began today
        ("?preset=fy", {"pay", "failed", "refund", "payout", "penalty"}),
        ("?from=2026-05-20&to=2026-05-31", {"refund", "payout"}),
        ("?from=2025-04-01&to=2025-05-31", {"old"}),
        ("?preset=fy&type=payout", {"payout"}),
        ("?preset=fy&type=refund_gateway", {"refund"}),
        ("?preset=fy&status=FAILED", {"failed"}),
        ("?preset=fy&status=POSTED", {"penalty"}),
        ("?preset=fy&party=asha", {"pay", "refund"}),
        ("?preset=fy&party=RAVI%40example", {"failed"}),
        ("?preset=fy&party=mehta", {"payout", "penalty"}),
        ("?preset=fy&party=nobody", set()),
        ("?preset=fy&visit=V000007", {"pay", "refund"}),
        ("?preset=fy&visit=7", {"pay", "refund"}),
        ("?preset=fy&recon=discrepancy", {"pay"}),
        ("?preset=fy&recon=matched", {"refund"}),
        ("?preset=fy&recon=unchecked", {"failed", "payout", "penalty"}),
        ("?preset=fy&min=500", {"pay", "failed", "payout"}),
        ("?preset=fy&max=300", {"refund", "penalty"}),
        ("?preset=fy&min=250&max=500.00", {"failed", "refund", "penalty"}),
        ("?preset=fy&type=payment_online&status=SUCCESSFUL&party=asha", {"pay"}),
    ],
)
def test_each_filter(admin, client, rows, query, expected):
    assert ids(get(client, query)) == {rows[k] for k in expected}


def test_the_summary_sums_the_filtered_set_to_the_paisa(admin, app, client, rows):
    with app.app_context():
        s = summary(MovementFilter(start=TODAY - timedelta(days=364), end=TODAY))
        only_asha = summary(
            MovementFilter(start=TODAY - timedelta(days=364), end=TODAY, party="asha")
        )
    assert s.count == 5
    assert s.money_in == 1_059_00  # the failed payment moved nothing
    assert s.refunds == 300_00 and s.payouts == 720_00 and s.gateway_fees == 21_18
    assert s.net == 1_059_00 - 300_00 - 720_00 - 21_18
    assert (only_asha.count, only_asha.money_in, only_asha.refunds, only_asha.payouts) == (
        2,
        1_059_00,
        300_00,
        0,
    )
    answer = client.get("/admin/transactions/summary?preset=fy", headers={"HX-Request": "true"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in html
    assert "<strong>5</strong> movements" in html
    assert re.search(r'data-sum="net">₹17\.82<', html), re.findall(r'data-sum="net">[^<]*<', html)
    assert 'data-sum="gateway_fees">₹21.18<' in html


def test_keyset_pages_cover_every_row_once(admin, app, client, rows):
    with app.app_context():
        for _ in range(7):
            mv(occurred_at=_at(1, hh=10))  # same time: the id breaks the tie
        db.session.commit()
    seen, query, pages = [], "?preset=7d&per_page=4", 0
    while True:
        html = get(client, query)
        page = re.findall(r'id="movement-(\d+)"', html)
        seen += page
        pages += 1
        nxt = re.search(r'href="/admin/transactions\?([^"]*after=[^"]*)" rel="next"', html)
        if not nxt:
            break
        query = "?" + nxt.group(1).replace("&amp;", "&")
        assert "preset=7d" in query  # the filters stay on the next page
    assert pages == 3 and len(seen) == len(set(seen)) == 10


def test_htmx_gets_only_the_console_and_the_url_keeps_the_filters(admin, client, rows):
    answer = client.get("/admin/transactions?preset=fy&type=payout", headers={"HX-Request": "true"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in html
    assert ids(html) == {rows["payout"]}
    assert 'hx-push-url="true"' in html


@pytest.mark.parametrize(
    "query, message",
    [
        ("?colour=red", "Unknown filter: colour"),
        ("?from=01-06-2026", "Enter a date as YYYY-MM-DD"),
        ("?from=2026-02-30", "Enter a date as YYYY-MM-DD"),
        ("?to=yesterday", "Enter a date as YYYY-MM-DD"),
        ("?from=2025-01-01&to=2026-06-01", "at most a year"),
        ("?from=2026-06-01&to=2026-05-01", "start date is after the end date"),
        ("?type=bitcoin", "Unknown type"),
        ("?status=LOST", "Unknown status"),
        ("?preset=decade", "Unknown period"),
        ("?recon=maybe", "Unknown reconciliation status"),
        ("?min=abc", "Enter an amount in rupees"),
        ("?min=-5", "zero or more"),
        ("?min=500&max=100", "smallest amount is above the largest"),
        ("?party=" + "x" * 101, "too long"),
        ("?visit=%01", "control"),
    ],
)
def test_bad_input_gets_a_clear_message_not_a_500(admin, client, rows, query, message):
    html = get(client, query, status=422)
    assert message.lower() in html.lower(), re.findall(r'class="error"[^>]*>[^<]*<', html)
    assert ids(html) == set()
    assert client.get("/admin/transactions/summary" + query).status_code == 422


def test_only_admins_see_the_console(app, clock, client, make_user, login, rows):
    assert client.get("/admin/transactions").status_code in (302, 303)
    login(make_user("patient"))
    assert client.get("/admin/transactions").status_code == 403
    assert client.get("/admin/transactions/summary").status_code == 403
    assert client.get(f"/admin/transactions/{rows['pay']}").status_code == 403
    assert client.get("/admin/settlements").status_code == 403
    assert client.post("/admin/settlements/fetch").status_code in (400, 403)


def test_an_unknown_movement_is_404(admin, client):
    assert client.get("/admin/transactions/999999").status_code == 404


def test_the_csv_honours_the_filters_and_carries_the_summary(admin, client, rows):
    answer = client.get("/admin/transactions.csv?preset=fy&party=asha")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    f = read(answer.get_data(as_text=True))
    assert f.lines[0] == "Report: Transactions"
    # The header names the filters used; the filtered set's summary follows the rows, in
    # the rows' own columns (the label under Type, the figure under Amount, a count under
    # Id), added up from them.
    assert f.filters["party"] == "asha" and "Count" not in f.filters
    assert f.summary["Count"] == "2"
    assert f.summary["Money in"] == "1059.00" and f.summary["Refunds"] == "300.00"
    header, body = f.header, f.rows
    assert header[:3] == ["Id", "Time", "Type"] and header[-2:] == [
        "Gateway reference",
        "Reconciliation",
    ]
    assert len(body) == 2 and {row[4] for row in body} == {"Asha Rao"}
    assert {row[-1] for row in body} <= {"unchecked", "matched", "pending", "discrepancy"}
    amounts = {row[header.index("Amount")] for row in body}
    assert "1059.00" in amounts  # rupees with two decimals


def test_a_bad_filter_gets_a_message_not_a_file(admin, client, rows):
    answer = client.get("/admin/transactions.csv?from=2026-13-45")
    assert answer.status_code == 422 and answer.mimetype == "text/html"
    answer = client.get("/admin/transactions.csv?colour=red")
    assert answer.status_code == 422 and "Unknown filter" in answer.get_data(as_text=True)


# A reference with two cases (a payment's own and its settlement case share the pay_ id):
# (the first case written, the second, what every view of the row says).
TWO_CASES = {
    "pay_S1": (("payment", "matched"), ("settlement", "discrepancy"), "discrepancy"),
    "pay_S2": (("settlement", "discrepancy"), ("payment", "matched"), "discrepancy"),
    "pay_S3": (("payment", "resolved"), ("settlement", "pending"), "pending"),
    "pay_S4": (("payment", "matched"), ("settlement", "resolved"), "resolved"),
    "pay_S5": (("payment", "matched"), ("settlement", "matched"), "matched"),
}


@pytest.fixture
def two_cases(app, clock):
    """Movement id -> its reference."""
    with app.app_context():
        movements = {}
        for reference, (*cases, _shown) in TWO_CASES.items():
            movement = mv(reference=reference)
            db.session.flush()
            movements[movement.id] = reference
            for kind, status in cases:
                db.session.add(ReconCase(kind=kind, reference=reference, status=status))
                db.session.flush()  # written in this order
        db.session.commit()
        return movements


def _page_statuses(html):
    return {
        int(i): s
        for i, s in re.findall(
            r'<tr id="movement-(\d+)".*?<span class="badge [a-z]*">(\w+)</span>\s*</td>\s*</tr>',
            html,
            re.S,
        )
    }


def _csv_statuses(client, query):
    f = read(client.get("/admin/transactions.csv" + query).get_data(as_text=True))
    return {int(r["Id"]): r["Reconciliation"] for r in f.records()}


def test_a_reference_with_several_cases_shows_one_status_everywhere(admin, app, client, two_cases):
    shown = {i: TWO_CASES[reference][-1] for i, reference in two_cases.items()}
    # the most severe of its cases: on the page, in its CSV, on the detail page
    assert _page_statuses(get(client, "?preset=today")) == shown
    assert _csv_statuses(client, "?preset=today") == shown
    for movement_id, reference in two_cases.items():
        detail = get(client, f"/{movement_id}")
        assert f'<strong id="recon-status">{shown[movement_id]}</strong>' in detail
        # "the case" opens the case whose status the row shows
        answer = client.get(f"/admin/reconciliation/cases/by-reference/{reference}")
        case_id = int(answer.headers["Location"].rsplit("/", 1)[1])
        with app.app_context():
            assert db.session.get(ReconCase, case_id).status == shown[movement_id]
    # and each reconciliation filter lists exactly the rows that show that status
    for status in ("matched", "resolved", "pending", "discrepancy"):
        chosen = {i: s for i, s in shown.items() if s == status}
        assert chosen
        assert _page_statuses(get(client, f"?preset=today&recon={status}")) == chosen
        assert _csv_statuses(client, f"?preset=today&recon={status}") == chosen


def test_the_page_and_its_csv_read_the_statuses_in_a_fixed_number_of_statements(
    admin, app, client, two_cases
):
    def statements():
        counts = []
        for url in ("/admin/transactions?preset=today", "/admin/transactions.csv?preset=today"):
            for recon in ("", "&recon=pending"):
                with counted_queries() as seen:
                    assert client.get(url + recon).status_code == 200
                counts.append(len(seen))
        return counts

    before = statements()
    with app.app_context():
        for n in range(6):
            reference = f"pay_M{n}"
            mv(reference=reference)
            db.session.add(ReconCase(kind="payment", reference=reference, status="resolved"))
            db.session.add(ReconCase(kind="settlement", reference=reference, status="pending"))
        db.session.commit()
    assert len(_csv_statuses(client, "?preset=today&recon=pending")) == 7  # 6 and pay_S3
    assert statements() == before


def test_the_summary_agrees_with_the_rows_for_wallet_refunds(admin, app, client, people):
    """Review finding: filtered to wallet refunds, the console showed "Refunds ₹0" above two
    rows totalling ₹400. Wallet refunds are no cash, so not in Refunds or Net, but the
    summary names them; what moves no cash is summed on its own line; the CSV says the
    net is the cash received (TDS held for the government is in it)."""
    asha, _ravi = people
    with app.app_context():
        for amount in (150_00, 250_00):
            mv(type=mm.REFUND_WALLET, status="PROCESSED", bucket=None, patient_id=asha.id,
               amount=amount, net=amount, source="refund")  # fmt: skip
        mv(type=mm.ADJUSTMENT, status="APPLIED", bucket=None, amount=50_00, net=-50_00,
           source="adjustment")  # fmt: skip
        db.session.commit()
    html = client.get(
        "/admin/transactions/summary?preset=fy&type=refund_wallet", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'data-sum="wallet_refunds">₹400<' in html
    assert 'data-sum="refunds">₹0<' in html
    html = client.get(
        "/admin/transactions/summary?preset=fy", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'data-sum="not_cash">1<' in html  # the adjustment: a count (below)
    in_csv = read(client.get("/admin/transactions.csv?preset=fy").get_data(as_text=True)).summary
    assert "Net revenue" not in in_csv and "Net cash received" in in_csv
    assert in_csv["Refunds to wallets (not cash)"] == "400.00"


def _paise_of(text):
    """``₹1,059.00`` / ``−₹17.82`` / ``-₹17.82`` in paise."""
    sign = -1 if text[:1] in ("-", "\u2212") else 1
    whole, _, part = text.lstrip("-\u2212₹").replace(",", "").partition(".")
    return sign * (int(whole) * 100 + int(part or 0))


def test_the_screen_and_the_csv_state_the_same_labelled_figures(admin, app, client, rows):
    """Re-read: the summary's labelled lines were written twice, in the screen's template
    and in the CSV's header, and read differently ("Refunds to wallets (not cash; not in
    the net)" there, "(not cash)" here). ``Summary.lines()`` states them once: both print
    its labels and figures, in its order."""
    with app.app_context():
        mv(type=mm.REFUND_WALLET, status="PROCESSED", bucket=None, amount=150_00, net=150_00,
           source="refund")  # fmt: skip
        mv(type=mm.ADJUSTMENT, status="APPLIED", bucket=None, amount=50_00, net=-50_00,
           source="adjustment")  # fmt: skip
        db.session.commit()
        lines = summary(MovementFilter(start=TODAY - timedelta(days=364), end=TODAY)).lines()
    assert [line.key for line in lines] == [
        "money_in", "refunds", "payouts", "gateway_fees", "cash_out", "bank_out", "net", "tds",
        "wallet_refunds", "settled", "not_cash",
    ]  # fmt: skip
    html = client.get(
        "/admin/transactions/summary?preset=fy", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    screen = re.findall(r'<td>(.*?)</td><td class="num" data-sum="(\w+)">([^<]*)</td>', html, re.S)
    assert [key for _, key, _ in screen] == [line.key for line in lines]
    in_csv = read(client.get("/admin/transactions.csv?preset=fy").get_data(as_text=True)).summary
    assert list(in_csv) == ["Count", *(line.label for line in lines)]  # in the screen's order
    for line, (label, key, amount) in zip(lines, screen, strict=True):
        assert label.startswith(line.label), (label, line.label)
        if line.paise is None:  # a count, not money (finding 2, below)
            assert int(amount) == int(in_csv[line.label]) == line.count, key
            continue
        assert _paise_of(amount) == _paise_of(in_csv[line.label]) == line.paise, key
    assert {line.key: line.paise for line in lines}["wallet_refunds"] == 150_00
    assert {line.key: line.count for line in lines}["not_cash"] > 1  # the adjustment too


def test_rows_moving_no_cash_are_counted_and_settlements_summed_signed(admin, app, client):
    """Review finding 2: "Other rows moving no cash" read −₹393.05 (2 rows): a settlement
    of −₹643.05 gross (refunds exceeded the payments it settled) summed with a ₹250
    provider penalty, signed amounts and unsigned ones of unrelated kinds. Settlements now
    have their own line, the signed sum of what reached our bank (gross less Razorpay's
    fees: −₹646.95); the other rows that move no cash are a count only, in the summary and
    the CSV's."""
    with app.app_context():
        mv(type=mm.SETTLEMENT, source="settlement", status="PROCESSED", bucket=None,
           amount=-643_05, gateway_fee=3_90, gateway_tax=60, net=-646_95,
           reference="setl_T1")  # fmt: skip
        mv(type=mm.PROVIDER_PENALTY, source="ledger", status="POSTED", bucket=None,
           amount=250_00, net=250_00, reference=None)  # fmt: skip
        db.session.commit()
        s = summary(MovementFilter(start=TODAY, end=TODAY))
    assert (s.settled_count, s.settled, s.not_cash_count) == (1, -646_95, 1)
    assert s.net == 0  # neither is cash in or out of the business
    html = client.get(
        "/admin/transactions/summary?preset=today", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'data-sum="settled">−₹646.95<' in html
    assert 'data-sum="not_cash">1<' in html
    assert "₹393.05" not in html and "₹250" not in html
    text = client.get("/admin/transactions.csv?preset=today").get_data(as_text=True)
    in_csv = read(text).summary
    assert in_csv["Settlements to our bank"] == "-646.95"
    assert in_csv["Other rows moving no cash"] == "1"


def test_the_cash_table_holds_only_the_terms_of_the_net(admin, app, client, rows):
    """Re-read finding: "TDS withheld from payouts" sat among the cash lines that add up to
    "Net cash received" (between Payouts and Gateway fees) though it is no term of that
    sum (the TDS is held out of the payouts' gross, so it is in the net): one adding the
    table's lines counted it. The cash table now holds money in, refunds, payouts and
    gateway fees, which make the net, and the net; the TDS is a table of its own below it,
    and the CSV's summary follows the same order (``Summary.lines()``)."""
    with app.app_context():
        mv(type=mm.PAYOUT, source="payout", bucket=mm.BUCKET_PAYOUT, status="PROCESSED",
           amount=1_000_00, tds=100_00, net=900_00, gateway_fee=5_90)  # fmt: skip
        # A wallet balance handed back in cash at the desk: a term of the net (cash out).
        mv(type=mm.CASH_PAYOUT, source="wallet_adjustment", bucket=mm.BUCKET_CASH_OUT,
           status="APPLIED", amount=200_00, net=-200_00)  # fmt: skip
        # One the clinic's bank sent: a term of the net too (bank out).
        mv(type=mm.BANK_PAYOUT, source="wallet_adjustment", bucket=mm.BUCKET_BANK_OUT,
           status="APPLIED", amount=300_00, net=-300_00, reference="412345678901")  # fmt: skip
        db.session.commit()
        s = summary(MovementFilter(start=TODAY - timedelta(days=364), end=TODAY))
    assert s.tds == 100_00 and s.cash_out == 200_00 and s.bank_out == 300_00
    html = client.get(
        "/admin/transactions/summary?preset=fy", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    tables = re.findall(r'<table class="breakup">(.*?)</table>', html, re.S)
    cash = dict(re.findall(r'data-sum="(\w+)">([^<]*)<', tables[0]))
    assert set(cash) == {
        "money_in", "refunds", "payouts", "gateway_fees", "cash_out", "bank_out", "net",
    }  # fmt: skip
    assert cash["cash_out"] == "₹200" and cash["bank_out"] == "₹300"
    terms = (
        _paise_of(cash["money_in"])
        - _paise_of(cash["refunds"])
        - _paise_of(cash["payouts"])
        - _paise_of(cash["gateway_fees"])
        - _paise_of(cash["cash_out"])
        - _paise_of(cash["bank_out"])
    )
    assert terms == _paise_of(cash["net"]) == s.net
    assert 'data-sum="tds">₹100<' in tables[1] and "data-sum" not in tables[1].replace(
        'data-sum="tds"', ""
    )


def test_the_csvs_summary_added_up_from_its_rows_is_the_consoles(
    admin, app, client, rows, monkeypatch
):
    """The CSV adds its summary up from the rows it writes (``queries.Tally``, fed each
    row's ``summary_terms``), the console sums the same terms in SQL: one rule, the same
    figures for rows of every kind, however many batches the rows are added in."""
    with app.app_context():
        mv(type=mm.PAYOUT, source="payout", bucket=mm.BUCKET_PAYOUT, status="PROCESSED",
           amount=1_000_00, tds=100_00, net=900_00, gateway_fee=5_90)  # fmt: skip
        mv(type=mm.PAYOUT_REVERSAL, source="payout", bucket=mm.BUCKET_PAYOUT,
           status="REVERSED", amount=-400_00, tds=-40_00, net=-360_00,
           gateway_fee=-2_95)  # fmt: skip
        mv(type=mm.CASH_PAYOUT, source="wallet_adjustment", bucket=mm.BUCKET_CASH_OUT,
           status="APPLIED", amount=200_00, net=-200_00)  # fmt: skip
        mv(type=mm.BANK_PAYOUT, source="wallet_adjustment", bucket=mm.BUCKET_BANK_OUT,
           status="APPLIED", amount=300_00, net=-300_00)  # fmt: skip
        mv(type=mm.REFUND_WALLET, status="PROCESSED", bucket=None, amount=150_00, net=150_00,
           source="refund")  # fmt: skip
        mv(type=mm.SETTLEMENT, source="settlement", status="PROCESSED", bucket=None,
           amount=-643_05, gateway_fee=3_90, net=-646_95, reference="setl_T9")  # fmt: skip
        db.session.commit()
        console = summary(MovementFilter(start=TODAY - timedelta(days=364), end=TODAY))
    monkeypatch.setattr(Tally, "FOLD_EVERY", 2)  # several folds, and a part-folded end
    f = read(client.get("/admin/transactions.csv?preset=fy").get_data(as_text=True))
    assert f.summary["Count"] == str(console.count) == str(len(f.rows))
    for line in console.lines():
        figure = f.summary[line.label]
        if line.paise is None:
            assert int(figure) == line.count, line.label
        else:
            assert _paise_of(figure) == line.paise, line.label
    assert console.tds == 60_00 and console.cash_out == 200_00 and console.settled == -646_95
