"""Notifications: in-app notices, admin alerts, reminders, mail, SMS/WhatsApp, sweeps.

Public API, by module (everything runs in the caller's transaction; mail, texts and jobs
leave only after its commit):

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
    ``queue_text(channel, to, text, ...)``; senders behind ``NOTIFY_SMS_SENDER`` /
    ``NOTIFY_WHATSAPP_SENDER``.

What the other capabilities say happened (``portal.events``) reaches this package through
``portal.notify.receivers``: reminders withdrawn or re-timed in the sender's transaction,
notices queued as outbox jobs (``portal.notify.tasks``, ``refund_notices``,
``link_notices``, ``payout_notices``, ``account_mail``). The capabilities never import
``portal.notify``.

Jobs: ``notify.send_mail``, ``notify.send_text``, ``notify.send_reminder``,
``notify.booking_confirmed``, ``notify.booking_cancelled``, ``notify.booking_rescheduled``,
``notify.reschedule_failed``, ``notify.payment_attention``, ``notify.refund_*``,
``notify.payout_moved``, ``notify.payout_hold_changed``, ``notify.fund_account_failed``,
``notify.penalty_charged``.
Periodic: ``notify.send_due_reminders`` (60 s), ``notify.follow_reminder_times`` (300 s),
``notify.flag_no_shows`` (300 s), ``notify.flag_not_completed`` (300 s).
See docs/notifications.md."""
