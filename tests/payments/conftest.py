"""The booking fixtures (world, clock, gateway, ledger check) serve the payment tests too."""

from tests.booking.conftest import _ledger_stays_sound, clock, gateway, users, world  # noqa: F401
