"""Booking fixtures: the catalog world, a fixed clock, the sandbox gateway, and the ledger
check after every test."""

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
    """Monday 1 June 2026, 08:00 IST, ticking."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def still_clock():
    """The same moment, standing still: a kept answer's expiry moves only when a test
    moves the clock."""
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
