"""Two admins resolving one case at once: the case row and the audit log tell the same
story of who resolved it."""

import sqlalchemy as sa

from portal.accounts.models import ADMIN, User
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.reconcile import resolve
from tests.reconcile.helpers import admin, case_for, later, paid_only_at_gateway, run_day


def test_two_admins_syncing_one_case_at_once_leave_the_row_and_the_audit_agreeing(
    world, users, gateway, clock, monkeypatch
):
    """Review finding: two admins press "Sync from the gateway" on the same case at once.
    Admin B's sync lands while admin A's is asking the gateway (A's first check saw the
    case open). B's sync matches the case and is audited ``case_synced``; A's then found
    it MATCHED (``closed_ok``), audited its own attempt as ``case_sync_unchanged`` and
    rewrote the case's resolver and time to A: the row credited A, the audit log B."""
    _visit_id, pay_id = paid_only_at_gateway(world, users, gateway)
    later(clock)
    run_day(world)
    case_id = case_for(pay_id).id
    other = User(email="second-admin@example.com", name="Second", role=ADMIN, phone=None)
    db.session.add(other)
    db.session.commit()
    other_id = other.id
    real_apply = resolve._apply
    raced = []

    def apply_while_the_other_syncs(kind, reference):
        if not raced:
            raced.append("B")
            resolve.sync(db.session.get(User, other_id), case_id)
        return real_apply(kind, reference)

    monkeypatch.setattr(resolve, "_apply", apply_while_the_other_syncs)
    first = admin(world)
    first_id = first.id
    told = resolve.sync(first, case_id).message
    assert raced
    case = case_for(pay_id)
    synced_by = db.session.scalars(
        sa.select(AuditEntry.actor_id).where(
            AuditEntry.action == "reconcile.case_synced", AuditEntry.object_id == str(case_id)
        )
    ).all()
    assert synced_by == [other_id]
    assert case.resolved_by_id == other_id, (
        f"the row says admin {case.resolved_by_id} (A={first_id}) resolved it; "
        f"the audit says {synced_by}"
    )
    # A is told, and its attempt is in the log as changing nothing.
    assert told == "Synced meanwhile by Second: the case is matched."
    unchanged_by = db.session.scalars(
        sa.select(AuditEntry.actor_id).where(
            AuditEntry.action == "reconcile.case_sync_unchanged",
            AuditEntry.object_id == str(case_id),
        )
    ).all()
    assert unchanged_by == [first_id]
