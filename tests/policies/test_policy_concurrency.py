"""Two administrators changing the policy at the same moment (PostgreSQL, threads): each
edit reads the latest approved version and sees nothing waiting before either commits.
The stamp's row lock and a second look under it refuse the later one, so neither silently
undoes the other's change nor leaves two money changes waiting on one base."""

import threading

import pytest
import sqlalchemy as sa

from portal.accounts.models import ADMIN, User
from portal.config import policy
from portal.extensions import db
from portal.policies import service as svc
from portal.policies import store
from portal.policies.models import PolicyVersion
from tests.threads import run_together

pytestmark = pytest.mark.postgres

REASON = "Operations review, June"


@pytest.fixture
def admin_ids(pg_app):
    with pg_app.app_context():
        people = [User(email=f"race{n}@example.com", name=f"Race {n}", role=ADMIN) for n in (1, 2)]
        db.session.add_all(people)
        db.session.commit()
        svc.ensure_first_version()
        ids = [p.id for p in people]
        db.session.remove()
    return ids


@pytest.fixture
def side_by_side(monkeypatch):
    """Both edits have read their base and seen nothing waiting before either goes on."""
    barrier = threading.Barrier(2)
    original = svc._waiting

    def waiting():
        found = original()
        barrier.wait(10)
        return found

    monkeypatch.setattr(svc, "_waiting", waiting)


def _edits(pg_app, admin_ids, *changes):
    def edit(admin_id, change):
        def body():
            return svc.propose(db.session.get(User, admin_id), change, reason=REASON).status

        return body

    return run_together(pg_app, *(edit(a, c) for a, c in zip(admin_ids, changes, strict=True)))


def _refused(results):
    [refusal] = [r for r in results if isinstance(r, svc.PolicyError)]
    return refusal.errors["__all__"]


def test_two_edits_at_once_never_silently_undo_one_another(pg_app, admin_ids, side_by_side):
    results = _edits(
        pg_app, admin_ids, {"payment_failures_for_intervention": 4}, {"payment_max_attempts": 6}
    )
    assert sorted(map(str, results))[0] == "APPROVED", results
    assert _refused(results).startswith("Another administrator changed the policy"), results
    with pg_app.app_context():
        store.forget()
        pol = policy()
        saved = (pol.payment_failures_for_intervention, pol.payment_max_attempts)
        # The winner's change is in force, the other's default untouched (nothing undone).
        assert saved in ((4, 5), (3, 6)), saved
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)) == 2
        db.session.remove()


def test_two_money_changes_at_once_leave_one_waiting(pg_app, admin_ids, side_by_side):
    """Both would wait for approval on the same base: approving both would lose the first
    one's value. The second is told the first waits."""
    results = _edits(pg_app, admin_ids, {"gst_bps": 1200}, {"platform_fee_bps": 300})
    assert "PENDING" in results, results
    with pg_app.app_context():
        [waiting] = db.session.scalars(
            sa.select(PolicyVersion.id).where(PolicyVersion.status == "PENDING")
        ).all()
        assert _refused(results) == svc.MSG_WAITING.format(id=waiting)
        db.session.remove()
