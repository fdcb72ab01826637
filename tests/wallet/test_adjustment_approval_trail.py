"""The audit-log report's "approval steps only" keeps a wallet adjustment's whole
maker-checker trail (docs/reports.md: "requests, approvals, refusals"), of every kind: a
manual credit or debit, a cash pay-out at the desk, a bank transfer (re-read finding: the
maker's request was left out, its name carrying none of the words the filter guessed by).
An adjustment below the limit ("applied" at once) is no step."""

import pytest

from portal.extensions import db
from portal.reports import audit_log
from portal.wallet import adjustments as adj
from portal.wallet import bank, cash
from tests.wallet.conftest import fresh
from tests.wallet.test_cash_payout import fund_18000


def approval_steps():
    f = audit_log.parse({"approvals": "1"})
    return sorted(r.AuditEntry.action for r in db.session.execute(audit_log.query(f)))


def test_approval_steps_only_keeps_a_wallet_adjustments_request(ctx, people):
    waiting = adj.create_adjustment(
        fresh(people.admin), people.patient.id, adj.CREDIT, 15_000_00,
        "Goodwill credit after the clinic's billing mistake", "Goodwill credit",
    )  # fmt: skip
    adj.approve_adjustment(fresh(people.admin2), waiting.id, "Checked the invoice")
    # The maker's request is the first step of the trail the checker's approval closes.
    assert approval_steps() == ["wallet.adjustment_approved", "wallet.adjustment_requested"]


def _cash(people):
    note = "Closing balance handed over in cash"
    return cash.pay_out(fresh(people.admin), people.patient.id, 12_000_00, note, "D-0042")


def _bank(people):
    note = "Closing balance sent by NEFT to the patient's account"
    return bank.pay_out(fresh(people.admin), people.patient.id, 12_000_00, note, "SBIN226012345678")


@pytest.mark.parametrize(
    "pay, decide, expected",
    [
        (
            _cash,
            adj.approve_adjustment,
            ["wallet.cash_payout_approved", "wallet.cash_payout_requested"],
        ),
        (
            _bank,
            adj.reject_adjustment,
            ["wallet.bank_payout_rejected", "wallet.bank_payout_requested"],
        ),
    ],
    ids=["cash, approved", "bank, rejected"],
)
def test_approval_steps_only_keeps_a_payouts_request_and_decision(
    ctx, people, make_user, pay, decide, expected
):
    fund_18000(people, make_user)  # two credits under the limit: applied, no steps
    waiting = pay(people)
    assert waiting.needs_approval
    decide(fresh(people.admin2), waiting.id, "Seen the receipt")
    assert approval_steps() == expected
