"""Fixtures of the wallet adjustment tests: two admins, a patient, and the ledger check
after every test."""

from types import SimpleNamespace

import pytest

from portal.accounts.models import User
from portal.extensions import db


@pytest.fixture(autouse=True)
def _ledger_stays_sound(ledger_stays_sound):
    """Money moves in every test here: the ledger must balance afterwards."""


@pytest.fixture
def people(make_user):
    return SimpleNamespace(
        admin=make_user("admin", email="maker@example.com", name="Asha Maker"),
        admin2=make_user("admin", email="checker@example.com", name="Ravi Checker"),
        patient=make_user("patient", email="meera@example.com", name="Meera Iyer"),
        doctor=make_user("provider", email="doc@example.com", name="Dr Rao"),
    )


def fresh(user):
    """The user row in the current session (the fixtures' users are detached)."""
    return db.session.get(User, user.id)
