"""May a mail or a text still go to its person? An inactive account is sent nothing
(docs/privacy.md): deactivated by an administrator, or closed by its owner. Asked before
every attempt (``mail.send_mail``, ``channels.send_text``), not only when the message was
written (``center.notify_user`` writes none for an inactive account): a message queued
or retrying when the account was deactivated, or written at that same moment, is
withdrawn at its next attempt ("withdrawn: account inactive"), and stays withdrawn if the
account is reactivated later. A message that names no user (``queue_mail`` to an address
alone) is not the rule's: it goes."""

import sqlalchemy as sa

from portal.accounts.models import User
from portal.notify.models import Delivery

INACTIVE = "account inactive"


def recipient_active():
    """The delivery's person's ``users.active`` (NULL when it names none), correlated
    with ``deliveries``: read in the statement that reads the delivery, no query more."""
    users, deliveries = User.__table__, Delivery.__table__
    return sa.select(users.c.active).where(users.c.id == deliveries.c.user_id).scalar_subquery()


def why_not_sent(active):
    """Why a delivery whose person's account reads ``active`` (``recipient_active``) must
    not go, else None."""
    return INACTIVE if active is not None and not active else None
