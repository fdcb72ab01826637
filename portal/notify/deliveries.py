"""Recording deliveries: one row per message per channel, updated on every attempt.

A send job runs inside ``jobs.run_outbox_item``'s transaction, which is rolled back when the
job raises. A failed attempt must still be on record, so it is written on a connection of
its own (committed at once) before the job raises for a retry. The job never writes the
rows it records this way before the failure, so the two transactions never wait on each
other."""

import traceback
from functools import cache

import sqlalchemy as sa

from portal import jobs
from portal.db import bind_columns, utcnow
from portal.extensions import db
from portal.notify.models import (
    DELIVERY,
    MAIL,
    Delivery,
    DeliveryStatus,
    MailMessage,
    MailStatus,
)

_NEW_COLUMNS = (
    "mail_id",
    "channel",
    "recipient",
    "kind",
    "user_id",
    "notification_id",
    "reminder_id",
    "status",
    "attempts",
    "sent_at",
    "created_at",
    "updated_at",
)


def insert_delivery(**values):
    """Write a new delivery at once (an in-app notice's, a mail's), by a statement built
    once: no ORM object and no flush for a row nothing reads back in the transaction
    (a confirmation writes five). The model's defaults apply to columns not given (kind
    "", queued, no attempt, created now, updated when created); the others are NULL."""
    db.session.execute(_insert_new(), _new_row(values))


def insert_deliveries(rows):
    """``insert_delivery`` for several rows (dicts) in one statement: an alert's, one a
    reader, however many they are."""
    if rows:
        db.session.execute(_insert_many(), [_new_row(values) for values in rows])


def _new_row(values):
    unknown = values.keys() - set(_NEW_COLUMNS)
    if unknown:  # a misspelt column would otherwise be NULL without a word
        raise TypeError(f"not a new delivery's column: {sorted(unknown)}")
    row = {"kind": "", "status": DeliveryStatus.QUEUED, "attempts": 0, **values}
    row.setdefault("created_at", utcnow())
    row.setdefault("updated_at", row["created_at"])
    return {name: row.get(name) for name in _NEW_COLUMNS}


@cache
def _insert_new():
    table = Delivery.__table__
    return sa.insert(table).values(bind_columns(table, _NEW_COLUMNS))


@cache
def _insert_many():
    # RETURNING makes SQLAlchemy send the rows as one multi-row INSERT ("insertmanyvalues")
    # where a plain executemany is one INSERT a row on the server.
    return _insert_new().returning(Delivery.__table__.c.id)


def error_text(exc):
    return "".join(traceback.format_exception_only(exc)).strip()[:2000]


def count_attempt(delivery_id):
    """Count an attempt of a text before it is handed over, on a connection of its own
    (committed now): a gateway that accepted it while the job's commit is lost still has
    the attempt on record, and the count is every time the sender was called. Before the
    job writes the delivery, so the two transactions never wait on each other."""
    deliveries = Delivery.__table__
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(attempts=deliveries.c.attempts + 1, updated_at=utcnow())
        )


def mark_sent(delivery, provider_ref=None, text=None):
    """A text's attempt went (counted before it, ``count_attempt``); ``text``: what was
    sent, when it was worded again for this attempt."""
    now = utcnow()
    DELIVERY.move(delivery, DeliveryStatus.SENT)
    delivery.sent_at, delivery.updated_at = now, now
    if provider_ref:
        delivery.provider_ref = provider_ref[:120]
    if text is not None:
        delivery.text = text


def mark_failed(delivery, exc):
    """A permanent failure (the number invalid; counted before, ``count_attempt``): not
    retried."""
    DELIVERY.move(delivery, DeliveryStatus.FAILED)
    delivery.updated_at = utcnow()
    delivery.error = error_text(exc)


def record_mail_attempt(row, mail_status, delivery_status, *, provider_ref=None, exc=None):
    """One attempt's outcome for a mail read as columns (``row``: its ``id`` and
    ``status``, its delivery's ``delivery_id`` and ``delivery_status``): the mail moved to
    ``mail_status`` and its delivery (if any) to ``delivery_status`` through their state
    machines, each counted once; sent ones stamped now, a refusal's text (``exc``) kept on
    both. The statement form of ``mark_sent`` / ``mark_failed``: no ORM object, no flush."""
    now, sent = utcnow(), exc is None
    db.session.execute(
        _update_mail(sent),
        {
            "mail_id": row.id,
            "status": MAIL.transition(row.status, mail_status),
            **({"at": now} if sent else {"error": str(exc)[:2000]}),
        },
    )
    if row.delivery_id is None:
        return
    db.session.execute(
        _update_delivery(sent),
        {
            "delivery_id": row.delivery_id,
            "status": DELIVERY.transition(row.delivery_status, delivery_status),
            "at": now,
            **({"ref": provider_ref[:120]} if sent else {"error": error_text(exc)}),
        },
    )


def record_withdrawal(
    reason, *, delivery_id=None, delivery_status=None, mail_id=None, mail_status=None
):
    """A delivery (and its mail) withdrawn before an attempt: what it says stopped being
    true (``reason``, kept as its error: "withdrawn: <reason>"). No attempt is counted;
    the send job then returns, so the outbox does not retry it."""
    now, error = utcnow(), f"withdrawn: {reason}"
    if mail_id is not None:
        db.session.execute(
            sa.update(MailMessage.__table__)
            .where(MailMessage.__table__.c.id == mail_id)
            .values(status=MAIL.transition(mail_status, MailStatus.WITHDRAWN), last_error=error)
        )
    if delivery_id is not None:
        db.session.execute(
            sa.update(Delivery.__table__)
            .where(Delivery.__table__.c.id == delivery_id)
            .values(
                status=DELIVERY.transition(delivery_status, DeliveryStatus.WITHDRAWN),
                error=error,
                updated_at=now,
            )
        )


@cache
def _update_mail(sent):
    outcome = {"sent_at": "at"} if sent else {"last_error": "error"}
    return _attempt_update(MailMessage.__table__, "mail_id", outcome)


@cache
def _update_delivery(sent):
    outcome = {"sent_at": "at", "provider_ref": "ref"} if sent else {"error": "error"}
    return _attempt_update(Delivery.__table__, "delivery_id", {"updated_at": "at", **outcome})


def _attempt_update(table, key, binds):
    """One attempt on a mail's or a delivery's row (its id the parameter ``key``): its
    status (the parameter ``status``), one attempt more, and ``binds`` ({column: the
    parameter it takes})."""
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam(key, type_=table.c.id.type))
        .values(attempts=table.c.attempts + 1, **bind_columns(table, {"status": "status", **binds}))
    )


def record_transient_failure(exc, *, delivery_id=None, mail_id=None, counted=False):
    """Count a failed attempt on its own connection (committed now, whatever the job's
    transaction does next; ``counted``: the delivery's was counted before it,
    ``count_attempt``). After ``jobs.MAX_ATTEMPTS`` the delivery is ``failed``: the
    outbox stops retrying it too, and the admin jobs page offers a manual retry."""
    error, now = error_text(exc), utcnow()
    with db.engine.begin() as conn:
        if delivery_id is not None:
            deliveries = Delivery.__table__
            attempts = deliveries.c.attempts + (0 if counted else 1)
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    attempts=attempts,
                    error=error,
                    updated_at=now,
                    status=sa.case(
                        (attempts >= jobs.MAX_ATTEMPTS, DeliveryStatus.FAILED),
                        else_=DeliveryStatus.RETRYING,
                    ),
                )
            )
        if mail_id is not None:
            mails = MailMessage.__table__
            conn.execute(
                sa.update(mails)
                .where(mails.c.id == mail_id)
                .values(
                    attempts=mails.c.attempts + 1,
                    last_error=error,
                    status=sa.case(
                        (mails.c.attempts + 1 >= jobs.MAX_ATTEMPTS, MailStatus.FAILED),
                        else_=MailStatus.QUEUED,
                    ),
                )
            )
