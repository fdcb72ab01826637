"""The audit-log report's "approval steps only" keeps an administrator's invitation's and
reactivation's whole maker-checker trail: the request, and its approval, rejection or the
maker's withdrawal. What the only active administrator does at once ("user.invite",
"user.reactivate") is no step: no one decides it."""

import sqlalchemy as sa

from portal.accounts import admin_access as access
from portal.accounts import service
from portal.accounts.models import User
from portal.extensions import db
from portal.reports import audit_log


def approval_steps():
    f = audit_log.parse({"approvals": "1"})
    return sorted(r.AuditEntry.action for r in db.session.execute(audit_log.query(f)))


def test_approval_steps_only_keeps_an_administrators_invitation_and_reactivation(ctx, make_user):
    alone = db.session.merge(make_user("admin", name="Meera Maker"))
    checker = access.invite_admin(alone, "ravi.checker@example.com", "Ravi Checker").user
    assert approval_steps() == []  # the only administrator's invitation: no one decides
    asked = access.invite_admin(alone, "asha@example.com", "Asha Rao").request
    access.approve(checker, asked.id, note="Met her")
    refused = access.invite_admin(alone, "kiran@example.com", "Kiran").request
    access.reject(checker, refused.id, note="Not yet")
    withdrawn = access.invite_admin(alone, "dev@example.com", "Dev").request
    access.reject(alone, withdrawn.id)
    asha = db.session.scalar(sa.select(User).where(User.email == "asha@example.com"))
    service.deactivate_user(alone, asha.id)
    access.approve(checker, access.reactivate(alone, asha.id).request.id)
    assert approval_steps() == sorted(
        [access.REQUESTED] * 4 + [access.APPROVED] * 2 + [access.REJECTED, access.WITHDRAWN]
    )
