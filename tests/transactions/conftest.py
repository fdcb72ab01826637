"""Transactions console and settlements: the booking world, the sandbox, a sound ledger."""

from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
