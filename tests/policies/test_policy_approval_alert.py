"""A money or control change left waiting (PENDING) tells the administrators, as a waiting
wallet adjustment or refund override does (``ADJUSTMENT_PENDING_APPROVAL``, linking to its
queue). Review finding: it sent nothing, so the second administrator had to happen upon
it."""

import sqlalchemy as sa

from portal.extensions import db
from portal.notify.models import Notification
from portal.policies import service as svc

REASON = "Policy review of June 2026"
KIND = "alert.ADJUSTMENT_PENDING_APPROVAL"


def _alerts():
    db.session.expire_all()
    return db.session.scalars(sa.select(Notification).where(Notification.kind == KIND)).all()


def test_a_waiting_policy_change_tells_the_other_admins(ctx, clock, admins):
    maker, checker = admins
    svc.ensure_first_version()
    version = svc.propose(maker, {"platform_fee_bps": 600}, reason=REASON)
    assert version.needs_approval and version.status == "PENDING"
    notices = _alerts()
    assert checker.id in {n.user_id for n in notices}
    # One notice per admin, read in no order: each says it.
    assert {n.title for n in notices} == {"Policy change awaits approval"}
    assert {n.link for n in notices} == {"/admin/approvals?kind=policy"}
    assert all(maker.name in n.body and REASON in n.body for n in notices)


def test_a_change_applied_at_once_tells_nobody(ctx, clock, admins):
    maker, _ = admins
    svc.ensure_first_version()
    version = svc.propose(maker, {"payment_failures_for_intervention": 4}, reason=REASON)
    assert version.status == "APPROVED"
    assert _alerts() == []
