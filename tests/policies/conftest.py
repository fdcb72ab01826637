"""Fixtures of the policy tests: the booking world on a frozen clock and the sandbox gateway
(the refund tests' own), and two administrators."""

import pytest
import time_machine

from portal.accounts.models import ADMIN, User
from portal.extensions import db
from tests.booking.conftest import _ledger_stays_sound, gateway, users, world  # noqa: F401
from tests.booking.factories import NOW


@pytest.fixture
def clock():
    """Monday 1 June 2026, 08:00 IST, standing still (move it with ``clock.move_to``)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def admins(ctx):
    """Two administrators (the maker and the checker)."""
    people = [
        User(email=f"policy-admin{n}@example.com", name=f"Admin {n}", role=ADMIN, phone=None)
        for n in (1, 2)
    ]
    db.session.add_all(people)
    db.session.commit()
    return people
