"""A payout reversed after it was processed, on the console (cash view) and the dashboard.

Review finding: the payout row counted only while PROCESSED, so a ₹52,428.60 payout
processed on 8 June and reversed by the bank on 2 July left June's figures when it came
back (June read on 30 June and again on 31 July differed: payouts, gateway fees, net and
TDS), and July showed no inflow though the money came back. Now a processed payout stays
in the period it was processed, whatever happens later, and its reversal is a movement of
its own (``payout_reversal``), dated by the ledger's reversal posting, taking back its net,
its returned fee and its TDS in that period: each period's figures are stable once it is
over, and added up they are the bank's movement (docs/transactions.md)."""

import re
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
import time_machine

from portal.dashboard.queries import dashboard
from portal.domain.states import PayoutStatus
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.payouts import runs
from portal.payouts.status import apply_remote
from portal.transactions import models as mm
from portal.transactions import projection
from portal.transactions.filters import MovementFilter, utc_bounds
from portal.transactions.models import MoneyMovement
from portal.transactions.queries import summary
from tests.payouts.conftest import (  # noqa: F401
    _ledger_balances_after_each_test,
    account,
    payout_fees,
    payouts_of,
    world,
    x,
)
from tests.transactions.conftest import payout_row
from tests.transactions.csv_file import read

# On file: these payouts deduct 194J's 10% (without one, section 206AA's 20%).
PAN = "ABCPK1234L"

JUNE = (date(2026, 6, 1), date(2026, 6, 30))
JULY = (date(2026, 7, 1), date(2026, 7, 31))


def _on(day, hh=6):
    return time_machine.travel(datetime.combine(day, time(hh), UTC))


def _month(bounds):
    return summary(MovementFilter(start=bounds[0], end=bounds[1]))


def _bank_moved(first, last):
    """What the ledger's bank account gained (+) or lost (−) in those clinic days."""
    start, end = utc_bounds(first, last)
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(
                LedgerAccount.code == chart.BANK,
                LedgerTransaction.created_at >= start,
                LedgerTransaction.created_at < end,
            )
        )
    )


def _reversal_row(payout_id):
    db.session.expire_all()
    return db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == mm.PAYOUT_REVERSAL, MoneyMovement.source_id == payout_id
        )
    )


def _reverse(x, payout):
    entity = dict(
        x.sandbox.store.payouts[payout.razorpay_payout_id],
        status="reversed",
        failure_reason="Beneficiary account closed",
    )
    assert apply_remote(entity)
    db.session.commit()


def _paid_in_june_reversed_in_july(world, x):
    """A WEEKLY provider over the TDS threshold: paid on 8 June, the payout reversed by the
    bank on 2 July, paid again on 3 July. Returns (provider, the June payout, July's)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Reversed", pan=PAN)
    with _on(date(2026, 6, 8)):
        world.earn(provider, user, 6_000_005)
        runs.run_cycle("WEEKLY", date(2026, 6, 8))
        x.settle()
    (june,) = payouts_of(provider.id)
    assert june.status == PayoutStatus.PROCESSED and june.tds == 600_001
    return provider, june


def test_a_closed_month_reads_the_same_after_a_later_reversal(world, x):
    provider, june_payout = _paid_in_june_reversed_in_july(world, x)
    fees, tax = payout_fees()
    june_before = _month(JUNE)
    assert (june_before.payouts, june_before.gateway_fees, june_before.tds) == (
        june_payout.net,
        fees,
        june_payout.tds,
    )
    assert june_before.net == -(june_payout.net + fees) == _bank_moved(*JUNE)

    with _on(date(2026, 7, 2)):
        _reverse(x, june_payout)
    with _on(date(2026, 7, 3)):  # paid again: the money was back on the payable
        runs.run_cycle("WEEKLY", date(2026, 7, 3))
        x.settle()
    june_payout, july_payout = payouts_of(provider.id)
    assert june_payout.status == PayoutStatus.REVERSED
    assert july_payout.status == PayoutStatus.PROCESSED

    # June, read again once July is over: what it said on 30 June, to the paisa.
    assert _month(JUNE) == june_before
    assert _bank_moved(*JUNE) == june_before.net

    # July: the reversal takes back the June payout's net, its returned fee and its TDS;
    # the payment made again counts as any payout.
    july = _month(JULY)
    assert july.payouts == july_payout.net - june_payout.net
    assert july.gateway_fees == fees - fees
    assert july.tds == july_payout.tds - june_payout.tds
    assert july.net == _bank_moved(*JULY)
    # The two months together: the bank's movement over both.
    both = summary(MovementFilter(start=JUNE[0], end=JULY[1]))
    assert june_before.net + july.net == both.net == account(chart.BANK)

    # The payout's row: processed in June, whatever came later (red: it was reversed).
    row = payout_row(june_payout.id)
    assert (row.bucket, row.status, row.failed) == (mm.BUCKET_PAYOUT, "REVERSED", True)
    assert (row.amount, row.tds, row.net, row.gateway_fee, row.gateway_tax) == (
        june_payout.gross,
        june_payout.tds,
        june_payout.net,
        fees,
        tax,
    )
    assert row.occurred_at.astimezone(CLINIC_TZ).date() == date(2026, 6, 8)
    # Its reversal: a row of its own on 2 July, the same payout's figures taken back.
    back = _reversal_row(june_payout.id)
    assert back.type == mm.PAYOUT_REVERSAL and back.type_label == "Payout reversed"
    assert (back.bucket, back.status, back.failed) == (mm.BUCKET_PAYOUT, "REVERSED", False)
    assert (back.amount, back.tds, back.net, back.gateway_fee, back.gateway_tax) == (
        -june_payout.gross,
        -june_payout.tds,
        -june_payout.net,
        -fees,
        -tax,
    )
    assert back.occurred_at.astimezone(CLINIC_TZ).date() == date(2026, 7, 2)
    reversed_at = db.session.scalar(
        sa.select(LedgerTransaction.created_at).where(
            LedgerTransaction.idempotency_key == f"payout:{june_payout.id}:reversed"
        )
    )
    assert back.occurred_at == reversed_at
    assert (back.reference, back.provider_id, back.party_name) == (
        row.reference,
        provider.id,
        "Dr Reversed",
    )


def test_the_dashboard_and_the_console_agree_day_by_day_across_a_reversal(world, x):
    provider, june_payout = _paid_in_june_reversed_in_july(world, x)
    with _on(date(2026, 7, 2)):
        _reverse(x, june_payout)
    with _on(date(2026, 7, 3)):
        runs.run_cycle("WEEKLY", date(2026, 7, 3))
        x.settle()
    _, july_payout = payouts_of(provider.id)

    board = dashboard(now=datetime(2026, 7, 5, 12, tzinfo=CLINIC_TZ))
    payouts = board.series["payouts"]
    by_day = dict(zip(board.days, payouts.amount, strict=True))
    assert by_day[date(2026, 6, 8)] == june_payout.net  # processed that day: it counts
    assert by_day[date(2026, 7, 2)] == -june_payout.net  # reversed that day: taken back
    assert by_day[date(2026, 7, 3)] == july_payout.net
    for day, amount in by_day.items():
        assert amount == summary(MovementFilter(start=day, end=day)).payouts, day
    # The count is of payouts processed that day; a reversal is none.
    counts = dict(zip(board.days, payouts.count, strict=True))
    assert (counts[date(2026, 6, 8)], counts[date(2026, 7, 2)], counts[date(2026, 7, 3)]) == (
        1,
        0,
        1,
    )


def _csv(client, query):
    f = read(client.get("/admin/transactions.csv" + query).get_data(as_text=True))
    return f.summary, f.records()


def _paise(text):
    sign = -1 if text[:1] in ("-", "\u2212") else 1
    whole, _, part = text.lstrip("-\u2212₹").replace(",", "").partition(".")
    return sign * (int(whole) * 100 + int((part + "00")[:2]))


def test_the_reversal_row_on_the_page_its_detail_and_the_csv(world, x, client, login, make_user):
    _provider, june_payout = _paid_in_june_reversed_in_july(world, x)
    with _on(date(2026, 7, 2)):
        _reverse(x, june_payout)
    row, back = payout_row(june_payout.id), _reversal_row(june_payout.id)
    login(make_user("admin"))
    july = "?from=2026-07-01&to=2026-07-31"

    page = client.get("/admin/transactions" + july).get_data(as_text=True)
    listed = re.search(rf'<tr id="movement-{back.id}"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert "Payout reversed" in listed and "−₹60,000.05" in listed and "−₹54,000.04" in listed
    assert f'id="movement-{row.id}"' not in page  # the payout itself is June's
    html = client.get(
        "/admin/transactions/summary" + july, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    sums = {k: _paise(v) for k, v in re.findall(r'data-sum="(\w+)">([^<]*)<', html)}
    s = _month(JULY)
    assert (
        (sums["payouts"], sums["gateway_fees"], sums["net"], sums["tds"])
        == (
            s.payouts,
            s.gateway_fees,
            s.net,
            s.tds,
        )
        == (-june_payout.net, -payout_fees()[0], june_payout.net + payout_fees()[0], -600_001)
    )

    # Its detail: the same payout's story, and a link to the payout's own row.
    detail = client.get(f"/admin/transactions/{back.id}").get_data(as_text=True)
    assert f'href="/admin/transactions/{row.id}"' in detail
    assert f'href="/admin/payouts/{june_payout.id}"' in detail
    assert "ledger: payout_reversed" in detail
    ours = detail.split('id="ours"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"TDS given back</td><td class=\"num\">−₹6,000.01<", ours)

    figures, body = _csv(client, july)
    [csv_back] = [r for r in body if r["Id"] == str(back.id)]
    assert csv_back["Type"] == mm.PAYOUT_REVERSAL
    assert (csv_back["Payout gross"], csv_back["TDS withheld"], csv_back["Net"]) == (
        "-60000.05",
        "-6000.01",
        "-54000.04",
    )
    assert csv_back["Gateway fee"] == "-5.90"
    assert len(body) == s.count
    for label, key in (("Payouts", "payouts"), ("Gateway fees", "gateway_fees"),
                       ("Net cash received", "net"), ("TDS withheld from payouts", "tds")):  # fmt: skip
        assert _paise(figures[label]) == getattr(s, key), label
    # The file's rows add up to its summary: the payouts' net and TDS columns.
    payout_rows = [r for r in body if r["Type"] in (mm.PAYOUT, mm.PAYOUT_REVERSAL)]
    assert sum(_paise(r["Net"]) for r in payout_rows) == s.payouts
    assert sum(_paise(r["TDS withheld"]) for r in payout_rows) == s.tds

    # Found by its Razorpay id beside the payout's own row.
    found = client.get(f"/admin/transactions?reference={row.reference}").get_data(as_text=True)
    assert f'id="movement-{row.id}"' in found and f'id="movement-{back.id}"' in found


def test_a_rebuild_writes_the_reversal_of_a_payout_projected_before(world, x):
    """Databases projected before: a reversed payout's row had no bucket and its fee netted
    to nothing, and no reversal row. ``flask transactions rebuild`` writes them as the live
    projection does (docs/deploy.md)."""
    _provider, june_payout = _paid_in_june_reversed_in_july(world, x)
    with _on(date(2026, 7, 2)):
        _reverse(x, june_payout)

    def columns(r):
        return {c.name: getattr(r, c.name) for c in r.__table__.columns
                if c.name not in {"id", "version", "updated_at"}}  # fmt: skip

    live = columns(payout_row(june_payout.id)), columns(_reversal_row(june_payout.id))
    june, july = _month(JUNE), _month(JULY)
    # As the old projector left them.
    db.session.execute(sa.delete(MoneyMovement).where(MoneyMovement.source == mm.PAYOUT_REVERSAL))
    db.session.execute(
        sa.update(MoneyMovement)
        .where(MoneyMovement.source == "payout")
        .values(bucket=None, gateway_fee=0, gateway_tax=0)
    )
    db.session.commit()
    assert _month(JUNE).payouts == 0

    projection.rebuild()
    assert (columns(payout_row(june_payout.id)), columns(_reversal_row(june_payout.id))) == live
    assert (_month(JUNE), _month(JULY)) == (june, july)
    projection.rebuild()  # again: nothing changes
    assert (_month(JUNE), _month(JULY)) == (june, july)


def test_a_payout_reversed_before_it_was_processed_counts_nowhere(world, x):
    """RazorpayX may reverse a payout that was never processed (no money left the bank):
    as a FAILED one, it stays in no total and has no reversal row."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="reversed")
    world.earn(provider, user, 100_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.REVERSED and payout.processed_at is None
    assert payout_row(payout.id).bucket is None
    assert _reversal_row(payout.id) is None
    today = datetime.now(CLINIC_TZ).date()
    s = summary(MovementFilter(start=today - timedelta(days=1), end=today))
    assert (
        (s.payouts, s.gateway_fees, s.tds, s.net) == (0, 0, 0, 0) == (0, 0, 0, account(chart.BANK))
    )
