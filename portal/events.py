"""What happened, told to whoever listens (blinker signals).

Capabilities send these inside their unit of work; they never import the listeners.
``portal.notify`` (and anything else above the capabilities) connects to them, usually to
record follow-up work in the outbox, so nothing leaves before the commit. Receivers take
``sender`` (the sending capability's name) and keyword arguments of plain ids and values."""
from blinker import Namespace

_signals = Namespace()

# --- booking and payments ------------------------------------------------------------

# --- refunds, payouts, accounts ------------------------------------------------------
# Payouts: an admin must look at a payout (failed for good, reversed). Keyword arguments:
# severity ("HIGH" | "MEDIUM" | "LOW"), kind (e.g. "PAYOUT_FAILED"), title, message,
# link (the admin page or None), dedupe_key (or None). notify connects raise_alert to it;
# what the receivers return (the notices made) is handed back to the sender.
payout_alert = _signals.signal("payout-alert")
# Gateway: a verified webhook event was stored (row_id = WebhookEvent.id); whoever runs
# jobs records its processing in the outbox, in the same transaction.
webhook_stored = _signals.signal("webhook-stored")
