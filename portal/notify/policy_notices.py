"""Notices about policy changes: one touching money or a control awaiting a second
administrator (an alert to the admins, as a waiting wallet adjustment's or refund
override's). Jobs recorded by ``portal.notify.receivers``."""

from portal import jobs
from portal.extensions import db
from portal.notify import alerts
from portal.policies.models import PolicyVersion


@jobs.job("notify.policy_change_requested")
def policy_change_requested(version_id):
    version = db.session.get(PolicyVersion, version_id)
    if version is None:
        return
    maker = version.created_by.name if version.created_by else "An administrator"
    alerts.raise_alert(
        alerts.ADJUSTMENT_PENDING_APPROVAL,
        "Policy change awaits approval",
        f"{maker} asks for a change of money or control settings (policy version "
        f"{version.id}): {version.reason}",
        link="/admin/approvals?kind=policy",
        dedupe_key=f"policy-approval:{version.id}",
    )
