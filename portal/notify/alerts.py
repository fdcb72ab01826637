"""Admin alerts: a notice with a priority to every active admin (and, for HIGH ones, a mail).

The priority follows the alert's kind (POLICY.md "Notifications and background work"):
new booking MEDIUM, payment failed HIGH, cancellation MEDIUM, payout failed HIGH,
reconciliation discrepancy HIGH, adjustment awaiting approval MEDIUM; and this capability's
own: no-show MEDIUM, not completed (started, never completed) MEDIUM, payment link expired
MEDIUM, background job failed HIGH."""

import sqlalchemy as sa

from portal.accounts.models import ADMIN, User
from portal.extensions import db
from portal.notify.center import check_priority, notify_in_app, notify_user
from portal.notify.models import HIGH, LOW, MEDIUM

NEW_BOOKING = "NEW_BOOKING"
PAYMENT_FAILED = "PAYMENT_FAILED"
CANCELLATION = "CANCELLATION"
PAYOUT_FAILED = "PAYOUT_FAILED"
RECONCILIATION_DISCREPANCY = "RECONCILIATION_DISCREPANCY"
ADJUSTMENT_PENDING_APPROVAL = "ADJUSTMENT_PENDING_APPROVAL"
NO_SHOW = "NO_SHOW"
NOT_COMPLETED = "NOT_COMPLETED"
PAYMENT_LINK_EXPIRED = "PAYMENT_LINK_EXPIRED"
JOB_FAILED = "JOB_FAILED"
REFUND_FAILED = "REFUND_FAILED"

PRIORITY_BY_KIND = {
    NEW_BOOKING: MEDIUM,
    PAYMENT_FAILED: HIGH,
    CANCELLATION: MEDIUM,
    PAYOUT_FAILED: HIGH,
    RECONCILIATION_DISCREPANCY: HIGH,
    ADJUSTMENT_PENDING_APPROVAL: MEDIUM,
    NO_SHOW: MEDIUM,
    NOT_COMPLETED: MEDIUM,
    PAYMENT_LINK_EXPIRED: MEDIUM,
    JOB_FAILED: HIGH,
    REFUND_FAILED: HIGH,
}
# Other spellings callers use for the same kinds.
ALIASES = {
    "DISCREPANCY": RECONCILIATION_DISCREPANCY,
    "RECONCILIATION": RECONCILIATION_DISCREPANCY,
    "ADJUSTMENT_APPROVAL": ADJUSTMENT_PENDING_APPROVAL,
    "ADJUSTMENT_AWAITING_APPROVAL": ADJUSTMENT_PENDING_APPROVAL,
    "BOOKING_CANCELLED": CANCELLATION,
    "LINK_EXPIRED": PAYMENT_LINK_EXPIRED,
}


def normalise_kind(kind):
    key = str(kind).strip().upper().replace(".", "_").replace("-", "_").replace(" ", "_")
    return ALIASES.get(key, key)


def priority_for(kind):
    return PRIORITY_BY_KIND.get(normalise_kind(kind), MEDIUM)


def raise_alert(
    kind, title, body, link=None, priority=None, *, severity=None, dedupe_key=None, email=None
):
    """Tell every active admin. ``priority`` (or its alias ``severity``) defaults to the
    kind's; ``email`` defaults to True for HIGH alerts. With ``dedupe_key`` the same alert
    reaches each admin at most once. Runs in the caller's transaction; returns the notices."""
    kind = normalise_kind(kind)
    priority = (priority or severity or priority_for(kind)).upper()
    check_priority(priority)  # before the admins are read: even with none, it is refused
    if email is None:
        email = priority == HIGH
    # The rows, not their ids: notify_user then finds each in the session (no query per admin).
    admins = db.session.scalars(
        sa.select(User).where(User.role == ADMIN, User.active.is_(True)).order_by(User.id)
    ).all()
    dedupe_key = f"alert:{dedupe_key}" if dedupe_key else None
    if not email:  # in the app only: two statements for every admin at once
        return notify_in_app(
            admins, f"alert.{kind}", title, body, link, priority=priority, dedupe_key=dedupe_key
        )
    notices = []
    for admin in admins:
        notice = notify_user(
            admin.id,
            f"alert.{kind}",
            title,
            body,
            link=link,
            email=email,
            priority=priority,
            mail_template="alert",
            mail_context={"kind": kind},
            dedupe_key=dedupe_key,
        )
        if notice is not None:
            notices.append(notice)
    return notices


__all__ = ["raise_alert", "priority_for", "PRIORITY_BY_KIND", "LOW", "MEDIUM", "HIGH"]
