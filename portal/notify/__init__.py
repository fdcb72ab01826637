"""Notifications: in-app notices, admin alerts, reminders, mail, SMS/WhatsApp, sweeps.

Public API (everything runs in the caller's transaction; mail, texts and jobs leave only
after its commit):

Reminders (``portal.notify.reminders``)
    ``schedule_reminders(booking_id)``  on confirmation: 24 h / 1 h / 15 min before start,
        to the patient (guardian) and every provider, only offsets still ahead.
    ``withdraw_reminders(booking_id, reason="booking cancelled")``  on cancellation.
    ``retime_reminders(booking_id)``  after a reschedule (or a provider change).

Notices and alerts (``portal.notify.center``, ``portal.notify.alerts``)
    ``notify_user(user_id, kind, title, body, link=None, email=True, *, priority="LOW",
        text=None, mail_template="notice", mail_context=None, attachments=None,
        dedupe_key=None)``  the in-app notice, plus mail (and ``text="sms"|"whatsapp"``).
    ``raise_alert(kind, title, body, link=None, priority=None, *, severity=None,
        dedupe_key=None, email=None)``  every active admin; priority by kind per POLICY.md
        (NEW_BOOKING, CANCELLATION, ADJUSTMENT_PENDING_APPROVAL: MEDIUM; PAYMENT_FAILED,
        PAYOUT_FAILED, RECONCILIATION_DISCREPANCY: HIGH); HIGH ones are mailed too.

Mail and texts (``portal.notify.mail``, ``portal.notify.channels``)
    ``queue_mail(to, subject, text, html=None, *, attachments=None, ...)``
    ``queue_text(channel, to, text, ...)``; senders behind ``NOTIFY_SENDERS``.

Booking events (``portal.notify.tasks``), for the booking capability's jobs
    ``on_booking_confirmed(visit_id)``  reminders + patient notice/mail with .ics +
        provider notices + NEW_BOOKING alert (idempotent).
    ``on_booking_cancelled(booking_id, *, by=None, refund=None, reason=None)``
    ``on_booking_rescheduled(booking_id, *, old_start=None)``
    ``on_payment_attention(visit_id, reason)``

Jobs: ``notify.send_mail``, ``notify.send_text``, ``notify.send_reminder``,
``notify.payment_link_expired``. Periodic: ``notify.send_due_reminders`` (60 s),
``notify.expire_payment_links`` (60 s), ``notify.flag_no_shows`` (300 s).
See docs/notifications.md."""


def schedule_reminders(booking_id, now=None):
    from portal.notify.reminders import schedule_reminders as fn
    return fn(booking_id, now)


def withdraw_reminders(booking_id, reason="booking cancelled"):
    from portal.notify.reminders import withdraw_reminders as fn
    return fn(booking_id, reason)


def retime_reminders(booking_id, now=None):
    from portal.notify.reminders import retime_reminders as fn
    return fn(booking_id, now)


def notify_user(user_id, kind, title, body, link=None, email=True, **options):
    from portal.notify.center import notify_user as fn
    return fn(user_id, kind, title, body, link=link, email=email, **options)


def raise_alert(kind, title, body, link=None, priority=None, **options):
    from portal.notify.alerts import raise_alert as fn
    return fn(kind, title, body, link=link, priority=priority, **options)


# The modules whose import registers this capability's models, jobs and periodic work.
MODULES = ("portal.notify.models", "portal.notify.mail", "portal.notify.channels",
           "portal.notify.reminders", "portal.notify.sweeps", "portal.notify.tasks")
