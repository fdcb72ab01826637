"""Paying a patient's wallet balance out in cash at the desk (``portal.wallet.cash``):
admin only, the amount within the balance, the note and the desk receipt, one balanced
posting debit wallet / credit ``cash_desk``, the adjustments' maker-checker rule and
window, audited, on the patient's wallet history, and on the transactions console as
cash out (rebuilt the same)."""

import pytest
import sqlalchemy as sa

from portal.accounts.service import PermissionDenied
from portal.audit.models import AuditEntry
from portal.db import utcnow
from portal.domain.states import AdjustmentStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.transactions import models as mm
from portal.transactions import queries as tq
from portal.transactions.models import MoneyMovement
from portal.transactions.projection import rebuild
from portal.wallet import adjustments as adj
from portal.wallet import cash
from portal.wallet.models import CASH_PAYOUT, WalletAdjustment
from tests.wallet.conftest import fresh

NOTE = "Closing balance handed over in cash"
CREDIT_NOTE = "Goodwill credit after the clinic's billing mistake"


def fund(people, paise, admin=None):
    """Money in the wallet to pay out (another admin's credit: not in the maker's window)."""
    adj.create_adjustment(
        fresh(admin or people.admin2), people.patient.id, adj.CREDIT, paise, CREDIT_NOTE, "Goodwill"
    )


def fund_18000(people, make_user):
    fund(people, 9_000_00)
    fund(people, 9_000_00, make_user("admin", email="third@example.com", name="Third Admin"))


def pay(people, paise, *, admin=None, note=NOTE, receipt="D-0042", **kw):
    return cash.pay_out(fresh(admin or people.admin), people.patient.id, paise, note, receipt, **kw)


def wallet(people):
    return balance(chart.patient_wallet(people.patient.id))


def test_a_cash_payout_posts_wallet_to_cash_desk_and_is_audited(ctx, people):
    fund(people, 2_000_00)
    desk, expense = balance(chart.CASH_DESK), balance(chart.WALLET_ADJUSTMENTS)
    done = pay(people, 1_500_50)
    assert done.status == AdjustmentStatus.APPLIED and done.kind == CASH_PAYOUT
    assert (done.amount, done.receipt_no) == (-1_500_50, "D-0042")
    assert (done.balance_before, done.balance_after) == (2_000_00, 499_50)
    txn = db.session.get(LedgerTransaction, done.ledger_transaction_id)
    assert txn.kind == cash.LEDGER_KIND
    assert {e.account.code: e.amount for e in txn.entries} == {
        chart.patient_wallet(people.patient.id): 1_500_50,
        chart.CASH_DESK: -1_500_50,
    }
    assert balance(chart.CASH_DESK) == desk - 1_500_50
    assert balance(chart.WALLET_ADJUSTMENTS) == expense
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "wallet.cash_payout_applied")
    ).one()
    assert entry.object_type == "wallet_adjustment" and entry.object_id == str(done.id)
    assert entry.after["receipt_no"] == "D-0042" and entry.after["balance"] == 499_50


def test_only_administrators_pay_out_cash(ctx, people):
    fund(people, 100_00)
    for who in (people.patient, people.doctor):
        with pytest.raises(PermissionDenied):
            pay(people, 100_00, admin=who)
    assert wallet(people) == 100_00


@pytest.mark.parametrize(
    "paise, note, receipt, field, message",
    [
        (0, NOTE, "D-1", "amount", adj.MSG_AMOUNT),
        (-100, NOTE, "D-1", "amount", adj.MSG_AMOUNT),
        (True, NOTE, "D-1", "amount", adj.MSG_AMOUNT),
        (100_01, NOTE, "D-1", "amount", cash.MSG_MORE_THAN_BALANCE),
        (100, "too short", "D-1", "note", adj.MSG_NOTE.format(n=10)),
        (100, NOTE, "  ", "receipt_no", cash.MSG_RECEIPT),
        (100, NOTE, "R" * 65, "receipt_no", cash.MSG_RECEIPT_LONG),
    ],
)
def test_bad_requests_are_refused_with_their_message(
    ctx, people, paise, note, receipt, field, message
):
    fund(people, 100_00)
    with pytest.raises(adj.AdjustmentError) as refused:
        pay(people, paise, note=note, receipt=receipt)
    assert refused.value.errors[field] == message
    assert wallet(people) == 100_00
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(WalletAdjustment.kind == CASH_PAYOUT))
        == 0
    )


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
    assert wallet(people) == 18_000_00  # no money moved yet
    with pytest.raises(adj.AdjustmentError) as own:
        adj.approve_adjustment(fresh(people.admin), waiting.id)
    assert own.value.errors == {"form": adj.MSG_SECOND_ADMIN}
    done = adj.approve_adjustment(fresh(people.admin2), waiting.id, note="Receipt seen")
    assert done.status == AdjustmentStatus.APPLIED
    assert wallet(people) == 6_000_00
    txn = db.session.get(LedgerTransaction, done.ledger_transaction_id)
    assert {e.account.code for e in txn.entries} == {
        chart.CASH_DESK,
        chart.patient_wallet(people.patient.id),
    }
    actions = db.session.scalars(
        sa.select(AuditEntry.action)
        .where(
            AuditEntry.object_id == str(done.id),
            AuditEntry.action.startswith("wallet.cash_payout"),
        )
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["wallet.cash_payout_requested", "wallet.cash_payout_approved"]


def test_cash_payouts_count_in_the_admins_24_hour_window(ctx, people, make_user):
    """Split into pay-outs and debits under the limit, it still waits (as adjustments)."""
    fund_18000(people, make_user)
    adj.create_adjustment(fresh(people.admin), people.patient.id, adj.DEBIT, 6_000_00, NOTE, "x")
    assert pay(people, 5_000_00).status == AdjustmentStatus.PENDING_APPROVAL


def test_on_the_patients_history_and_the_console_and_rebuilt_the_same(ctx, people):
    fund(people, 300_00)
    done = pay(people, 300_00)
    row = tq.movement_for("wallet_adjustment", done.id)
    assert (row.type, row.bucket, row.amount, row.net) == (
        mm.CASH_PAYOUT,
        mm.BUCKET_CASH_OUT,
        300_00,
        -300_00,
    )
    assert row.type_label == "Cash paid out (desk)"
    live = {c: getattr(row, c) for c in ("type", "bucket", "amount", "net", "status", "patient_id")}
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    rebuild()
    again = tq.movement_for("wallet_adjustment", done.id)
    assert {c: getattr(again, c) for c in live} == live


def test_a_waiting_or_rejected_payout_is_no_cash_out(ctx, people, make_user):
    fund_18000(people, make_user)
    waiting = pay(people, 11_000_00)
    assert tq.movement_for("wallet_adjustment", waiting.id).bucket is None
    adj.reject_adjustment(fresh(people.admin2), waiting.id, note="No receipt")
    assert tq.movement_for("wallet_adjustment", waiting.id).bucket is None
    assert wallet(people) == 18_000_00
