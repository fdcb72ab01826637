"""What the notification pages and the admin's jobs page list (read only, keyset pages)."""

import sqlalchemy as sa

from portal.extensions import db
from portal.notify.models import Delivery, DeliveryStatus, MailMessage, Notification
from portal.outbox import OutboxItem
from portal.pagination import Order, keyset_page

NOTIFICATION_ORDER = (
    Order(Notification.created_at, descending=True),
    Order(Notification.id, descending=True),
)
# Failed at least once first (most attempts first), then waiting, oldest due first.
OUTBOX_ORDER = (
    Order(OutboxItem.attempts, descending=True),
    Order(OutboxItem.run_after),
    Order(OutboxItem.id),
)
DELIVERY_ORDER = (Order(Delivery.updated_at, descending=True), Order(Delivery.id, descending=True))


def notifications_page(user_id, *, unread_only=False, after=None, before=None, per_page=30):
    """The user's notices, newest first; ``Page.total`` counts them all."""
    query = sa.select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return keyset_page(
        query, NOTIFICATION_ORDER, after=after, before=before, per_page=per_page, count=True
    )


def outbox_problems_page(*, after=None, before=None, per_page=50):
    """Outbox items not done."""
    query = sa.select(OutboxItem).where(OutboxItem.done_at.is_(None))
    return keyset_page(query, OUTBOX_ORDER, after=after, before=before, per_page=per_page)


FAILING_OR_WITHDRAWN = (DeliveryStatus.FAILED, DeliveryStatus.RETRYING, DeliveryStatus.WITHDRAWN)


def failing_deliveries_page(*, after=None, before=None, per_page=50):
    """Deliveries failing, given up, or withdrawn (a reminder no longer true when its
    retry came: never sent), newest first."""
    query = sa.select(Delivery).where(Delivery.status.in_(FAILING_OR_WITHDRAWN))
    return keyset_page(query, DELIVERY_ORDER, after=after, before=before, per_page=per_page)


def sent_to(user_id):
    """What the portal sent a user, oldest first, as rows: the delivery's ``kind``,
    ``channel``, ``status``, ``created_at``, ``sent_at``, and a mail's ``subject`` (a
    patient's data download; never a body: an account mail's holds a reset link). Read by
    the user id every delivery to a user records, account mails included."""
    return db.session.execute(
        sa.select(
            Delivery.kind,
            Delivery.channel,
            Delivery.status,
            Delivery.created_at,
            Delivery.sent_at,
            MailMessage.subject,
        )
        .outerjoin(MailMessage, MailMessage.id == Delivery.mail_id)
        .where(Delivery.user_id == user_id)
        .order_by(Delivery.created_at, Delivery.id)
    ).all()
