"""A patient closed their account (``portal.privacy.closure``): nothing more is sent to
them, and the copies of what was sent no longer carry their address or words.

In the closing unit of work: their unsent reminders are withdrawn, their queued or
retrying deliveries (and those deliveries' mails) withdrawn as "withdrawn: account closed"
(the send jobs skip a withdrawn row), mails still queued to their old address withdrawn;
then every mail and delivery to them keeps its kind, channel, status and dates, with the
recipient replaced by the account's placeholder address and the bodies (mail text and
HTML, attachments, a text message's words) erased. In-app notices stay (kind, title and
date: what the portal told them, about visits that are kept) and can no longer be read by
anyone but an administrator. The portal has no per-user notification preferences to turn
off: an inactive account is sent nothing (docs/privacy.md)."""

import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import (
    UNSENT,
    Delivery,
    DeliveryStatus,
    MailMessage,
    MailStatus,
    Reminder,
    ReminderStatus,
)

REASON = "account closed"
_STILL_TO_SEND = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING)


def withdraw_and_erase(user_id, old_email, placeholder):
    """See the module. Returns {"reminders": n, "deliveries": n, "mails": n} withdrawn."""
    now, error = utcnow(), f"withdrawn: {REASON}"
    mails, deliveries = MailMessage.__table__, Delivery.__table__
    theirs = deliveries.c.user_id == user_id
    their_mail_ids = sa.select(deliveries.c.mail_id).where(
        theirs, deliveries.c.mail_id.is_not(None)
    )
    to_them = sa.or_(mails.c.to == old_email, mails.c.id.in_(their_mail_ids))
    counts = {
        "reminders": db.session.execute(
            sa.update(Reminder.__table__)
            .where(
                Reminder.__table__.c.recipient_id == user_id,
                Reminder.__table__.c.status.in_(UNSENT),
            )
            .values(status=ReminderStatus.WITHDRAWN, note=REASON)
        ).rowcount,
        "mails": db.session.execute(
            sa.update(mails)
            .where(to_them, mails.c.status == MailStatus.QUEUED)
            .values(status=MailStatus.WITHDRAWN, last_error=error)
        ).rowcount,
        "deliveries": db.session.execute(
            sa.update(deliveries)
            .where(theirs, deliveries.c.status.in_(_STILL_TO_SEND))
            .values(status=DeliveryStatus.WITHDRAWN, error=error, updated_at=now)
        ).rowcount,
    }
    db.session.execute(
        sa.update(mails).where(to_them).values(to=placeholder, text="", html=None, attachments=None)
    )
    db.session.execute(
        sa.update(deliveries)
        .where(sa.or_(theirs, deliveries.c.recipient == old_email))
        .values(
            recipient=sa.case(
                (deliveries.c.channel == "in_app", deliveries.c.recipient), else_=placeholder
            ),
            text=None,
        )
    )
    # Objects of these rows loaded in this session would show what was just changed.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Reminder | Delivery | MailMessage):
            db.session.expire(obj)
    return counts
