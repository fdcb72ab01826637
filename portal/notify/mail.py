"""Mail: queued in the caller's transaction, sent over SMTP by a job after the commit.

``queue_mail(to, subject, text, html=None)`` is the one entry point other capabilities use;
``render_mail(name, **context)`` renders ``templates/notify/email/<name>.txt`` and ``.html``.
Every mail has a ``Delivery`` row (channel ``email``) that records each attempt.

Without ``MAIL_SERVER`` (the embedded mode) mail is written to the log and kept in
``mail_messages`` with status ``logged``. A transient SMTP failure (connection refused,
timeout, 4xx) is counted and retried with the outbox's backoff; a permanent refusal (5xx)
marks the mail ``failed`` and is not retried. Before each attempt a mail to an account no
longer active is ``withdrawn`` (``recipients``), and a reminder's mail is re-checked:
once the booking is cancelled, moved or begun it is ``withdrawn``, not sent, and when its
time left reads otherwise than at its send it is worded again. A
mail sent but not yet marked (a worker killed between the two) is sent again on the retry:
SMTP has no idempotency, so every mail carries a stable ``Message-ID`` (``<mail-ID@host>``)
by which a duplicate can be known."""

import logging
import smtplib
from email.message import EmailMessage
from email.utils import parseaddr
from functools import cache
from types import SimpleNamespace

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale

from portal import jobs
from portal.accounts.models import User
from portal.config import setting
from portal.db import bind_columns, utcnow
from portal.extensions import db
from portal.notify.deliveries import (
    insert_delivery,
    record_mail_attempt,
    record_transient_failure,
    record_withdrawal,
)
from portal.notify.models import (
    EMAIL,
    HIGH,
    LOW,
    MAIL_DONE,
    Delivery,
    DeliveryStatus,
    MailMessage,
    MailStatus,
)
from portal.notify.recipients import recipient_active, why_not_sent
from portal.notify.reminder_truth import why_withdrawn
from portal.notify.reminder_words import reworded

log = logging.getLogger("portal.mail")


def queue_mail(
    to,
    subject,
    text,
    html=None,
    *,
    attachments=None,
    kind="mail",
    user_id=None,
    notification_id=None,
    reminder_id=None,
):
    """Record a mail to send once the current transaction commits; returns its id.

    Written by statements built once (the mail, its delivery, the send job's outbox row):
    the ORM's two flushes of a new mail and its delivery cost more than the inserts, and
    a booking's confirmation queues two mails."""
    now = utcnow()
    mail_id = db.session.execute(
        _insert_mail(),
        {
            "to": to,
            "subject": subject[:200],
            "text": text,
            "html": html,
            "attachments": attachments or None,
            "status": MailStatus.QUEUED,
            "attempts": 0,
            "created_at": now,
        },
    ).scalar_one()
    insert_delivery(
        mail_id=mail_id,
        channel=EMAIL,
        recipient=to,
        kind=kind,
        user_id=user_id,
        notification_id=notification_id,
        reminder_id=reminder_id,
        created_at=now,  # with its mail (queued, no attempt yet: the defaults)
    )
    jobs.enqueue("notify.send_mail", message_id=mail_id)
    return mail_id


_MAIL_COLUMNS = ("to", "subject", "text", "html", "attachments", "status", "attempts", "created_at")


@cache
def _insert_mail():
    table = MailMessage.__table__
    return sa.insert(table).values(bind_columns(table, _MAIL_COLUMNS)).returning(table.c.id)


def render_mail(name, **context):
    """``(text, html)`` from ``templates/notify/email/<name>.txt`` / ``.html``."""
    context.setdefault("public_url", current_app.config.get("PUBLIC_URL", "").rstrip("/"))
    text = render_template(f"notify/email/{name}.txt", **context)
    html = render_template(f"notify/email/{name}.html", **context)
    return text, html


def notice_mail(user, title, body, link=None, *, priority=LOW, template="notice", context=None):
    """A notice's mail to ``user`` as ``(subject, text, html)``, in the current language:
    ``templates/notify/email/<template>`` given the notice (its link made absolute) and
    ``context``. ``notify_user`` writes it; a reminder's retry writes it again when the
    time left reads otherwise (``send_mail``)."""
    text, html = render_mail(
        template,
        **{
            "user": user,
            "title": title,
            "body": body,
            "link": absolute(link),
            "priority": priority,
            **(context or {}),
        },
    )
    prefix = setting("MAIL_SUBJECT_PREFIX")
    return f"{prefix}{'[HIGH] ' if priority == HIGH else ''}{title}", text, html


def absolute(link):
    """A portal path made absolute for a mail (``PUBLIC_URL`` + path)."""
    if not link or "://" in link:
        return link
    return current_app.config.get("PUBLIC_URL", "").rstrip("/") + link


class PermanentMailError(Exception):
    """The server refused the mail for good (5xx): retrying would not help."""


def build_email(message, config):
    email = EmailMessage()
    email["From"] = config["MAIL_FROM"]
    email["To"] = message.to
    email["Subject"] = message.subject
    domain = parseaddr(config["MAIL_FROM"])[1].rpartition("@")[2] or "clinic-portal"
    email["Message-ID"] = f"<mail-{message.id}@{domain}>"
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    for item in message.attachments or []:
        maintype, _, rest = item["content_type"].partition("/")
        subtype, *params = [part.strip() for part in rest.split(";")]
        extra = dict(p.split("=", 1) for p in params if "=" in p)
        if maintype == "text":
            extra.setdefault("charset", "utf-8")
        # Bytes, so the content goes base64 and exactly as written (an .ics keeps its CRLFs).
        email.add_attachment(
            item["content"].encode("utf-8"),
            maintype=maintype,
            subtype=subtype,
            filename=item["filename"],
            params=extra,
        )
    return email


def _smtp_send(email, config):
    try:
        with smtplib.SMTP(
            config["MAIL_SERVER"], config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT"]
        ) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            refused = smtp.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _msg in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise PermanentMailError(f"recipients refused: {exc.recipients}") from exc
        raise
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPServerDisconnected):
            raise PermanentMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise
    return refused


@jobs.job("notify.send_mail")
def send_mail(message_id):
    """Send one queued mail and record the attempt on the mail and its delivery.

    By statements built once, not ORM objects: the job reads the mail's columns and its
    delivery's state in one statement and writes each row once, where loading both as
    objects and flushing their changes cost more than the statements (two mails a
    booking). The state machines still decide every move (``MAIL``, ``DELIVERY``)."""
    row = db.session.execute(_mail_to_send(), {"id": message_id}).first()
    if row is None or row.status in MAIL_DONE:
        return
    now, words = utcnow(), None
    reason = why_not_sent(row.recipient_active) or (
        why_withdrawn(row.reminder_id, now) if row.reminder_id is not None else None
    )
    if reason:
        record_withdrawal(
            reason,
            delivery_id=row.delivery_id,
            delivery_status=row.delivery_status,
            mail_id=row.id,
            mail_status=row.status,
        )
        log.info("mail %s withdrawn: %s", row.id, reason)
        return
    if row.reminder_id is not None:
        # A retry hours later: said again with the time left now ("in 4 hours", not
        # "tomorrow"); written on the mail only once it went (a failure writes nothing
        # here, so the count on a connection of its own never waits for this one).
        words = reworded(row.reminder_id, now)
        if words:
            row = _worded_again(row, words)
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        # Embedded mode: the console is the mail server.
        log.warning("MAIL to=%s subject=%s\n%s", row.to, row.subject, row.text)
        record_mail_attempt(row, MailStatus.LOGGED, DeliveryStatus.SENT, provider_ref="console")
        _keep_words(row, words)
        return
    try:
        _smtp_send(build_email(row, config), config)
    except PermanentMailError as exc:
        record_mail_attempt(row, MailStatus.FAILED, DeliveryStatus.FAILED, exc=exc)
        log.warning("mail %s to %s refused: %s", row.id, row.to, exc)
        return
    except Exception as exc:  # transient: count it, then let the outbox retry with backoff
        record_transient_failure(exc, delivery_id=row.delivery_id, mail_id=row.id)
        raise
    record_mail_attempt(row, MailStatus.SENT, DeliveryStatus.SENT, provider_ref=f"mail-{row.id}")
    _keep_words(row, words)


def _worded_again(row, words):
    """The mail ``row`` with its reminder's ``words`` of now: subject, text and HTML
    rendered again in the reader's language."""
    user = db.session.get(User, words.recipient_id)
    with force_locale(user.language or "en"):
        subject, text, html = notice_mail(
            user, words.title, words.body, words.link, template="reminder",
            context=words.mail_context,
        )  # fmt: skip
    return SimpleNamespace(
        **{**row._asdict(), "subject": subject[:200], "text": text, "html": html}
    )


def _keep_words(row, words):
    """The mail's record says what was sent (only when it was said again)."""
    if words:
        mails = MailMessage.__table__
        db.session.execute(
            sa.update(mails)
            .where(mails.c.id == row.id)
            .values(subject=row.subject, text=row.text, html=row.html)
        )


@cache
def _mail_to_send():
    """The mail's columns, its delivery's id and state (a mail has at most one) and
    whether the account it is to is active now."""
    mails, deliveries = MailMessage.__table__, Delivery.__table__
    return (
        sa.select(
            mails.c.id,
            mails.c.to,
            mails.c.subject,
            mails.c.text,
            mails.c.html,
            mails.c.attachments,
            mails.c.status,
            deliveries.c.id.label("delivery_id"),
            deliveries.c.status.label("delivery_status"),
            deliveries.c.reminder_id,
            recipient_active().label("recipient_active"),
        )
        .outerjoin(deliveries, deliveries.c.mail_id == mails.c.id)
        .where(mails.c.id == sa.bindparam("id", type_=mails.c.id.type))
        .limit(1)
    )


__all__ = ["queue_mail", "render_mail", "send_mail", "absolute"]
