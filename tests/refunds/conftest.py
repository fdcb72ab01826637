"""Fixtures of the cancellation/refund/reschedule tests: the booking world on a frozen
clock (boundaries to the minute), the sandbox gateway, visits booked and paid through the
real services, and the ledger check after every test."""

import pytest
import time_machine

# The booking world, its users, the sandbox gateway and the ledger guard are the booking
# tests' own; only the clock differs: it stands still so boundaries hold to the minute.
from tests.booking.conftest import _ledger_stays_sound, gateway, users, world  # noqa: F401
from tests.booking.factories import NOW


@pytest.fixture
def clock():
    """Monday 1 June 2026, 08:00 IST, standing still (move it with ``clock.move_to``)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
