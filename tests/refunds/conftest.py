"""Fixtures of the cancellation/refund/reschedule tests: the booking world on a frozen
clock (boundaries to the minute), the sandbox gateway, visits booked and paid through the
real services, and the ledger check after every test."""
import pytest
import time_machine

from portal.accounts.models import User
from portal.extensions import db
from tests.booking.factories import NOW, build_world, start_gateway

@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Every test here ends with a sound ledger (see tests/conftest.py)."""


@pytest.fixture
def clock():
    """Monday 1 June 2026, 08:00 IST, standing still (move it with ``clock.move_to``)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(app, ctx, clock):
    return build_world()


@pytest.fixture
def users(world):
    def get(user_id):
        return db.session.get(User, user_id)
    return get


@pytest.fixture
def gateway(app):
    gw = start_gateway(app)
    yield gw
    gw.close()
