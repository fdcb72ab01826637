"""Reconciliation fixtures: the booking world on a ticking clock, the sandbox gateway served
on loopback (webhooks delivered into the app), and the ledger check after every test."""

from tests.booking.conftest import (  # noqa: F401
    _ledger_stays_sound,
    clock,
    gateway,
    users,
    world,
)
