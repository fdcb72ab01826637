"""Notices about who becomes an administrator: an invitation or a reactivation awaiting a
second administrator (an alert to the admins, as a waiting wallet adjustment's or policy
change's). Jobs recorded by ``portal.notify.receivers``."""

from portal import jobs
from portal.accounts.models import INVITE, AdminAccessRequest
from portal.extensions import db
from portal.notify import alerts


@jobs.job("notify.admin_access_requested")
def admin_access_requested(request_id):
    request = db.session.get(AdminAccessRequest, request_id)
    if request is None:
        return
    maker = request.requested_by.name
    if request.kind == INVITE:
        title = "Administrator invitation awaits approval"
        body = f"{maker} asks to invite {request.name} ({request.email}) as an administrator"
    else:
        title = "Administrator reactivation awaits approval"
        person = request.user
        body = (
            f"{maker} asks to reactivate the administrator account of {person.name} "
            f"({person.email})"
        )
    alerts.raise_alert(
        alerts.ADJUSTMENT_PENDING_APPROVAL,
        title,
        f"{body}: {request.reason}" if request.reason else f"{body}.",
        link="/admin/approvals?kind=admin_account",
        dedupe_key=f"admin-access:{request.id}",
    )
