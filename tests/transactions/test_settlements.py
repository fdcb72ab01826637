"""Settlements: read from the sandbox through the SDK adapter, stored once, posted to the
ledger balanced (gateway clearing still equals what the gateway holds), the payment's
gateway fee shown on its console row, and captures overdue for settlement."""

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.gateway import get_payin
from portal.ledger import accounts as chart
from portal.ledger.check import SETTLEMENT_KIND, verify_gateway_clearing, verify_ledger
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.settlements.ingest import SettlementError, ingest
from portal.settlements.models import Settlement, SettlementItem
from portal.settlements.overdue import overdue_from, overdue_unsettled
from portal.transactions.models import MoneyMovement
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay


@pytest.fixture
def paid(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(1, 10))])
    db.session.commit()
    return visit


def _payment_row(visit):
    return db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == "payment",
            MoneyMovement.visit_id == visit.id,
            MoneyMovement.bucket == "in",
        )
    )


def test_a_settlement_is_stored_once_posted_balanced_and_fees_reach_the_console(paid, gateway):
    row = _payment_row(paid)
    assert row is not None and row.reference.startswith("pay_") and row.gateway_fee is None
    clearing_before = balance(chart.GATEWAY_CLEARING)

    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    first = ingest()
    assert first.stored == [raw["id"]]

    s = db.session.scalar(sa.select(Settlement))
    assert (s.amount, s.fees, s.tax, s.utr) == (raw["amount"], raw["fees"], raw["tax"], raw["utr"])
    [item] = s.items
    assert item.entity_id == row.reference and item.fee == raw["fees"]

    [txn] = db.session.scalars(
        sa.select(LedgerTransaction).where(LedgerTransaction.kind == SETTLEMENT_KIND)
    ).all()
    lines = {e.account.code: e.amount for e in txn.entries}
    assert lines == {
        chart.BANK: raw["amount"],
        chart.GATEWAY_FEES: raw["fees"] - raw["tax"],
        chart.GST_INPUT: raw["tax"],
        chart.GATEWAY_CLEARING: -(raw["amount"] + raw["fees"]),
    }
    assert sum(lines.values()) == 0
    assert balance(chart.GATEWAY_CLEARING) == clearing_before - (raw["amount"] + raw["fees"])
    assert verify_ledger() == []
    assert verify_gateway_clearing(get_payin().account_position()) == []

    db.session.expire_all()
    row = _payment_row(paid)
    assert row.gateway_fee == raw["fees"] and row.gateway_tax == raw["tax"]
    assert row.net == row.amount - raw["fees"]
    assert row.utr == raw["utr"] and row.settlement_reference == raw["id"]
    setl_row = db.session.scalar(
        sa.select(MoneyMovement).where(MoneyMovement.source == "settlement")
    )
    assert (setl_row.reference, setl_row.net, setl_row.bucket) == (raw["id"], raw["amount"], None)

    # Again: nothing new, nothing posted twice.
    again = ingest()
    assert again.new == 0 and again.seen == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Settlement)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SettlementItem)) == 1
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(LedgerTransaction.kind == SETTLEMENT_KIND)
        )
        == 1
    )


def test_overdue_unsettled_lists_captures_past_the_expected_days(paid, gateway):
    ref = _payment_row(paid).reference
    now = utcnow()
    assert overdue_unsettled(now + timedelta(days=2)) == []  # Wednesday: T+2 is on time
    [late] = overdue_unsettled(now + timedelta(days=3, minutes=1))  # Thursday: late
    assert (late.reference, late.our_type, late.visit_id) == (ref, "payment", paid.id)
    assert late.amount == _payment_row(paid).amount
    assert overdue_unsettled(now + timedelta(days=1), working_days=0)[0].reference == ref

    gateway.sandbox.settle_day(gateway.sandbox.today())
    ingest()
    assert overdue_unsettled(now + timedelta(days=30)) == []


def _ist(month_day, hh=0, mm=0):
    return datetime(2026, 6, month_day, hh, mm, tzinfo=CLINIC_TZ)


def _paid_at(world, users, gateway, clock, when):
    clock.move_to(when)
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(8, 11))])
    db.session.commit()
    return visit


@pytest.fixture
def paid_on_friday(world, users, gateway, clock):
    # Monday 1 June 2026 is the world's day; Friday 5 June 2026 10:00 IST the capture.
    visit = _paid_at(world, users, gateway, clock, _ist(5, 10))
    assert utcnow().astimezone(CLINIC_TZ).weekday() == 4
    return visit


def test_a_friday_capture_is_not_overdue_on_monday(paid_on_friday):
    """Review rv_dash: calendar days made Friday's capture late on Monday, before
    Razorpay's T+2 working days (Tuesday) were up."""
    assert overdue_unsettled(_ist(8, 12)) == []  # Monday: T+1
    assert overdue_unsettled(_ist(9, 23, 59)) == []  # Tuesday: due, not late
    [late] = overdue_unsettled(_ist(10, 0, 1))  # Wednesday: past its T+2
    assert late.visit_id == paid_on_friday.id


@pytest.fixture
def paid_on_thursday(world, users, gateway, clock):
    return _paid_at(world, users, gateway, clock, _ist(4, 10))


def test_a_thursday_capture_is_not_overdue_at_mondays_2am_reconciliation(paid_on_thursday):
    # The daily reconciliation (02:00 IST) asks overdue_unsettled(now) on Monday 8 June:
    # Thursday's T+2 working days is Monday itself, so the capture is not late yet; a
    # NOT_SETTLED discrepancy (HIGH alert, visit flagged) would follow every week.
    assert overdue_unsettled(_ist(8, 2)) == []
    assert [u.visit_id for u in overdue_unsettled(_ist(9, 2))] == [paid_on_thursday.id]


def test_a_settlement_holiday_is_not_a_working_day(app, monkeypatch, paid_on_thursday):
    """Thursday's capture is due Monday; with Monday a bank holiday, on Tuesday."""
    monkeypatch.setitem(app.config, "SETTLEMENT_HOLIDAYS", frozenset({date(2026, 6, 8)}))
    assert overdue_unsettled(_ist(9, 2)) == []
    assert [u.visit_id for u in overdue_unsettled(_ist(10, 2))] == [paid_on_thursday.id]


@pytest.mark.parametrize(
    "as_of, working_days, first_on_time",
    [
        (_ist(4, 10), 2, _ist(2)),  # Thursday: Monday's captures are late, Tuesday's not
        (_ist(4, 0, 0), 2, _ist(2)),  # from the first instant of the day
        (_ist(8, 2), 2, _ist(4)),  # Monday: Wednesday's late; Thursday's due today
        (_ist(9, 2), 2, _ist(5)),  # Tuesday: Thursday's late; Friday's (and the
        # weekend's) due today
        (_ist(6, 12), 2, _ist(4)),  # Saturday: Wednesday's (due Friday) late
        (_ist(7, 23), 2, _ist(4)),  # Sunday: the same
        (_ist(8, 2), 0, _ist(8)),  # T+0: anything before today
        (_ist(8, 2), 1, _ist(5)),
    ],
)
def test_overdue_from_walks_back_working_days(as_of, working_days, first_on_time):
    assert overdue_from(as_of, working_days) == first_on_time


def test_overdue_from_skips_the_holidays():
    # Tuesday 9 June; Friday 5 and Monday 8 June holidays: back to Wednesday 3 June.
    holidays = frozenset({date(2026, 6, 5), date(2026, 6, 8)})
    assert overdue_from(_ist(9, 2), 2, holidays) == _ist(3)


def test_a_gateway_that_cannot_be_read_stores_nothing(app, paid, gateway):
    gateway.sandbox.settle_day(gateway.sandbox.today())
    saved = app.config["RAZORPAY_BASE_URL"], app.config.get("SANDBOX_INPROCESS")
    app.config.update(RAZORPAY_BASE_URL="http://127.0.0.1:9", RAZORPAY_RETRIES=0)
    app.config["SANDBOX_INPROCESS"] = False
    app.extensions.pop("gateway_adapters", None)
    try:
        with pytest.raises(SettlementError, match="could not be read"):
            ingest()
    finally:
        app.config["RAZORPAY_BASE_URL"], app.config["SANDBOX_INPROCESS"] = saved
        app.config.pop("RAZORPAY_RETRIES", None)
        app.extensions.pop("gateway_adapters", None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Settlement)) == 0
    assert ingest().new == 1  # the next run reads it


def test_fetch_now_and_the_report_drill_down_to_the_payments(
    paid, gateway, client, make_user, login
):
    pay = _payment_row(paid)
    movement_id, reference = pay.id, pay.reference
    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    login(make_user("admin", email="finance@example.com"))
    listing = client.get("/admin/settlements").get_data(as_text=True)
    assert "No settlements read yet" in listing
    answer = client.post("/admin/settlements/fetch")
    assert answer.status_code == 303
    listing = client.get("/admin/settlements").get_data(as_text=True)
    assert raw["id"] in listing and "1 new settlement read" in listing
    settlement_id = db.session.scalar(sa.select(Settlement.id))
    detail = client.get(f"/admin/settlements/{settlement_id}").get_data(as_text=True)
    assert f'href="/admin/transactions/{movement_id}"' in detail and reference in detail
    assert raw["utr"] in detail
    # The console's row shows the fee now.
    row = client.get(f"/admin/transactions/{movement_id}").get_data(as_text=True)
    assert raw["id"] in row and raw["utr"] in row


def test_the_commands_fetch_settlements_and_rebuild_the_read_table(app, paid, gateway):
    from portal.settlements.cli import settlements_cli
    from portal.transactions.cli import transactions_cli

    gateway.sandbox.settle_day(gateway.sandbox.today())
    runner = app.test_cli_runner()
    result = runner.invoke(settlements_cli, ["fetch", "--days", "3"])
    assert result.exit_code == 0 and "1 new settlement(s) stored" in result.output
    before = {
        (m.source, m.source_id, m.amount, m.gateway_fee, m.status)
        for m in db.session.scalars(sa.select(MoneyMovement))
    }
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    result = runner.invoke(transactions_cli, ["rebuild"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    after = {
        (m.source, m.source_id, m.amount, m.gateway_fee, m.status)
        for m in db.session.scalars(sa.select(MoneyMovement))
    }
    assert after == before and len(after) >= 2


def test_a_malformed_settlement_is_refused_alone_and_read_again_later(paid, gateway, monkeypatch):
    """A recon row without its entity stops that settlement (nothing of it written, the
    reason reported), not the run: the loop goes on, and the next run stores it."""
    from portal.settlements import ingest as ingest_module

    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    real = ingest_module._recon_rows

    def without_entity(payin, day, cache):
        return [{k: v for k, v in r.items() if k != "entity_id"} for r in real(payin, day, cache)]

    monkeypatch.setattr(ingest_module, "_recon_rows", without_entity)
    result = ingest()
    assert result.stored == [] and [sid for sid, _ in result.refused] == [raw["id"]]
    assert "KeyError" in result.refused[0][1]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Settlement)) == 0
    assert not db.session.scalars(
        sa.select(LedgerTransaction).where(LedgerTransaction.kind == SETTLEMENT_KIND)
    ).all()
    monkeypatch.setattr(ingest_module, "_recon_rows", real)
    assert ingest().stored == [raw["id"]]


def test_a_recon_row_listed_twice_is_stored_once_and_the_settlement_posted(paid, gateway):
    """Razorpay's recon report is read by count/skip, so a row may come twice (the
    sandbox's ``duplicate`` fault). It is one row: the settlement is stored and posted,
    its payment settled, not refused run after run on the items' unique index (review)."""
    [pay_id] = [p.razorpay_payment_id for p in paid.payments if p.razorpay_payment_id]
    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    gateway.sandbox.set_faults(duplicate=[pay_id])
    result = ingest()
    gateway.sandbox.set_faults(duplicate=[])
    assert result.refused == [] and result.stored == [raw["id"]]
    s = db.session.scalar(sa.select(Settlement))
    assert [i.entity_id for i in s.items] == [pay_id] and s.rows_complete
    assert balance(chart.GATEWAY_CLEARING) == 0
    assert verify_ledger() == []


def test_a_recon_row_listed_twice_with_different_figures_refuses_its_settlement(
    paid, gateway, monkeypatch
):
    """Two copies of one row that disagree: which is true cannot be told, so the
    settlement is refused with the reason (nothing of it written), and stored once the
    report reads right."""
    from portal.settlements import ingest as ingest_module

    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    real = ingest_module._recon_rows

    def twice(payin, day, cache):
        rows = real(payin, day, cache)
        return rows + [{**r, "fee": r["fee"] + 1} for r in rows]

    monkeypatch.setattr(ingest_module, "_recon_rows", twice)
    result = ingest()
    assert result.stored == [] and [sid for sid, _ in result.refused] == [raw["id"]]
    assert "twice with different figures" in result.refused[0][1]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Settlement)) == 0
    monkeypatch.setattr(ingest_module, "_recon_rows", real)
    assert ingest().stored == [raw["id"]]


class _BigDayPayin:
    """A gateway with one settlement whose day's recon report has ``len(rows)`` rows."""

    def __init__(self, rows):
        self.rows = rows

    def fetch_settlements(self, **params):
        if params.get("skip"):
            return []
        return [
            {
                "id": "setl_big",
                "status": "processed",
                "amount": sum(r["amount"] for r in self.rows),
                "fees": 0,
                "tax": 0,
                "utr": "UTR1",
                "created_at": 1780300000,
            }
        ]

    def settlement_recon(self, year, month, day=None, count=None, skip=None):
        return self.rows[skip : skip + count]


def test_a_day_with_more_recon_rows_than_pages_is_refused_not_cut(ctx, monkeypatch):
    """More recon rows than MAX_PAGES pages hold: the day's settlements are refused (the
    reason reported, nothing of them stored), never stored for good without the rows past
    the limit; other days' settlements are not held up."""
    from portal.settlements import ingest as ingest_module

    rows = [
        {
            "entity_id": f"pay_{i:06d}",
            "type": "payment",
            "amount": 100,
            "fee": 0,
            "tax": 0,
            "settlement_id": "setl_big",
        }
        for i in range(1001)
    ]
    monkeypatch.setattr(ingest_module, "get_payin", lambda: _BigDayPayin(rows))
    monkeypatch.setattr(ingest_module, "MAX_PAGES", 1)  # 1 page of 1,000 rows, not 100
    result = ingest()
    assert result.stored == [] and [sid for sid, _ in result.refused] == ["setl_big"]
    assert "more than 1 pages of 1000 rows" in result.refused[0][1]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Settlement)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SettlementItem)) == 0
    # A day that fills its last page exactly is read whole.
    monkeypatch.setattr(ingest_module, "get_payin", lambda: _BigDayPayin(rows[:1000]))
    assert ingest().stored == ["setl_big"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SettlementItem)) == 1000


def test_a_settlement_whose_fee_differs_by_a_paisa_from_its_rows_is_flagged(
    paid, gateway, client, make_user, login
):
    """POLICY: settlement fees, tax and net matched to its payments. A header whose fee is
    a paisa above its (complete) recon rows' is posted as the bank saw it, and flagged: a
    HIGH alert to the admins and an audit row, once, and a note on its page."""
    from portal.audit.models import AuditEntry
    from portal.notify.models import Notification

    admin = make_user("admin", email="finance@example.com")
    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    gateway.sandbox.set_faults(
        alter={raw["id"]: {"fees": raw["fees"] + 1, "amount": raw["amount"] - 1}}
    )
    result = ingest()
    assert result.stored == [raw["id"]] and result.refused == []
    ingest()  # a later fetch flags nothing again
    gateway.sandbox.set_faults(alter={})

    txn = db.session.scalar(
        sa.select(LedgerTransaction).where(LedgerTransaction.kind == SETTLEMENT_KIND)
    )
    lines = {e.account.code: e.amount for e in txn.entries}
    assert lines[chart.BANK] == raw["amount"] - 1  # the header, as the bank saw it
    assert lines[chart.GATEWAY_FEES] + lines[chart.GST_INPUT] == raw["fees"] + 1
    [audit] = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "settlement.rows_differ")
    ).all()
    assert audit.after["fees"] == {"header": raw["fees"] + 1, "rows": raw["fees"]}
    notices = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.SETTLEMENT_MISMATCH")
    ).all()
    [notice] = [n for n in notices if n.user_id == admin.id]  # every admin, once
    assert {n.priority for n in notices} == {"HIGH"}
    assert raw["id"] in notice.body and "₹0.01" in notice.body

    login(admin)
    settlement_id = db.session.scalar(sa.select(Settlement.id))
    detail = client.get(f"/admin/settlements/{settlement_id}").get_data(as_text=True)
    assert "rows do not add up: fee differs by ₹0.01" in detail
    listing = client.get("/admin/settlements").get_data(as_text=True)
    assert "rows do not add up" in listing


# Razorpay's documented recon rows (GET /v1/settlements/recon/combined): each carries its
# own credit and debit. A payment's credit is its amount less its fee; a refund's debit is
# its amount; a transfer's debit its amount and fee; an adjustment either way (here one
# credited back, and a chargeback taken: a debit, with its dispute).
_RECON_ROWS = [
    {"entity_id": "pay_DOC1", "type": "payment", "credit": 488_200, "debit": 0,
     "amount": 500_000, "fee": 11_800, "tax": 1_800},
    {"entity_id": "rfnd_DOC1", "type": "refund", "credit": 0, "debit": 242_500,
     "amount": 242_500, "fee": 0, "tax": 0, "payment_id": "pay_DOC0"},
    {"entity_id": "trf_DOC1", "type": "transfer", "credit": 0, "debit": 100_296,
     "amount": 100_000, "fee": 296, "tax": 46, "payment_id": "pay_DOC1"},
    {"entity_id": "adj_DOC1", "type": "adjustment", "credit": 1_012, "debit": 0,
     "amount": 1_012, "fee": 0, "tax": 0},
    {"entity_id": "adj_DOC2", "type": "adjustment", "credit": 0, "debit": 5_000,
     "amount": 5_000, "fee": 0, "tax": 0, "dispute_id": "disp_DOC1"},
]  # fmt: skip


class _ReconPayin:
    """One processed settlement whose header is what its recon rows add up to (Razorpay's
    amount = Σ credit − Σ debit, fees = Σ fee, tax = Σ tax); counts the report's reads."""

    def __init__(self, rows):
        self.rows = [{**r, "settlement_id": "setl_DOC"} for r in rows]
        self.recon_reads = 0

    def fetch_settlements(self, **params):
        if params.get("skip"):
            return []
        return [
            {
                "id": "setl_DOC",
                "status": "processed",
                "amount": sum(r["credit"] - r["debit"] for r in self.rows),
                "fees": sum(r["fee"] for r in self.rows),
                "tax": sum(r["tax"] for r in self.rows),
                "utr": "UTRDOC",
                "created_at": int(utcnow().timestamp()) - 3600,
            }
        ]

    def settlement_recon(self, year, month, day=None, count=None, skip=None):
        self.recon_reads += 1
        shown = [r for r in self.rows if r["entity_id"] not in self.late]
        return shown[skip : skip + count]

    late = frozenset()  # entity ids Razorpay's report does not list yet

    def fetch_settlement(self, settlement_id):  # the console's "Razorpay's record"
        return self.fetch_settlements()[0]


def test_recon_rows_are_signed_by_their_own_credit_and_debit(
    ctx, monkeypatch, client, make_user, login
):
    """A chargeback adjustment and a transfer are debits, though neither is a refund:
    signed by their type (a refund the only debit) the settlement never added up, was read
    again by every fetch of the lookback and showed "recon rows above its gross". Signed
    by Razorpay's credit and debit it is complete when stored: not read again, no note."""
    from portal.audit.models import AuditEntry
    from portal.settlements import ingest as ingest_module

    payin = _ReconPayin(_RECON_ROWS)
    monkeypatch.setattr(ingest_module, "get_payin", lambda: payin)
    assert ingest().stored == ["setl_DOC"]
    assert payin.recon_reads == 1
    again = ingest()
    assert again.stored == [] and again.completed == [] and payin.recon_reads == 1

    s = db.session.scalar(sa.select(Settlement))
    assert s.rows_note() is None and len(s.items) == len(_RECON_ROWS)
    assert not db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "settlement.rows_differ")
    ).all()
    login(make_user("admin", email="finance@example.com"))
    detail = client.get(f"/admin/settlements/{s.id}").get_data(as_text=True)
    assert "rows do not add up" not in detail
    assert "−₹50<" in detail and "−₹1,000<" in detail  # the chargeback, the transfer
    assert "−₹10.12" not in detail and "₹10.12" in detail  # the adjustment credited back
    listing = client.get("/admin/settlements").get_data(as_text=True)
    assert "rows do not add up" not in listing


# The sample's transfer (₹1,000) and chargeback (₹50) less the adjustment credited back
# (₹10.12): what setl_DOC's rows other than payments and refunds took out of clearing.
_DOC_ADJUSTED = 100_000 + 5_000 - 1_012
_DOC_GROSS = 500_000 - 242_500 - _DOC_ADJUSTED


def _the_period_before_setl_doc():
    """The ledger as setl_DOC finds it: pay_DOC0 (₹2,425) captured, settled by an earlier
    settlement and refunded (the refund taken from setl_DOC), pay_DOC1 (₹5,000) captured.
    Returns the gateway's position (``account_position``) once setl_DOC is settled."""
    from portal.ledger.service import credit, debit, post

    doc0, doc1 = 242_500, 500_000
    post(
        "payment_captured", [debit(chart.GATEWAY_CLEARING, doc0), credit(chart.UNEARNED_FEES, doc0)]
    )
    post(
        SETTLEMENT_KIND,
        [debit(chart.BANK, doc0), credit(chart.GATEWAY_CLEARING, doc0)],
        idempotency_key="settlement:setl_DOC0",
    )
    post(
        "refund_processed", [debit(chart.UNEARNED_FEES, doc0), credit(chart.GATEWAY_CLEARING, doc0)]
    )
    post(
        "payment_captured", [debit(chart.GATEWAY_CLEARING, doc1), credit(chart.UNEARNED_FEES, doc1)]
    )
    db.session.commit()
    settlements = {"setl_DOC0": doc0, "setl_DOC": _DOC_GROSS}
    return {
        "captured": doc0 + doc1,
        "refunded": doc0,
        "settled": sum(settlements.values()),
        "settlements": settlements,
    }


def _with_recon(position):
    """The position as ``flask ledger check`` has it: with the complete settlements'
    transfers and adjustments from their stored recon rows."""
    from portal.settlements.queries import recon_adjustments

    return {**position, "adjustments": recon_adjustments()}


def _adjustment_postings():
    return db.session.scalars(
        sa.select(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == "settlement:setl_DOC:adjustments"
        )
    ).all()


def _adjustment_alerts(admin):
    from portal.notify.models import Notification

    return db.session.scalars(
        sa.select(Notification).where(
            Notification.kind == "alert.SETTLEMENT_ADJUSTMENT", Notification.user_id == admin.id
        )
    ).all()


def test_a_settlements_transfers_and_adjustments_leave_gateway_clearing_once(
    ctx, monkeypatch, client, make_user, login
):
    """Razorpay's amount is payments − refunds − fees − tax ± adjustments − transfers; the
    settlement's posting (its header) left clearing holding the transfer and the chargeback
    less the credit for ever (+₹1,039.88 of a settled period, nothing saying where it went).
    Now its other rows' signed total is posted once between gateway_clearing and
    gateway_adjustments: clearing is 0, the ledger checks pass, and the chargeback raises
    one HIGH alert."""
    from portal.settlements import ingest as ingest_module

    admin = make_user("admin", email="finance@example.com")
    position = _the_period_before_setl_doc()
    payin = _ReconPayin(_RECON_ROWS)
    monkeypatch.setattr(ingest_module, "get_payin", lambda: payin)
    assert ingest().stored == ["setl_DOC"]

    assert balance(chart.GATEWAY_CLEARING) == 0  # the period is settled
    assert verify_ledger() == []
    assert verify_gateway_clearing(_with_recon(position)) == []
    short = {**position, "captured": position["captured"] - 100}  # the check still bites
    assert "+100 paise unexplained" in verify_gateway_clearing(short)[0]
    assert balance("gateway_adjustments") == _DOC_ADJUSTED
    [txn] = _adjustment_postings()
    s = db.session.scalar(sa.select(Settlement))
    assert (txn.reference_type, txn.reference_id) == ("settlement", str(s.id))
    assert {e.account.code: e.amount for e in txn.entries} == {
        "gateway_adjustments": _DOC_ADJUSTED,
        chart.GATEWAY_CLEARING: -_DOC_ADJUSTED,
    }
    [alert] = _adjustment_alerts(admin)
    assert alert.priority == "HIGH" and "setl_DOC" in alert.body and "adj_DOC2" in alert.body
    assert "₹50.00" in alert.body and alert.link == f"/admin/settlements/{s.id}"

    # Again, and again: nothing posted or raised twice.
    ingest()
    ingest()
    assert len(_adjustment_postings()) == 1 and len(_adjustment_alerts(admin)) == 1
    assert balance(chart.GATEWAY_CLEARING) == 0

    login(admin)
    detail = client.get(f"/admin/settlements/{s.id}").get_data(as_text=True)
    assert 'id="settlement-adjustments"' in detail and "−₹1,039.88" in detail
    movement = db.session.scalar(
        sa.select(MoneyMovement.id).where(MoneyMovement.source == "settlement")
    )
    console = client.get(f"/admin/transactions/{movement}").get_data(as_text=True)
    assert (
        "settlement_adjustments" in console and f"gateway_adjustments Dr {_DOC_ADJUSTED}" in console
    )


def test_late_rows_completing_a_settlement_post_its_adjustments_then(ctx, monkeypatch, make_user):
    """The chargeback's row comes a day late: stored without it, the settlement is
    incomplete and posts no adjustments (its rows' total is not known yet); the fetch that
    adds the row posts them, once, and raises the alert."""
    from portal.settlements import ingest as ingest_module

    admin = make_user("admin", email="finance@example.com")
    position = _the_period_before_setl_doc()
    payin = _ReconPayin(_RECON_ROWS)
    payin.late = frozenset({"adj_DOC2"})
    monkeypatch.setattr(ingest_module, "get_payin", lambda: payin)
    assert ingest().stored == ["setl_DOC"]
    assert _adjustment_postings() == [] and _adjustment_alerts(admin) == []
    assert db.session.scalar(sa.select(Settlement.rows_complete)) is False
    assert verify_gateway_clearing(_with_recon(position)) == []  # as the gateway's lists see it

    payin.late = frozenset()
    assert ingest().completed == ["setl_DOC"]
    assert balance(chart.GATEWAY_CLEARING) == 0
    assert balance("gateway_adjustments") == _DOC_ADJUSTED
    assert verify_ledger() == [] and verify_gateway_clearing(_with_recon(position)) == []
    assert len(_adjustment_alerts(admin)) == 1

    again = ingest()
    assert again.completed == [] and again.stored == []
    assert len(_adjustment_postings()) == 1 and len(_adjustment_alerts(admin)) == 1


def test_the_command_posts_the_adjustments_of_settlements_stored_before_once(app, ctx, make_user):
    """A settlement stored complete before its adjustments were posted is never read
    again: ``flask settlements post-adjustments`` posts them (and raises the alert), once;
    one without such rows, or posted already, is left."""
    from portal.settlements.cli import settlements_cli

    admin = make_user("admin", email="finance@example.com")
    _stored_settlements(0, 1)  # a payment and a refund: nothing to post
    s = Settlement(
        razorpay_settlement_id="setl_DOC",
        status="processed",
        amount=13_000,
        fees=0,
        tax=0,
        settled_at=utcnow() - timedelta(days=20),
        rows_complete=True,
    )
    s.items.extend(
        [
            SettlementItem(
                entity_id="pay_OLD", entity_type="payment", amount=15_000, credit=15_000, debit=0
            ),
            SettlementItem(
                entity_id="adj_OLD", entity_type="adjustment", amount=2_000, credit=0, debit=2_000
            ),
        ]
    )
    db.session.add(s)
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(settlements_cli, ["post-adjustments"])
    assert result.exit_code == 0, result.output
    assert "1 settlement(s)" in result.output and "setl_DOC" in result.output
    assert balance("gateway_adjustments") == 2_000
    [txn] = _adjustment_postings()
    assert {e.account.code: e.amount for e in txn.entries}[chart.GATEWAY_CLEARING] == -2_000
    assert len(_adjustment_alerts(admin)) == 1
    again = runner.invoke(settlements_cli, ["post-adjustments"])
    assert again.exit_code == 0 and "0 settlement(s)" in again.output
    assert len(_adjustment_postings()) == 1 and len(_adjustment_alerts(admin)) == 1


def test_a_settlement_still_incomplete_when_it_leaves_the_lookback_is_flagged_once(
    paid, gateway, clock, client, make_user, login
):
    """Razorpay's report never lists one of a settlement's payments. Within the lookback
    every daily fetch reads its day again; the daily job that first no longer lists it
    flags it, once: an audit row and a HIGH alert to the admins, as a settlement whose rows
    differ. The settlements page shows it incomplete. (Before, it was dropped silently.)"""
    from portal.audit.models import AuditEntry
    from portal.config import setting
    from portal.jobs import run_periodic
    from portal.notify.models import Notification

    admin = make_user("admin", email="finance@example.com")
    pay_id = _payment_row(paid).reference
    gateway.sandbox.set_faults(unsettle=[pay_id])
    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    assert ingest().stored == [raw["id"]]

    def flagged():
        return db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "settlement.left_incomplete")
        ).all()

    run_periodic("settlements.fetch")  # within the lookback: read again, not flagged
    assert flagged() == []
    clock.shift(timedelta(days=setting("SETTLEMENT_LOOKBACK_DAYS"), hours=1))
    run_periodic("settlements.fetch")
    run_periodic("settlements.fetch")  # the next day's job flags nothing again
    db.session.expire_all()
    [audit] = flagged()
    assert audit.after["razorpay_settlement_id"] == raw["id"]
    assert (
        audit.after["gross"]["header"] - audit.after["gross"]["rows"] == _payment_row(paid).amount
    )
    notices = db.session.scalars(
        sa.select(Notification).where(
            Notification.kind == "alert.SETTLEMENT_MISMATCH", Notification.user_id == admin.id
        )
    ).all()
    [notice] = notices
    assert notice.priority == "HIGH" and raw["id"] in notice.body

    login(admin)
    listing = client.get("/admin/settlements").get_data(as_text=True)
    settlement_id = db.session.scalar(sa.select(Settlement.id))
    assert f'id="settlement-{settlement_id}"' in listing
    row = listing.split(f'id="settlement-{settlement_id}"')[1].split("</tr>")[0]
    assert "incomplete" in row
    detail = client.get(f"/admin/settlements/{settlement_id}").get_data(as_text=True)
    assert "<strong>Incomplete</strong>: it left the days read daily" in detail
    assert "no longer read" in detail

    # A wider fetch by hand still reads it: the report has the row now, and it is complete.
    gateway.sandbox.set_faults(unsettle=[])
    assert ingest(since=utcnow() - timedelta(days=30)).completed == [raw["id"]]
    listing = client.get("/admin/settlements").get_data(as_text=True)
    row = listing.split(f'id="settlement-{settlement_id}"')[1].split("</tr>")[0]
    assert "incomplete" not in row and "rows do not add up" not in row


def test_a_recon_row_is_signed_by_its_credit_and_debit_else_by_its_type():
    """Razorpay's credit and debit say which way a row goes; a row without them (stored
    before they were kept, or a report that lacks them) is signed by its type, a refund
    the one debit."""
    from portal.settlements.checks import signed_amount

    assert signed_amount("payment", 500_000, credit=488_200, debit=0) == 500_000
    assert signed_amount("adjustment", 5_000, credit=0, debit=5_000) == -5_000
    assert signed_amount("transfer", 100_000, credit=0, debit=100_296) == -100_000
    assert signed_amount("adjustment", 1_012, credit=1_012, debit=None) == 1_012
    assert signed_amount("refund", 2_500, None, None) == -2_500
    assert signed_amount("adjustment", 2_500, None, None) == 2_500


def _stored_settlements(first, n):
    """``n`` settlements with two recon rows each, as stored (no gateway)."""
    for k in range(first, first + n):
        s = Settlement(
            razorpay_settlement_id=f"setl_Q{k}",
            status="processed",
            amount=9_000,
            fees=1_000,
            tax=0,
            settled_at=utcnow() - timedelta(days=k),
            rows_complete=True,
        )
        s.items.extend(
            [
                SettlementItem(entity_id=f"pay_Q{k}", entity_type="payment", amount=15_000),
                SettlementItem(entity_id=f"rfnd_Q{k}", entity_type="refund", amount=5_000),
            ]
        )
        db.session.add(s)
    db.session.commit()


def test_the_settlements_list_costs_the_same_for_2_settlements_and_8(ctx, client, make_user, login):
    """Each row counts its recon rows and checks they add up: read with the page (one
    query for all of them), not once per settlement."""
    from tests.querycount import counted_queries

    login(make_user("admin", email="finance@example.com"))
    client.get("/admin/settlements")  # what a first request reads once (caches)
    costs = []
    for first, n in ((0, 2), (2, 6)):
        _stored_settlements(first, n)
        db.session.expire_all()
        with counted_queries() as statements:
            page = client.get("/admin/settlements")
        assert page.status_code == 200 and page.get_data(as_text=True).count("setl_Q") == first + n
        costs.append(len(statements))
    assert costs[0] == costs[1], costs


@pytest.mark.parametrize("days, said", [(2, "T+2 working days"), (1, "T+1 working day")])
def test_the_page_says_the_settlement_days_the_setting_holds(
    app, client, make_user, login, monkeypatch, days, said
):
    """Nothing overdue: the page names the working days the overdue rule counts by
    (``SETTLEMENT_WORKING_DAYS``), not a "T+2" of its own."""
    monkeypatch.setitem(app.config, "SETTLEMENT_WORKING_DAYS", days)
    login(make_user("admin"))
    listing = client.get("/admin/settlements").get_data(as_text=True)
    assert f"Every capture Razorpay was due to settle ({said}) is settled." in listing
