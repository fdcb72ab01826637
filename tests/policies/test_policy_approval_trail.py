"""The audit-log report's "approval steps only" keeps a policy change's whole maker-checker
trail (docs/reports.md: "requests, approvals, refusals"): its proposal, the decision, and
its withdrawal before it takes effect (re-read finding: the proposal and the withdrawal
were left out, their names carrying none of the words the filter guessed by). A change no
one need approve ("policy.changed") is no step."""

from datetime import timedelta

from portal.db import utcnow
from portal.extensions import db
from portal.policies import service as svc
from portal.reports import audit_log

MONEY = {"patient_cancellation_tiers.1.refund_bps": 5_000}  # a second administrator decides


def approval_steps():
    f = audit_log.parse({"approvals": "1"})
    return sorted(r.AuditEntry.action for r in db.session.execute(audit_log.query(f)))


def test_approval_steps_only_keeps_a_policy_changes_request(ctx, clock, admins):
    maker, checker = admins
    version = svc.propose(maker, MONEY, reason="Policy review of June")
    assert version.needs_approval
    svc.approve(checker, version.id, note="checked")
    assert approval_steps() == ["policy.approved", "policy.proposed"]


def test_approval_steps_only_keeps_a_refusal_and_a_withdrawal(ctx, clock, admins):
    maker, checker = admins
    refused = svc.propose(maker, MONEY, reason="Policy review of June")
    svc.reject(checker, refused.id, note="Not this month")
    later = svc.propose(
        maker, MONEY, effective_from=utcnow() + timedelta(days=30), reason="Policy review of July"
    )
    svc.approve(checker, later.id, note="checked")
    svc.withdraw(checker, later.id, note="The review moved to August")
    svc.propose(maker, {"payment_failures_for_intervention": 4}, reason="No money: no approval")
    assert approval_steps() == [
        "policy.approved",
        "policy.proposed",
        "policy.proposed",
        "policy.rejected",
        "policy.withdrawn",
    ]
