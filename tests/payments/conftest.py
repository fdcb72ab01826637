"""The booking fixtures (world, clock, gateway, ledger check) serve the payment tests too."""
from tests.booking.conftest import (  # noqa: F401
    _ledger_stays_sound, clock, gateway, users, world)
