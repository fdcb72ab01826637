"""SMS and WhatsApp behind one sender interface.

A sender is any object with ``send(to, text, *, reference) -> str`` (the provider's
message id) that raises :class:`TransientSendError` for a failure worth retrying and
:class:`PermanentSendError` for one that is not (an invalid number). ``reference`` is the
delivery's own (``delivery-<id>``), the same on every attempt: a gateway that takes a
client reference gives it, so it can drop a text it already accepted. The one in use per
channel comes from the settings ``NOTIFY_SMS_SENDER`` and ``NOTIFY_WHATSAPP_SENDER``
(``module:Class``; a test may put classes in ``NOTIFY_SENDERS``); the default is
:class:`LoggingSender`, which writes the message to the log.

``queue_text(channel, to, text, ...)`` records a ``Delivery`` and a send job in the caller's
transaction; the job (``notify.send_text``) sends after the commit, recording every attempt
on the delivery: counted before the text is handed over, on a connection of its own. At
least once, as mail: a text the gateway accepted whose commit was then lost goes again on
the retry, with the same reference (docs/decisions.md). A text to an account no longer
active is withdrawn before its attempt (``recipients``); a reminder's text that is no
longer true when its attempt comes (the booking cancelled, moved or begun) is withdrawn,
and one whose time left reads otherwise now ("tomorrow" then, "in 4 hours" now) is worded
again."""

import logging
import uuid

import sqlalchemy as sa
from flask import current_app
from werkzeug.utils import import_string

from portal import jobs
from portal.config import setting
from portal.db import utcnow
from portal.extensions import db
from portal.notify.deliveries import (
    count_attempt,
    mark_failed,
    mark_sent,
    record_transient_failure,
    record_withdrawal,
)
from portal.notify.mail import absolute
from portal.notify.models import SMS, WHATSAPP, Delivery, DeliveryStatus
from portal.notify.recipients import recipient_active, why_not_sent
from portal.notify.reminder_truth import why_withdrawn
from portal.notify.reminder_words import reworded

log = logging.getLogger("portal.notify.text")

TEXT_CHANNELS = (SMS, WHATSAPP)


class TransientSendError(Exception):
    """The gateway is unreachable or busy: try again later."""


class PermanentSendError(Exception):
    """The message can never be delivered as addressed."""


class TextSender:
    """The interface: ``channel`` and ``send(to, text, *, reference) -> provider message
    id``; ``reference`` is the same on every attempt of one delivery."""

    channel = SMS

    def __init__(self, channel=SMS, app=None):
        self.channel = channel

    def send(self, to, text, *, reference):  # pragma: no cover - the interface
        raise NotImplementedError


class LoggingSender(TextSender):
    """The default: nothing leaves the machine, the log shows what would have."""

    def send(self, to, text, *, reference):
        ref = f"log-{uuid.uuid4().hex[:12]}"
        log.warning(
            "%s to=%s reference=%s ref=%s\n%s", self.channel.upper(), to, reference, ref, text
        )
        return ref


def text_message(title, body, link=None):
    """A notice as a text message: its title, body and link (made absolute), each a line."""
    message = f"{title}\n{body}".strip()
    if link:
        message += f"\n{absolute(link)}"
    return message[:1000]


def reference_for(delivery_id):
    """The stable reference every attempt of a delivery's text carries."""
    return f"delivery-{delivery_id}"


def sender_for(channel):
    """The channel's sender: ``NOTIFY_SMS_SENDER`` / ``NOTIFY_WHATSAPP_SENDER`` (settings,
    ``module:Class``), unless ``NOTIFY_SENDERS`` names one (a test's class)."""
    if channel not in TEXT_CHANNELS:
        raise ValueError(f"not a text channel: {channel!r}")
    configured = {
        SMS: setting("NOTIFY_SMS_SENDER"),
        WHATSAPP: setting("NOTIFY_WHATSAPP_SENDER"),
        **(current_app.config.get("NOTIFY_SENDERS") or {}),
    }
    spec = configured[channel]
    factory = import_string(spec.replace(":", ".")) if isinstance(spec, str) else spec
    return factory(channel=channel, app=current_app._get_current_object())


def queue_text(
    channel, to, text, *, kind="text", user_id=None, reminder_id=None, notification_id=None
):
    """Record an SMS/WhatsApp message to send once the current transaction commits."""
    if channel not in TEXT_CHANNELS:
        raise ValueError(f"not a text channel: {channel!r}")
    delivery = Delivery(
        channel=channel,
        recipient=to,
        text=text,
        kind=kind,
        user_id=user_id,
        reminder_id=reminder_id,
        notification_id=notification_id,
    )
    db.session.add(delivery)
    db.session.flush()
    jobs.enqueue("notify.send_text", delivery_id=delivery.id)
    return delivery


@jobs.job("notify.send_text")
def send_text(delivery_id):
    # The delivery with whether its person's account is active now, in one statement.
    delivery, active = db.session.execute(
        sa.select(Delivery, recipient_active()).where(Delivery.id == delivery_id)
    ).first() or (None, None)
    if delivery is None or delivery.status in (
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.WITHDRAWN,
    ):
        return
    words, now = None, utcnow()
    # An inactive account is sent nothing; a reminder's text re-checks the reminder before
    # each attempt (as its mail does).
    reason = why_not_sent(active) or (
        why_withdrawn(delivery.reminder_id, now) if delivery.reminder_id is not None else None
    )
    if reason:
        record_withdrawal(reason, delivery_id=delivery.id, delivery_status=delivery.status)
        db.session.expire(delivery)
        log.info("%s %s withdrawn: %s", delivery.channel, delivery.id, reason)
        return
    if delivery.reminder_id is not None:
        words = reworded(delivery.reminder_id, now)  # the time left reads otherwise now
    text = text_message(words.title, words.body, words.link) if words else delivery.text or ""
    sender = sender_for(delivery.channel)
    # Counted before it is handed over: a commit lost after the gateway took it leaves
    # the attempt on record (the retry sends again, with the same reference).
    count_attempt(delivery.id)
    try:
        ref = sender.send(delivery.recipient, text, reference=reference_for(delivery.id))
    except PermanentSendError as exc:
        mark_failed(delivery, exc)
        return
    except Exception as exc:  # transient (or unknown): recorded, then retried with backoff
        record_transient_failure(exc, delivery_id=delivery.id, counted=True)
        raise
    mark_sent(delivery, provider_ref=ref, text=text if words else None)
