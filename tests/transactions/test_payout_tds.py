"""The console and a payout's TDS: its row showed the gross (as the amount) and the net
after TDS, but not the TDS withheld, so finance reconciling a payout against the TDS
report looked elsewhere (review finding). The row keeps the TDS (``money_movements.tds``),
the console's list and detail show it beside the gross, the CSV has both columns (rupees,
to the paisa) and its summary (and the console's) a TDS total, in the one statement."""

import re
from datetime import UTC, date, datetime

import sqlalchemy as sa
import time_machine

from portal.domain.states import PayoutStatus
from portal.exports.cells import rupees
from portal.extensions import db
from portal.payouts import runs
from portal.payouts.runs import ist_today
from portal.payouts.status import apply_remote
from portal.reports import tds as tds_report
from portal.transactions import projection
from portal.transactions.filters import MovementFilter
from portal.transactions.models import MoneyMovement
from portal.transactions.queries import summary
from tests.payouts.conftest import (  # noqa: F401
    _ledger_balances_after_each_test,
    mid_year,
    payouts_of,
    world,
    x,
)
from tests.querycount import counted_queries
from tests.transactions.conftest import payout_row
from tests.transactions.csv_file import read

# On file: these payouts deduct 194J's 10% (without one, section 206AA's 20%).
PAN = "ABCPK1234L"


def _csv(client, query):
    f = read(client.get("/admin/transactions.csv" + query).get_data(as_text=True))
    return f.summary, f.records()


def test_a_payouts_tds_is_on_its_row_the_console_and_the_csv(
    mid_year, world, x, client, login, make_user
):
    # mid_year: the payout is processed on the day "today" then reads (a run across IST
    # midnight read the next day, correctly without it).
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 6_000_005)  # over the year's threshold: 10 % of it, half-up
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    assert (payout.gross, payout.tds, payout.net) == (6_000_005, 600_001, 5_400_004)

    row = payout_row(payout.id)
    assert (row.amount, row.tds, row.net) == (payout.gross, payout.tds, payout.net)
    today = ist_today()
    assert summary(MovementFilter(start=today, end=today)).tds == payout.tds

    db.session.add(  # a payment beside it: no gross or TDS of a payout
        MoneyMovement(source="payment", source_id=1, type="payment_online", status="SUCCESSFUL",
                      bucket="in", occurred_at=row.occurred_at, amount=100_00, net=100_00)
    )  # fmt: skip
    db.session.commit()
    login(make_user("admin"))
    page = client.get("/admin/transactions?preset=today&type=payout").get_data(as_text=True)
    listed = re.search(rf'<tr id="movement-{row.id}"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert '<td class="num" data-tds>₹6,000.01</td>' in listed
    assert "₹60,000.05" in listed and "₹54,000.04" in listed
    detail = client.get(f"/admin/transactions/{row.id}").get_data(as_text=True)
    ours = detail.split('id="ours"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"Gross \(before TDS\)</td><td class=\"num\">₹60,000.05<", ours)
    assert re.search(r"TDS withheld</td><td class=\"num\">₹6,000.01<", ours)
    html = client.get(
        "/admin/transactions/summary?preset=today", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert '<td class="num" data-sum="tds">₹6,000.01</td>' in html

    figures, body = _csv(client, "?preset=today")
    [paid] = [r for r in body if r["Id"] == str(row.id)]
    assert (paid["Payout gross"], paid["TDS withheld"], paid["Net"]) == (
        "60000.05",
        "6000.01",
        "54000.04",
    )
    assert paid["TDS withheld"] == rupees(payout.tds)
    assert figures["TDS withheld from payouts"] == "6000.01"
    # Rows that are not payouts have neither (empty cells, not 0.00).
    others = [r for r in body if r["Type"] != "payout"]
    assert others and all(r["Payout gross"] == r["TDS withheld"] == "" for r in others)

    # `flask transactions rebuild` writes the same TDS.
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    projection.rebuild()
    assert payout_row(payout.id).tds == payout.tds


def test_the_tds_total_adds_no_statement_to_the_summary_or_the_csv(
    world, x, client, login, make_user
):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    login(make_user("admin"))
    for url in ("/admin/transactions/summary?preset=today", "/admin/transactions.csv?preset=today"):
        client.get(url)
        with counted_queries() as seen:
            assert client.get(url).status_code == 200
        sums = [s for s in seen if "sum(" in s.lower()]
        # The console's summary: one statement, the TDS total in it. The CSV's: none, its
        # summary is added up from the rows it writes.
        assert len(sums) == (0 if ".csv" in url else 1), sums


def _on(day):
    return time_machine.travel(datetime.combine(day, datetime.min.time(), UTC).replace(hour=6))


def _console_tds(first, last):
    return summary(MovementFilter(start=first, end=last)).tds


def _report_tds(quarter, provider):
    f = tds_report.parse({"fy": "2026-27", "quarter": quarter, "provider_id": str(provider.id)})
    return [int(r.tds) for r in tds_report.report(f)["rows"]]


def test_the_consoles_tds_is_the_reports_payout_by_payout_not_period_by_period(world, x):
    """Re-read finding: the docs said the console's TDS total reconciles with the TDS
    report for a period. A payout's row carries the report's figure for that payout, but
    the totals date payouts differently (docs/transactions.md): the console counts a payout
    once PROCESSED, on the day it was processed, and takes it back on the day its reversal
    reached the bank (review finding: it left every period, so a closed month changed);
    the report counts it in the quarter it was made and takes it back in the quarter it
    came back."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    with _on(date(2026, 6, 30)):  # made on the last day of Q1, still in flight
        world.earn(provider, user, 6_000_005)
        runs.run_cycle("WEEKLY", date(2026, 6, 30))
        db.session.commit()
        (payout,) = payouts_of(provider.id)
        assert payout.status == PayoutStatus.QUEUED and payout.tds == 600_001
        assert _report_tds("q1", provider) == [600_001]
        assert _console_tds(date(2026, 6, 1), date(2026, 6, 30)) == 0
    with _on(date(2026, 7, 1)):  # processed the next day, in Q2
        x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    assert payout_row(payout.id).tds == _report_tds("q1", provider)[0]  # row by row: equal
    assert _console_tds(date(2026, 7, 1), date(2026, 7, 31)) == 600_001
    assert _report_tds("q2", provider) == []  # the report has it in Q1, the console in July
    with _on(date(2026, 10, 5)):  # reversed by the bank in Q3
        entity = dict(
            x.sandbox.store.payouts[payout.razorpay_payout_id],
            status="reversed",
            failure_reason="Beneficiary account closed",
        )
        assert apply_remote(entity)
        db.session.commit()
    assert _report_tds("q1", provider) == [600_001] and _report_tds("q3", provider) == [-600_001]
    # July, closed, stays as it was; October takes it back, as the report's Q3 does.
    assert _console_tds(date(2026, 7, 1), date(2026, 7, 31)) == 600_001
    assert _console_tds(date(2026, 10, 1), date(2026, 10, 31)) == -600_001
    assert payout_row(payout.id).tds == 600_001  # the row keeps the payout's TDS


def _tds_cell(page, row_id):
    listed = re.search(rf'<tr id="movement-{row_id}"[^>]*>(.*?)</tr>', page, re.S).group(1)
    return re.search(r"<td class=\"num\" data-tds>(.*?)</td>", listed, re.S).group(1)


def _detail_tds(client, row_id):
    detail = client.get(f"/admin/transactions/{row_id}").get_data(as_text=True)
    ours = detail.split('id="ours"', 1)[1].split("</section>", 1)[0]
    return re.search(r"<td>TDS withheld</td><td class=\"num\">(.*?)</td>", ours, re.S).group(1)


def test_a_payouts_tds_given_back_says_so(mid_year, world, x, client, login, make_user):
    """Re-read finding: a reversed payout (or one failed for good) still read "TDS withheld
    ₹6,000.01" on the console's list and detail, though that TDS was given back with the
    money (back on the payable, TDS un-deducted; the TDS report takes it back). Such a row
    now says "(given back)", and the CSV has a "TDS given back" column ("yes"); a payout
    that failed and waits for its retry still has its TDS withheld, and says nothing.

    ``mid_year``: both payouts are on the console's "today" (across IST midnight they
    were on the day before)."""
    reversed_to, user = world.ready_provider(
        "WEEKLY", commission_bps=0, name="Dr Reversed", pan=PAN
    )
    x.sandbox.set_faults(payout_outcome="reversed")
    world.earn(reversed_to, user, 6_000_005)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (back,) = payouts_of(reversed_to.id)
    assert back.status == PayoutStatus.REVERSED and back.returned and back.tds == 600_001

    retrying, user = world.ready_provider(
        "INSTANT", commission_bps=0, name="Dr Retrying", pan="BCDPL2345M"
    )
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(retrying, user, 6_000_005)
    x.settle(rounds=1)
    (waits,) = payouts_of(retrying.id)
    assert waits.status == PayoutStatus.FAILED and not waits.returned and waits.tds == 600_001
    assert waits.next_retry_at is not None

    login(make_user("admin"))
    back_row, waits_row = payout_row(back.id), payout_row(waits.id)
    assert back_row.failed and waits_row.failed  # both red: their status says they failed
    page = client.get("/admin/transactions?preset=today&type=payout").get_data(as_text=True)
    assert "given back" in _tds_cell(page, back_row.id)
    assert _tds_cell(page, back_row.id).startswith("₹6,000.01")
    assert _tds_cell(page, waits_row.id) == "₹6,000.01"
    assert "given back" in _detail_tds(client, back_row.id)
    assert _detail_tds(client, waits_row.id) == "₹6,000.01"

    _, body = _csv(client, "?preset=today&type=payout")
    by_id = {r["Id"]: r for r in body}
    assert by_id[str(back_row.id)]["TDS given back"] == "yes"
    assert by_id[str(back_row.id)]["TDS withheld"] == "6000.01"  # the payout's, as made
    assert by_id[str(waits_row.id)]["TDS given back"] == ""
