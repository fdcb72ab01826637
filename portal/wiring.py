"""Connections between parts that must not import each other.

Capabilities and the gateway say what happened through ``portal.events`` signals; the
receivers that act on them live above both, here:

* ``webhook_stored`` (gateway) → the ``gateway.process_webhook`` outbox job, recorded in
  the same transaction as the stored event;

(``payout_alert`` and the other capability signals are connected by ``portal.notify.receivers``.)

Imported by ``create_app`` (``CAPABILITIES``)."""

from portal import events
from portal.gateway import webhook_processing
from portal.jobs import enqueue, job


@job(webhook_processing.JOB_NAME, on_failure=webhook_processing.record_failure)
def process_webhook(event_id):
    webhook_processing.process_webhook(event_id)


@events.webhook_stored.connect
def _process_stored_webhook(sender, *, row_id, **_):
    enqueue(webhook_processing.JOB_NAME, event_id=row_id)
