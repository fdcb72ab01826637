"""The in-app notification centre and ``notify_user``, the one way to tell a person
something: always in the app, by mail when asked (and when they have an address), by SMS
or WhatsApp when asked and a number is known. Everything is written in the caller's
transaction; mail and texts leave after its commit."""

from functools import cache

import sqlalchemy as sa
from flask import g, has_request_context
from flask_babel import force_locale

from portal.accounts.models import User
from portal.db import insert_for, unit_of_work, utcnow
from portal.extensions import db
from portal.notify.channels import queue_text, text_message
from portal.notify.deliveries import insert_deliveries, insert_delivery
from portal.notify.mail import notice_mail, queue_mail
from portal.notify.models import IN_APP, LOW, PRIORITIES, DeliveryStatus, Notification


def notify_user(
    user_id,
    kind,
    title,
    body,
    link=None,
    email=True,
    *,
    priority=LOW,
    text=None,
    mail_template="notice",
    mail_context=None,
    attachments=None,
    dedupe_key=None,
):
    """A notice in ``user_id``'s notification centre, and the same by mail when ``email``.

    ``text`` ("sms" / "whatsapp") also sends the title and body as a text message to the
    user's phone. ``dedupe_key`` makes the notice at most one per user (returns ``None``
    when it already exists). Returns the :class:`Notification`."""
    check_priority(priority)
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    # Everything the user reads is made in their language: callers pass lazy strings
    # (``lazy_gettext``) that become text here, under the user's locale.
    with force_locale(user.language or "en"):
        return _notify(
            user, kind, str(title), str(body or ""), link, email, priority, text,
            mail_template, mail_context, attachments, dedupe_key,
        )  # fmt: skip


def _notify(
    user, kind, title, body, link, email, priority, text, mail_template, mail_context,
    attachments, dedupe_key,
):  # fmt: skip
    values = _notice_row(user.id, kind, title, body, link, priority, dedupe_key, utcnow())
    notice = _insert_notice(values)
    if notice is None:  # told already under its dedupe key (or at this moment, elsewhere)
        return None
    _forget_unread()  # the user's bell counts again
    insert_delivery(**_shown_in_app(notice, utcnow()))
    # Not for an inactive account; each attempt asks again (``recipients``): the account
    # may be deactivated before the mail or text leaves.
    if email and user.email and user.active:
        subject, text_part, html_part = notice_mail(
            user, title, body, link, priority=priority, template=mail_template, context=mail_context
        )
        queue_mail(
            user.email,
            subject,
            text_part,
            html_part,
            attachments=attachments,
            kind=kind,
            user_id=user.id,
            notification_id=notice.id,
        )
    if text and user.phone and user.active:
        queue_text(
            text,
            user.phone,
            text_message(title, body, link),
            kind=kind,
            user_id=user.id,
            notification_id=notice.id,
        )
    return notice


def notify_in_app(users, kind, title, body, link=None, *, priority=LOW, dedupe_key=None):
    """The same notice, in the app only, to several users at once (an alert to every
    admin): their notices in one statement and their deliveries in another, however many
    readers there are, each notice written in its reader's language. Returns the new
    notices (with ``dedupe_key``, a user told already gets none). A mail or a text is
    written for each reader by ``notify_user``."""
    check_priority(priority)
    now = utcnow()
    rows = []
    for user in users:
        with force_locale(user.language or "en"):  # lazy strings become the reader's text
            rows.append(_notice_row(user.id, kind, title, body, link, priority, dedupe_key, now))
    if not rows:
        return []
    notices = db.session.scalars(_insert_notices_statement(db.engine.dialect.name), rows).all()
    if notices:
        _forget_unread()
    insert_deliveries([_shown_in_app(notice, now) for notice in notices])
    return sorted(notices, key=lambda notice: notice.user_id)


@cache
def _insert_notices_statement(dialect_name):
    """Built once per dialect: notices (their rows as the parameters: several make one
    multi-row INSERT), those told already under their dedupe key skipped."""
    return (
        insert_for(dialect_name)(Notification)
        .on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
        .returning(Notification)
    )


def check_priority(priority):
    """Refuse a priority the notices do not know (before anything is read or written)."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")


def _notice_row(user_id, kind, title, body, link, priority, dedupe_key, now):
    """A notice's columns, its title and body made text (in the current language)."""
    return dict(
        user_id=user_id, kind=kind, title=str(title)[:200], body=str(body or ""), link=link,
        priority=priority, dedupe_key=dedupe_key, created_at=now,
    )  # fmt: skip


def _shown_in_app(notice, now):
    """The in-app delivery of a notice: sent as it is written (the centre shows it)."""
    return dict(
        notification_id=notice.id, user_id=notice.user_id, channel=IN_APP,
        recipient=str(notice.user_id), kind=notice.kind, status=DeliveryStatus.SENT,
        attempts=1, sent_at=now, created_at=now, updated_at=now,
    )  # fmt: skip


def _insert_notice(values):
    """The notice unless the user has one with its dedupe key (None: never): ``INSERT …
    ON CONFLICT DO NOTHING RETURNING`` the row as the ORM object, in one statement (the
    ORM's flush of a new notice cost more than the insert; reading it back after an insert
    returning its id took a second statement)."""
    statement = _insert_notices_statement(db.engine.dialect.name)
    return db.session.scalars(statement, [values]).one_or_none()


# --- reading and marking ---------------------------------------------------------------------


# A request keeps the count it read (with its user, portal.web.signed_in) as (user id,
# count); every write of a notice here drops it, so the bell counts again after one.
_KEPT = "unread_notifications"


def unread_column(user_id_column):
    """The unread count of the user whose id is ``user_id_column``, as a column."""
    return (
        sa.select(sa.func.count(Notification.id))
        .where(Notification.user_id == user_id_column, Notification.read_at.is_(None))
        .scalar_subquery()
    )


def keep_unread(user_id, count):
    if has_request_context():
        setattr(g, _KEPT, (user_id, count or 0))


def _forget_unread():
    if has_request_context():
        g.pop(_KEPT, None)


def unread_count(user_id):
    kept = g.get(_KEPT) if has_request_context() else None
    if kept is not None and kept[0] == user_id:
        return kept[1]
    count = db.session.scalar(sa.select(unread_column(user_id))) or 0
    keep_unread(user_id, count)
    return count


def list_for(user_id, *, unread_only=False, page=1, per_page=30):
    query = sa.select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def mark_read(user_id, notification_id):
    """Mark one of the user's notices read (a unit of work); ``None`` when it is not theirs
    (or missing)."""
    with unit_of_work():
        notice = db.session.get(Notification, notification_id)
        if notice is None or notice.user_id != user_id:
            return None
        if notice.read_at is None:
            notice.read_at = utcnow()
    _forget_unread()
    return notice


def mark_all_read(user_id):
    """Mark every unread notice of the user read (a unit of work); returns how many."""
    with unit_of_work():
        result = db.session.execute(
            sa.update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=utcnow())
        )
    _forget_unread()
    return result.rowcount
