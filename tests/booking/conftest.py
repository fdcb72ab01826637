"""Booking fixtures: the catalog world, a fixed clock, the sandbox gateway, and the ledger
check after every test."""
import pytest
import time_machine

import portal.booking.models  # noqa: F401  (until create_app imports them)
import portal.booking.tasks  # noqa: F401
import portal.payments.models  # noqa: F401
from portal.accounts.models import User
from portal.extensions import db
from portal.ledger.check import verify_ledger
from tests.booking.factories import NOW, build_world, start_gateway


_APPS = []


@pytest.fixture(scope="session", autouse=True)
def _close_connections():
    """Close pooled connections at the end (psycopg warns about unclosed ones, and
    warnings are errors). The root conftest should do this for every app."""
    yield
    for app in _APPS:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture(autouse=True)
def _ledger_stays_sound(request):
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
    """Monday 1 June 2026, 08:00 IST, ticking."""
    with time_machine.travel(NOW, tick=True) as traveller:
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
