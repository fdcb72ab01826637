"""What happened, told to whoever listens (blinker signals).

Capabilities send these inside their unit of work; they never import the listeners.
``portal.notify`` (and anything else above the capabilities) connects to them, usually to
record follow-up work in the outbox, so nothing leaves before the commit. Receivers take
``sender`` (the sending capability's name) and keyword arguments of plain ids and values."""
from blinker import Namespace

_signals = Namespace()

# --- booking and payments ------------------------------------------------------------

# --- refunds, payouts, accounts ------------------------------------------------------
