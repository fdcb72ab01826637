"""The audit-log report's "approval steps only" keeps a refund override's maker-checker
trail (docs/reports.md: "requests, approvals, refusals"): its request and the decision,
not the cancellation or the refunds it moves."""

import pytest

from portal.extensions import db
from portal.refunds import approvals
from portal.reports import audit_log
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, hours, quoted_admin_cancel
from tests.refunds.test_refunds_cancellation import _second_admin

START = at(4, 10)


def approval_steps():
    f = audit_log.parse({"approvals": "1"})
    return sorted(r.AuditEntry.action for r in db.session.execute(audit_log.query(f)))


@pytest.mark.parametrize(
    "decide, decision",
    [(approvals.approve_override, "approved"), (approvals.reject_override, "rejected")],
)
def test_approval_steps_only_keeps_an_overrides_request_and_decision(
    world, users, gateway, clock, decide, decision
):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    clock.move_to(START - hours(10))
    admin, checker = users(world.admin), _second_admin()
    quoted_admin_cancel(admin, visit.items[0].id, "Goodwill requested by patient", override=10_000)
    [approval] = approvals.pending_approvals()
    decide(checker, approval.id, "Read the patient's letter")
    assert approval_steps() == [f"refund.override_{decision}", "refund.override_requested"]
