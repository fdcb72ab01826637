"""Connections between parts that must not import each other.

Capabilities and the gateway say what happened through ``portal.events`` signals; the
receivers that act on them live above both, here:

* ``webhook_stored`` (gateway) → the ``gateway.process_webhook`` outbox job, recorded in
  the same transaction as the stored event;
* ``payout_alert`` (payouts) → ``portal.notify.alerts.raise_alert``. Move this receiver
  into ``portal.notify`` once notify connects its own receivers to ``portal.events``
  (then delete it here, or admins are told twice; the dedupe key would hide the second).

Imported by ``create_app`` (``CAPABILITIES``)."""
from portal import events
from portal.gateway import webhook_processing
from portal.jobs import enqueue, job
from portal.notify.alerts import raise_alert


@job(webhook_processing.JOB_NAME)
def process_webhook(event_id):
    webhook_processing.process_webhook(event_id)


@events.webhook_stored.connect
def _process_stored_webhook(sender, *, row_id, **_):
    enqueue(webhook_processing.JOB_NAME, event_id=row_id)


@events.payout_alert.connect
def _alert_admins_about_a_payout(sender, *, severity, kind, title, message, link=None,
                                 dedupe_key=None, **_):
    return raise_alert(kind=kind, title=title, body=message, link=link, severity=severity,
                       dedupe_key=dedupe_key)
