"""Fixtures of the cancellation/refund/reschedule tests: the booking world on a frozen
clock (boundaries to the minute), the sandbox gateway, visits booked and paid through the
real services, and the ledger check after every test."""
import pytest
import time_machine

import portal.booking.models  # noqa: F401  (until create_app's CAPABILITIES list them)
import portal.booking.reschedule  # noqa: F401
import portal.booking.tasks  # noqa: F401
import portal.payments.models  # noqa: F401
import portal.refunds.handlers  # noqa: F401
import portal.refunds.models  # noqa: F401
import portal.refunds.tasks  # noqa: F401
from portal.accounts.models import User
from portal.extensions import db
from portal.ledger.check import verify_ledger
from tests.booking.factories import NOW, build_world, start_gateway

_APPS = []


@pytest.fixture(scope="session", autouse=True)
def _close_connections():
    yield
    for app in _APPS:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture(autouse=True)
def _ledger_stays_sound(request):
    """Every test ends with a sound ledger (balanced, known accounts, no negative wallet)."""
    yield
    for name in ("app", "pg_app"):
        if name in request.fixturenames:
            app = request.getfixturevalue(name)
            if app not in _APPS:
                _APPS.append(app)
            with app.app_context():
                problems = verify_ledger()
                db.session.remove()
            assert problems == [], problems


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
