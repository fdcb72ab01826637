"""Every rule and message of POLICY.md "Wallet and manual adjustments", through the
services: admin only, the note, credit and debit with the balances recorded and a
balanced ledger posting, the threshold with the 24-hour window, a second admin's approval
(and the maker's refusal), never below zero (when asked and when approved)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.service import NotFound, PermissionDenied
from portal.audit.models import AuditEntry
from portal.config import policy
from portal.db import utcnow
from portal.domain.states import AdjustmentStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import balance
from portal.wallet import adjustments as adj
from portal.wallet.models import WalletAdjustment
from tests.wallet.conftest import fresh

NOTE = "Goodwill credit after the clinic's billing mistake"
REASON = "Goodwill credit for a billing mistake"


def make(admin, patient, direction, paise, note=NOTE, reason=REASON, **kw):
    return adj.create_adjustment(fresh(admin), patient.id, direction, paise, note, reason, **kw)


def wallet(patient):
    return balance(chart.patient_wallet(patient.id))


def actions():
    return db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()


def test_a_credit_under_the_threshold_is_applied_with_balances_and_a_balanced_posting(ctx, people):
    done = make(people.admin, people.patient, adj.CREDIT, 2_500_00)
    assert done.status == AdjustmentStatus.APPLIED
    assert (done.balance_before, done.balance_after) == (0, 2_500_00)
    assert done.amount == 2_500_00 and not done.needs_approval
    assert wallet(people.patient) == 2_500_00
    txn = db.session.get(LedgerTransaction, done.ledger_transaction_id)
    assert txn.kind == "wallet_adjustment" and txn.memo == REASON
    assert sum(e.amount for e in txn.entries) == 0
    assert {e.account.code: e.amount for e in txn.entries} == {
        chart.WALLET_ADJUSTMENTS: 2_500_00,
        chart.patient_wallet(people.patient.id): -2_500_00,
    }
    assert actions() == ["wallet.adjustment_applied"]


def test_a_debit_records_previous_and_new_balance(ctx, people):
    make(people.admin, people.patient, adj.CREDIT, 5_000_00)
    done = make(people.admin2, people.patient, adj.DEBIT, 1_200_50)
    assert done.amount == -1_200_50
    assert (done.balance_before, done.balance_after) == (5_000_00, 3_799_50)
    assert wallet(people.patient) == 3_799_50


def test_only_administrators_may_adjust(ctx, people):
    for who in (people.patient, people.doctor):
        with pytest.raises(PermissionDenied, match=adj.MSG_ADMIN_ONLY):
            make(who, people.patient, adj.CREDIT, 100_00)
    assert db.session.scalar(sa.select(sa.func.count(WalletAdjustment.id))) == 0


@pytest.mark.parametrize("note", ["", "   ", "too short", " 123456789 "])
def test_a_note_under_ten_characters_is_refused(ctx, people, note):
    with pytest.raises(adj.AdjustmentError) as refused:
        make(people.admin, people.patient, adj.CREDIT, 100_00, note=note)
    assert refused.value.errors == {"note": adj.MSG_NOTE.format(n=10)}
    assert policy().note_min_length == 10
    assert db.session.scalar(sa.select(sa.func.count(WalletAdjustment.id))) == 0


def test_a_note_of_exactly_ten_characters_is_enough(ctx, people):
    assert make(people.admin, people.patient, adj.CREDIT, 100, note="0123456789").id


@pytest.mark.parametrize(
    "direction, amount, field, message",
    [
        ("credit", 0, "amount", adj.MSG_AMOUNT),
        ("credit", -500, "amount", adj.MSG_AMOUNT),
        ("credit", 10.5, "amount", adj.MSG_AMOUNT),  # never a float in a money path
        ("credit", True, "amount", adj.MSG_AMOUNT),
        ("credit", 10**13, "amount", adj.MSG_TOO_LARGE),
        ("refund", 500, "direction", adj.MSG_DIRECTION),
    ],
)
def test_bad_requests_are_refused_with_their_message(
    ctx, people, direction, amount, field, message
):
    with pytest.raises(adj.AdjustmentError) as refused:
        make(people.admin, people.patient, direction, amount)
    assert refused.value.errors[field] == message


def test_the_public_reason_is_required(ctx, people):
    with pytest.raises(adj.AdjustmentError) as refused:
        make(people.admin, people.patient, adj.CREDIT, 100_00, reason="  ")
    assert refused.value.errors == {"public_reason": adj.MSG_REASON}


def test_only_a_patient_has_a_wallet(ctx, people):
    with pytest.raises(adj.AdjustmentError) as refused:
        make(people.admin, people.doctor, adj.CREDIT, 100_00)
    assert refused.value.errors == {"form": adj.MSG_NOT_PATIENT}
    with pytest.raises(NotFound):
        adj.create_adjustment(fresh(people.admin), 999_999, adj.CREDIT, 100, NOTE, REASON)


def test_exactly_the_threshold_is_applied_one_paisa_more_waits(ctx, people):
    threshold = policy().adjustment_approval_threshold
    assert threshold == 10_000_00
    assert make(people.admin, people.patient, adj.CREDIT, threshold).status == "APPLIED"
    other = make(people.admin2, people.patient, adj.CREDIT, threshold + 1)
    assert other.status == AdjustmentStatus.PENDING_APPROVAL and other.needs_approval
    assert other.balance_before is None and other.ledger_transaction_id is None
    assert wallet(people.patient) == threshold


def test_a_large_adjustment_waits_and_moves_no_money(ctx, people):
    done = make(people.admin, people.patient, adj.CREDIT, 15_000_00)
    assert done.status == AdjustmentStatus.PENDING_APPROVAL
    assert wallet(people.patient) == 0
    assert actions() == ["wallet.adjustment_requested"]
    assert db.session.scalar(sa.select(sa.func.count(LedgerTransaction.id))) == 0


def test_splitting_15000_into_two_of_7500_still_waits(ctx, people):
    first = make(people.admin, people.patient, adj.CREDIT, 7_500_00)
    second = make(people.admin, people.patient, adj.CREDIT, 7_500_00)
    assert first.status == AdjustmentStatus.APPLIED
    assert second.status == AdjustmentStatus.PENDING_APPROVAL
    assert second.window_total == 15_000_00
    assert wallet(people.patient) == 7_500_00


def test_debits_count_toward_the_window_by_their_size(ctx, people):
    make(people.admin2, people.patient, adj.CREDIT, 9_000_00)
    make(people.admin, people.patient, adj.DEBIT, 6_000_00)
    second = make(people.admin, people.patient, adj.CREDIT, 5_000_00)
    assert second.window_total == 11_000_00 and second.needs_approval


def test_the_window_is_one_admin_one_wallet_24_hours(ctx, people, make_user):
    other_patient = make_user("patient", email="other@example.com")
    make(people.admin, people.patient, adj.CREDIT, 7_500_00)
    # another admin, or another wallet: counted apart
    assert make(people.admin2, people.patient, adj.CREDIT, 7_500_00).status == "APPLIED"
    assert make(people.admin, other_patient, adj.CREDIT, 7_500_00).status == "APPLIED"
    # 24 hours later the first no longer counts
    with time_machine.travel(utcnow() + timedelta(hours=24, seconds=1), tick=False):
        later = make(people.admin, people.patient, adj.CREDIT, 7_500_00)
    assert later.status == AdjustmentStatus.APPLIED and later.window_total == 7_500_00


def test_a_rejected_adjustment_does_not_count(ctx, people):
    big = make(people.admin, people.patient, adj.CREDIT, 12_000_00)
    adj.reject_adjustment(fresh(people.admin2), big.id, "Not agreed")
    assert make(people.admin, people.patient, adj.CREDIT, 7_500_00).status == "APPLIED"


def test_a_second_admin_approves_and_the_money_moves(ctx, people):
    waiting = make(people.admin, people.patient, adj.CREDIT, 15_000_00)
    done = adj.approve_adjustment(fresh(people.admin2), waiting.id, "Checked the invoice")
    assert done.status == AdjustmentStatus.APPLIED
    assert done.decided_by_id == people.admin2.id and done.decision_note == "Checked the invoice"
    assert (done.balance_before, done.balance_after) == (0, 15_000_00)
    assert wallet(people.patient) == 15_000_00
    assert actions() == ["wallet.adjustment_requested", "wallet.adjustment_approved"]
    approved = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert approved.actor_id == people.admin2.id
    assert approved.before == {"balance": 0} and approved.after["balance"] == 15_000_00


def test_the_maker_can_neither_approve_nor_reject(ctx, people):
    waiting = make(people.admin, people.patient, adj.CREDIT, 15_000_00)
    for decide in (adj.approve_adjustment, adj.reject_adjustment):
        with pytest.raises(adj.AdjustmentError) as refused:
            decide(fresh(people.admin), waiting.id)
        assert refused.value.errors == {"form": adj.MSG_SECOND_ADMIN}
    db.session.expire_all()
    assert db.session.get(WalletAdjustment, waiting.id).status == "PENDING_APPROVAL"
    assert wallet(people.patient) == 0


def test_a_non_admin_cannot_decide(ctx, people):
    waiting = make(people.admin, people.patient, adj.CREDIT, 15_000_00)
    with pytest.raises(PermissionDenied):
        adj.approve_adjustment(fresh(people.patient), waiting.id)


def test_a_decision_is_taken_once(ctx, people, make_user):
    third = make_user("admin", email="third@example.com")
    waiting = make(people.admin, people.patient, adj.CREDIT, 15_000_00)
    adj.reject_adjustment(fresh(people.admin2), waiting.id, "No")
    with pytest.raises(adj.AdjustmentError) as refused:
        adj.approve_adjustment(fresh(third), waiting.id)
    assert refused.value.errors == {"form": adj.MSG_DECIDED}
    assert wallet(people.patient) == 0
    with pytest.raises(NotFound):
        adj.approve_adjustment(fresh(third), 424242)


def test_a_debit_beyond_the_balance_is_refused_when_asked(ctx, people):
    make(people.admin, people.patient, adj.CREDIT, 1_000_00)
    with pytest.raises(adj.AdjustmentError) as refused:
        make(people.admin2, people.patient, adj.DEBIT, 1_000_01)
    assert refused.value.errors == {"amount": adj.MSG_INSUFFICIENT}
    assert make(people.admin2, people.patient, adj.DEBIT, 1_000_00).balance_after == 0


def test_a_debit_approved_after_the_money_left_is_refused_and_stays_waiting(ctx, people, make_user):
    third = make_user("admin", email="third@example.com")
    make(people.admin2, people.patient, adj.CREDIT, 9_000_00)
    make(people.admin, people.patient, adj.CREDIT, 9_000_00)  # 18,000 in the wallet
    waiting = make(people.admin, people.patient, adj.DEBIT, 12_000_00)  # window 21,000: waits
    assert waiting.status == AdjustmentStatus.PENDING_APPROVAL
    assert make(third, people.patient, adj.DEBIT, 7_000_00).status == "APPLIED"  # 11,000 left
    with pytest.raises(adj.AdjustmentError) as refused:
        adj.approve_adjustment(fresh(people.admin2), waiting.id)
    assert refused.value.errors == {"amount": adj.MSG_INSUFFICIENT}
    db.session.expire_all()
    assert db.session.get(WalletAdjustment, waiting.id).status == "PENDING_APPROVAL"
    assert wallet(people.patient) == 11_000_00
    assert "wallet.adjustment_approved" not in actions()


def test_the_same_form_token_makes_one_adjustment(ctx, people):
    first = make(people.admin, people.patient, adj.CREDIT, 500_00, token="tok-1")
    again = make(people.admin, people.patient, adj.CREDIT, 500_00, token="tok-1")
    assert again.id == first.id
    assert wallet(people.patient) == 500_00


def test_the_other_admins_are_alerted_when_one_waits(ctx, people):
    from portal.notify.models import Notification

    make(people.admin, people.patient, adj.CREDIT, 500_00)
    kinds = db.session.scalars(sa.select(Notification.kind)).all()
    assert "alert.ADJUSTMENT_PENDING_APPROVAL" not in kinds
    make(people.admin, people.patient, adj.CREDIT, 15_000_00)
    db.session.expire_all()
    notices = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.ADJUSTMENT_PENDING_APPROVAL")
    ).all()
    assert {n.user_id for n in notices} >= {people.admin2.id}
    # One notice per admin, read in no order: each must say it.
    assert all("credit of ₹15,000" in n.title for n in notices)
    assert {n.link for n in notices} == {"/admin/approvals?kind=wallet_adjustment"}
