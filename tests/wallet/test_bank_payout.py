"""Paying a patient's wallet balance out by bank transfer (``portal.wallet.bank``): admin
only, the amount within the balance, the note and the bank's transfer reference (UTR, its
format, used once), one balanced posting debit wallet / credit ``bank``, the adjustments'
maker-checker rule and window, audited, on the transactions console as bank out with the
UTR as its reference (rebuilt the same). Also the cash pay-out's console row shows its
desk receipt (it showed nothing)."""

import pytest
import sqlalchemy as sa

from portal.accounts.service import PermissionDenied
from portal.audit.models import AuditEntry
from portal.db import clinic_today, utcnow
from portal.domain.states import AdjustmentStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.transactions import models as mm
from portal.transactions import queries as tq
from portal.transactions.filters import MovementFilter
from portal.transactions.models import MoneyMovement
from portal.transactions.projection import rebuild
from portal.wallet import adjustments as adj
from portal.wallet import bank, cash
from portal.wallet.models import BANK_PAYOUT, WalletAdjustment
from tests.wallet.conftest import fresh
from tests.wallet.test_cash_payout import CREDIT_NOTE, fund, fund_18000, wallet

NOTE = "Closing balance sent by NEFT to the patient's account"
UTR = "SBIN226012345678"  # NEFT: 16 characters


def pay(people, paise, *, admin=None, note=NOTE, utr=UTR, **kw):
    return bank.pay_out(fresh(admin or people.admin), people.patient.id, paise, note, utr, **kw)


def bank_payouts():
    return db.session.scalars(
        sa.select(WalletAdjustment).where(WalletAdjustment.kind == BANK_PAYOUT)
    ).all()


def test_a_bank_payout_posts_wallet_to_bank_and_is_audited(ctx, people):
    fund(people, 2_000_00)
    in_bank, desk, expense = (
        balance(chart.BANK),
        balance(chart.CASH_DESK),
        balance(chart.WALLET_ADJUSTMENTS),
    )
    done = pay(people, 1_500_50, utr=" sbin 2260 1234 5678 ")  # as typed from the advice
    assert done.status == AdjustmentStatus.APPLIED and done.kind == BANK_PAYOUT
    assert (done.amount, done.receipt_no) == (-1_500_50, UTR)
    assert (done.balance_before, done.balance_after) == (2_000_00, 499_50)
    txn = db.session.get(LedgerTransaction, done.ledger_transaction_id)
    assert txn.kind == bank.LEDGER_KIND == "wallet_bank_payout"
    assert {e.account.code: e.amount for e in txn.entries} == {
        chart.patient_wallet(people.patient.id): 1_500_50,
        chart.BANK: -1_500_50,
    }
    assert balance(chart.BANK) == in_bank - 1_500_50
    assert (balance(chart.CASH_DESK), balance(chart.WALLET_ADJUSTMENTS)) == (desk, expense)
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "wallet.bank_payout_applied")
    ).one()
    assert entry.object_type == "wallet_adjustment" and entry.object_id == str(done.id)
    assert entry.after["kind"] == BANK_PAYOUT and entry.after["receipt_no"] == UTR
    assert entry.after["balance"] == 499_50 and entry.before == {"balance": 2_000_00}


def test_only_administrators_pay_out_by_bank(ctx, people):
    fund(people, 100_00)
    for who in (people.patient, people.doctor):
        with pytest.raises(PermissionDenied):
            pay(people, 100_00, admin=who)
    assert wallet(people) == 100_00 and bank_payouts() == []


@pytest.mark.parametrize(
    "paise, note, utr, field, message",
    [
        (0, NOTE, UTR, "amount", adj.MSG_AMOUNT),
        (-100, NOTE, UTR, "amount", adj.MSG_AMOUNT),
        ("100", NOTE, UTR, "amount", adj.MSG_AMOUNT),
        (True, NOTE, UTR, "amount", adj.MSG_AMOUNT),
        (100_01, NOTE, UTR, "amount", bank.MSG_MORE_THAN_BALANCE),
        (100, "too short", UTR, "note", adj.MSG_NOTE.format(n=10)),
        (100, NOTE, "  ", "utr", bank.MSG_UTR),
        (100, NOTE, None, "utr", bank.MSG_UTR),
        (100, NOTE, "12345678901", "utr", bank.MSG_UTR_FORMAT),  # 11: too short
        (100, NOTE, "A" * 4 + "1" * 19, "utr", bank.MSG_UTR_FORMAT),  # 23: too long
        (100, NOTE, "SBIN-22601234567", "utr", bank.MSG_UTR_FORMAT),
        (100, NOTE, "pout_00000000000001", "utr", bank.MSG_UTR_FORMAT),  # a Razorpay id
        (100, NOTE, "ABCDEFGHIJKLMNOP", "utr", bank.MSG_UTR_FORMAT),  # no digit
        (100, NOTE, "१२३४५६७८९०१२", "utr", bank.MSG_UTR_FORMAT),  # not ASCII digits
    ],
)
def test_bad_requests_are_refused_with_their_message(ctx, people, paise, note, utr, field, message):
    fund(people, 100_00)
    with pytest.raises(adj.AdjustmentError) as refused:
        pay(people, paise, note=note, utr=utr)
    assert refused.value.errors[field] == message
    assert wallet(people) == 100_00 and bank_payouts() == []


@pytest.mark.parametrize("utr", ["412345678901", "HDFCR52026061000012345", "N123456789012345"])
def test_imps_upi_rtgs_and_neft_references_are_taken(ctx, people, utr):
    fund(people, 100_00)
    assert pay(people, 100_00, utr=utr).receipt_no == utr


def test_a_utr_names_one_transfer(ctx, people, make_user):
    """A transfer recorded twice (another admin, another form) would take its amount twice
    from the wallet: the UTR of an applied or waiting pay-out is refused; once rejected,
    it may be recorded again."""
    fund(people, 1_000_00)
    first = pay(people, 100_00)
    with pytest.raises(adj.AdjustmentError) as again:
        pay(people, 100_00, admin=people.admin2, utr=UTR.lower())
    assert again.value.errors == {"utr": bank.MSG_UTR_USED.format(id=first.id)}
    assert wallet(people) == 900_00
    other = make_user("patient", email="other@example.com", name="Other")
    adj.create_adjustment(fresh(people.admin2), other.id, adj.CREDIT, 100_00, CREDIT_NOTE, "x")
    with pytest.raises(adj.AdjustmentError):  # any wallet's pay-out: one transfer
        bank.pay_out(fresh(people.admin), other.id, 100_00, NOTE, UTR)


def test_a_rejected_payouts_utr_may_be_recorded_again(ctx, people, make_user):
    fund_18000(people, make_user)
    waiting = pay(people, 12_000_00)
    with pytest.raises(adj.AdjustmentError):
        pay(people, 100_00, admin=people.admin2)  # the waiting one holds it
    adj.reject_adjustment(fresh(people.admin2), waiting.id, note="Wrong amount typed")
    assert pay(people, 900_00, admin=people.admin2).status == AdjustmentStatus.APPLIED


def test_the_same_form_sent_twice_pays_out_once(ctx, people):
    fund(people, 500_00)
    first = pay(people, 300_00, token="tok-1")
    assert pay(people, 300_00, token="tok-1").id == first.id
    assert wallet(people) == 200_00 and len(bank_payouts()) == 1


def test_the_whole_balance_of_a_closed_account_may_be_paid_out(ctx, people):
    fund(people, 750_00)
    patient = fresh(people.patient)
    patient.closed_at = utcnow()
    db.session.commit()
    assert pay(people, 750_00).status == AdjustmentStatus.APPLIED
    assert wallet(people) == 0


def test_above_the_limit_it_waits_for_another_admin_who_approves(ctx, people, make_user):
    fund_18000(people, make_user)
    waiting = pay(people, 12_000_00)
    assert waiting.status == AdjustmentStatus.PENDING_APPROVAL and waiting.needs_approval
    assert waiting.what == "bank transfer"
    assert wallet(people) == 18_000_00  # no money moved yet
    with pytest.raises(adj.AdjustmentError) as own:
        adj.approve_adjustment(fresh(people.admin), waiting.id)
    assert own.value.errors == {"form": adj.MSG_SECOND_ADMIN}
    done = adj.approve_adjustment(fresh(people.admin2), waiting.id, note="Bank advice seen")
    assert done.status == AdjustmentStatus.APPLIED and wallet(people) == 6_000_00
    txn = db.session.get(LedgerTransaction, done.ledger_transaction_id)
    assert txn.kind == bank.LEDGER_KIND
    assert {e.account.code for e in txn.entries} == {
        chart.BANK,
        chart.patient_wallet(people.patient.id),
    }
    actions = db.session.scalars(
        sa.select(AuditEntry.action)
        .where(
            AuditEntry.object_id == str(done.id),
            AuditEntry.action.startswith("wallet.bank_payout"),
        )
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["wallet.bank_payout_requested", "wallet.bank_payout_approved"]


def test_approval_refused_when_the_money_left_meanwhile(ctx, people, make_user):
    fund_18000(people, make_user)
    waiting = pay(people, 12_000_00)
    fourth = make_user("admin", email="fourth@example.com", name="Fourth Admin")
    cash.pay_out(fresh(fourth), people.patient.id, 9_000_00, NOTE, "D-9")
    with pytest.raises(adj.AdjustmentError) as short:
        adj.approve_adjustment(fresh(people.admin2), waiting.id)
    assert short.value.errors == {"amount": bank.MSG_MORE_THAN_BALANCE}
    assert db.session.get(WalletAdjustment, waiting.id).status == AdjustmentStatus.PENDING_APPROVAL


def test_bank_payouts_count_in_the_admins_24_hour_window(ctx, people, make_user):
    """Split into a cash and a bank pay-out under the limit, it still waits."""
    fund_18000(people, make_user)
    cash.pay_out(fresh(people.admin), people.patient.id, 6_000_00, NOTE, "D-1")
    assert pay(people, 5_000_00).status == AdjustmentStatus.PENDING_APPROVAL


def test_on_the_console_as_bank_out_with_its_utr_and_rebuilt_the_same(ctx, people):
    fund(people, 1_000_00)
    done = pay(people, 300_00)
    desk = cash.pay_out(fresh(people.admin), people.patient.id, 200_00, NOTE, "D-0042")
    row = tq.movement_for("wallet_adjustment", done.id)
    assert (row.type, row.bucket, row.amount, row.net, row.reference) == (
        mm.BANK_PAYOUT,
        mm.BUCKET_BANK_OUT,
        300_00,
        -300_00,
        UTR,
    )
    assert row.type_label == "Bank transfer paid out"
    # The gap seen last session: the cash pay-out's row showed no reference.
    assert tq.movement_for("wallet_adjustment", desk.id).reference == "D-0042"
    today = clinic_today()  # the console's days are the clinic's (failed after 18:30 UTC)
    s = tq.summary(MovementFilter(start=today, end=today))
    assert (s.cash_out, s.bank_out, s.net) == (200_00, 300_00, -500_00)
    keep = ("type", "bucket", "amount", "net", "status", "patient_id", "reference")
    live = {
        i: {c: getattr(tq.movement_for("wallet_adjustment", i), c) for c in keep}
        for i in (done.id, desk.id)
    }
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    rebuild()
    again = {
        i: {c: getattr(tq.movement_for("wallet_adjustment", i), c) for c in keep}
        for i in (done.id, desk.id)
    }
    assert again == live


def test_a_desk_receipt_of_64_characters_is_on_its_console_row_whole(ctx, people):
    fund(people, 100_00)
    receipt = "R" * 64
    desk = cash.pay_out(fresh(people.admin), people.patient.id, 100_00, NOTE, receipt)
    db.session.expire_all()
    assert tq.movement_for("wallet_adjustment", desk.id).reference == receipt


def test_a_waiting_or_rejected_bank_payout_is_no_bank_out(ctx, people, make_user):
    fund_18000(people, make_user)
    waiting = pay(people, 11_000_00)
    assert tq.movement_for("wallet_adjustment", waiting.id).bucket is None
    adj.reject_adjustment(fresh(people.admin2), waiting.id, note="Transfer bounced")
    assert tq.movement_for("wallet_adjustment", waiting.id).bucket is None
    assert wallet(people) == 18_000_00
