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

import unicodedata

import sqlalchemy as sa
from markupsafe import escape

from portal.booking.models import IndividualBooking, MasterBooking
from portal.db import utcnow
from portal.extensions import db
from portal.notify.links import path
from portal.notify.models import (
    UNSENT,
    Delivery,
    DeliveryStatus,
    MailMessage,
    MailStatus,
    Notification,
    Reminder,
    ReminderStatus,
)
from portal.wallet.models import WalletAdjustment

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


def _theirs(user_id):
    """The ids of the patient's visits, bookings and wallet adjustments."""
    visits = db.session.scalars(
        sa.select(MasterBooking.id).where(MasterBooking.patient_id == user_id)
    ).all()
    bookings = db.session.scalars(
        sa.select(IndividualBooking.id).where(IndividualBooking.master_id.in_(visits))
    ).all()
    adjustments = db.session.scalars(
        sa.select(WalletAdjustment.id).where(WalletAdjustment.patient_id == user_id)
    ).all()
    return visits, bookings, adjustments


def _notices_about(user_id, visits, bookings, adjustments):
    """Notices to others about these records, by what identifies each exactly: an admin
    alert by the visit page it links to (``admin.visit``), a provider's notice by its
    dedupe key (``booking-confirmed:<booking>:<provider>`` …: their link is the schedule,
    the same for every patient) or its appointment page, a wallet approval's by its key.
    Never by the name (another patient may bear it). Read in batches (SQLite's limit on
    an expression's depth)."""
    notices = Notification.__table__
    found = set()

    def terms():
        for v in visits:
            if link := path("admin.visit", visit_id=v):
                yield notices.c.link == link
            yield notices.c.dedupe_key == f"alert:new-booking:{v}"
            yield notices.c.dedupe_key.like(f"alert:attention:{v}:%")
        for b in bookings:
            if link := path("provider.appointment", booking_id=b):
                yield notices.c.link == link
            yield notices.c.dedupe_key.like(f"booking-confirmed:{b}:%")
            yield notices.c.dedupe_key.like(f"booking-rescheduled:{b}:%")
            yield notices.c.dedupe_key.in_((f"booking-cancelled:{b}", f"alert:cancellation:{b}"))
            yield notices.c.dedupe_key.in_((f"alert:no-show:{b}", f"alert:not-completed:{b}"))
        for a in adjustments:
            yield notices.c.dedupe_key == f"alert:wallet-adjustment:{a}"

    batch = []
    for term in [*terms(), None]:
        if term is not None:
            batch.append(term)
        if batch and (term is None or len(batch) == 200):
            found.update(
                db.session.scalars(
                    sa.select(notices.c.id).where(notices.c.user_id != user_id, sa.or_(*batch))
                )
            )
            batch = []
    return found


def _word_char(char):
    # Letters, combining marks (a Devanagari vowel sign) and digits continue a word.
    return char == "_" or unicodedata.category(char)[0] in "LMN"


def replace_whole(text, pairs):
    """``text`` with each ``(old, new)`` of ``pairs`` replaced where ``old`` stands as a
    whole: not inside a longer word, so a child called "Indira" leaves "Indiranagar
    Clinic" as it was. One pass, the longest name first at each place, and what is
    written is never read again: a sibling called "Family" leaves "Family member #10"
    whole (re-read finding: it became "Family member #9 member #10"). None stays None."""
    if not text:
        return text
    pairs = sorted(((o, n) for o, n in pairs if o), key=lambda p: -len(p[0]))
    out, i, copied = [], 0, 0
    while i < len(text):
        for old, new in pairs:
            if text.startswith(old, i) and _stands_alone(text, i, i + len(old)):
                out += [text[copied:i], new]
                i = copied = i + len(old)
                break
        else:
            i += 1
    return "".join(out) + text[copied:]


def _stands_alone(text, start, end):
    """Whether ``text[start:end]`` is not part of a longer word on either side."""
    inside_before = start and _word_char(text[start - 1]) and _word_char(text[start])
    inside_after = end < len(text) and _word_char(text[end]) and _word_char(text[end - 1])
    return not (inside_before or inside_after)


def _rewrite(table, where, columns):
    """Each row of ``table`` matching ``where`` with ``columns`` ({name: pairs}) rewritten
    by ``replace_whole``; only the rows that change are written. Returns how many."""
    rows = db.session.execute(
        sa.select(table.c.id, *(table.c[name] for name in columns)).where(where)
    ).all()
    changed = 0
    for row_id, *values in rows:
        new = {
            name: replace_whole(value, pairs)
            for (name, pairs), value in zip(columns.items(), values, strict=True)
        }
        if list(new.values()) != values:
            db.session.execute(sa.update(table).where(table.c.id == row_id).values(**new))
            changed += 1
    return changed


def erase_about_them(user_id, pairs):
    """What was sent to others *about* the patient (a provider's "New appointment: <name>",
    their reminders, admin alerts with the name and e-mail, a wallet approval's notice):
    in those notices, their deliveries' text messages and their mails, each ``(old, new)``
    of ``pairs`` (every name the patient and each dependent had, the e-mail → the closed
    name and placeholders: ``privacy.former_names``) is replaced where it stands as a
    whole word (``replace_whole``), longest first. Rows are those about the patient's visits,
    bookings and wallet adjustments (by the page they link to or their dedupe key), never
    a match on the name alone (another patient may bear it). Returns {"notices": n,
    "deliveries": n, "mails": n} changed."""
    pairs = sorted(((o, n) for o, n in pairs if o and o != n), key=lambda p: -len(p[0]))
    if not pairs:
        return {"notices": 0, "deliveries": 0, "mails": 0}
    html_pairs = pairs + [(str(escape(o)), str(escape(n))) for o, n in pairs if escape(o) != o]
    visits, bookings, adjustments = _theirs(user_id)
    notices, deliveries, mails = (
        Notification.__table__,
        Delivery.__table__,
        MailMessage.__table__,
    )
    reminders = Reminder.__table__
    provider_reminders = sa.select(reminders.c.id).where(
        reminders.c.recipient_id != user_id,
        reminders.c.booking_id.in_(
            sa.select(IndividualBooking.id).where(
                IndividualBooking.master_id.in_(
                    sa.select(MasterBooking.id).where(MasterBooking.patient_id == user_id)
                )
            )
        ),
    )
    about_ids = _notices_about(user_id, visits, bookings, adjustments)
    # A provider's reminder notice: found by its deliveries, which name the reminder.
    about_ids.update(
        db.session.scalars(
            sa.select(deliveries.c.notification_id).where(
                deliveries.c.reminder_id.in_(provider_reminders),
                deliveries.c.notification_id.is_not(None),
            )
        )
    )
    about_ids = sorted(about_ids)
    delivery_scope = sa.or_(
        deliveries.c.notification_id.in_(about_ids),
        deliveries.c.reminder_id.in_(provider_reminders),
    )
    mail_ids = db.session.scalars(
        sa.select(deliveries.c.mail_id).where(delivery_scope, deliveries.c.mail_id.is_not(None))
    ).all()
    counts = {
        "notices": _rewrite(notices, notices.c.id.in_(about_ids), {"title": pairs, "body": pairs}),
        "deliveries": _rewrite(
            deliveries, sa.and_(delivery_scope, deliveries.c.text.is_not(None)), {"text": pairs}
        ),
        "mails": _rewrite(
            mails,
            mails.c.id.in_(mail_ids),
            {"subject": pairs, "text": pairs, "html": html_pairs},
        ),
    }
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Notification | Delivery | MailMessage):
            db.session.expire(obj)
    return counts
