"""The audit-log report's "approval steps only" is the steps each approval source names
(``ApprovalSource.audit_steps``, ``portal/approvals/sources.py``): every step of every
kind's trail is kept, and nothing else; a guess by words in the action names ("approv",
"override", "reject") left out a wallet adjustment's and a policy change's request
(re-read finding). Each source's trail is also walked through its own use cases, in a
test named below: a new source fails here until it has one."""

from pathlib import Path

import pytest

from portal.approvals.sources import AUDIT_STEPS, BY_KIND, SOURCES
from portal.audit.service import record
from portal.db import unit_of_work
from portal.extensions import db
from portal.reports import audit_log

TESTS = Path(__file__).resolve().parents[1]

# Each source's trail recorded by its use cases and read back through the filter.
TRAILS = {
    "refund": "refunds/test_override_approval_trail.py",
    "wallet_adjustment": "wallet/test_adjustment_approval_trail.py",
    "policy": "policies/test_policy_approval_trail.py",
    "admin_account": "accounts/test_admin_access_trail.py",
}

# Actions near a trail that are no step of one.
NOT_STEPS = (
    "wallet.adjustment_applied",  # under the limit: no one approves it
    "wallet.cash_payout_applied",
    "policy.changed",
    "policy.seeded",
    "user.invite",  # the only active administrator's, at once: no one decides it
    "user.reactivate",
    "refund.processed",
    "booking.cancel",
    "export.requested",
    "visit.confirm",
)


def approval_steps():
    f = audit_log.parse({"approvals": "1"})
    return sorted(r.AuditEntry.action for r in db.session.execute(audit_log.query(f)))


def test_every_approval_source_has_its_trail_walked_by_a_test():
    assert set(TRAILS) == set(BY_KIND), "a new approval source needs its trail test"
    for path in TRAILS.values():
        assert (TESTS / path).is_file(), path


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.kind)
def test_approval_steps_only_keeps_each_step_a_source_names_and_nothing_else(
    ctx, make_user, source
):
    admin = make_user("admin")
    assert source.audit_steps, source.kind
    with unit_of_work():
        for i, action in enumerate((*source.audit_steps, *NOT_STEPS)):
            record(admin.id, action, "thing", i)
    assert approval_steps() == sorted(source.audit_steps)


def test_no_step_is_claimed_by_two_sources_and_none_is_a_non_step():
    assert len(AUDIT_STEPS) == len(set(AUDIT_STEPS))
    assert not set(AUDIT_STEPS) & set(NOT_STEPS)
