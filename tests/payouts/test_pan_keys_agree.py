"""A PAN keys its payee twice: in Python (``common.payee_key``: the payouts' lock
``payout-pan:<PAN>``) and in SQL (``common.PAYEE_KEY``: whose payouts count together for
TDS). Python's ``strip`` takes any whitespace (a tab, a newline, a no-break space), SQL's
``trim`` only spaces, and SQLite's ``upper`` only ASCII letters: a PAN stored with any of
them would be locked as one payee and counted as another, so two profiles of one PAN
would miss each other's payouts (TDS under the threshold). Every writer stores
``clean_pan``'s value, and the database refuses any other (docs/payouts.md, "PAN")."""

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.catalog.checks import ValidationError
from portal.catalog.models import Provider
from portal.catalog.pan import enter_own_pan
from portal.catalog.providers import create_provider, update_provider
from portal.extensions import db
from portal.payouts.common import PAYEE_KEY, payee_key

PAN = "ABCPK1234L"
# As a form, a paste or an import may bring it: every whitespace Python strips.
TYPED = [
    " abcpk1234l ",
    "\tABCPK1234L\n",
    "ABCPK1234L\u00a0",
    "\u2003abcpk1234l\r\n",
    "\x0bABCPK1234L\x0c",
    "\u3000ABCPK1234L\u2028",
]
# Not PANs once trimmed: refused by every writer.
NOT_PANS = ["ABCPK\t1234L", "ABCPK 1234L", "ABCPK1234L\u200b", "ＡBCPK1234L"]
# What a write around the writers (a script, a console, a restore) might put in the column.
UNSHAPED = [
    "abcpk1234l",
    " ABCPK1234",
    "ABCPK1234\t",
    "\nABCPK1234",
    "ABCPK1234\u00a0",
    "ÀBCPK1234L",
    "",
    "ABCPK12345",
]


def _admin(make_user):
    return db.session.get(User, make_user("admin").id)


def _doctor(world):
    """A profile an admin's form can save (a doctor's registration, a specialization)."""
    provider, user = world.provider()
    provider.registration_no = f"KMC-{provider.id}"
    provider.specializations.append(world._spec)
    db.session.commit()
    return provider, user


def _keys(provider_id):
    """(the PAN stored, its Python key, its SQL key)."""
    db.session.expire_all()
    stored = db.session.scalar(sa.select(Provider.pan).where(Provider.id == provider_id))
    in_sql = db.session.scalar(sa.select(PAYEE_KEY).where(Provider.id == provider_id))
    return stored, payee_key(stored), in_sql


@pytest.mark.parametrize("typed", TYPED)
def test_every_writer_stores_a_pan_both_keys_read_alike(world, make_user, typed):
    admin = _admin(make_user)
    clinic = world.clinic()
    made = create_provider(
        admin,
        email="new.doctor@example.com",
        name="Dr New",
        registration_no="KMC-2019-04417",
        pan=typed,
        clinic_ids=[clinic.id],
        specialization_ids=[world._spec.id],
    )
    assert _keys(made.id) == (PAN, PAN, PAN)

    edited, _ = _doctor(world)
    update_provider(admin, db.session.get(Provider, edited.id), pan=typed)
    assert _keys(edited.id) == (PAN, PAN, PAN)

    own, own_user = world.provider()
    enter_own_pan(db.session.get(User, own_user.id), typed, PAN)
    assert _keys(own.id) == (PAN, PAN, PAN)

    # One payee: the profiles whose payouts count together (``same_payee``'s subquery).
    key_of_made = sa.select(PAYEE_KEY).where(Provider.id == made.id).scalar_subquery()
    one_payee = db.session.scalars(sa.select(Provider.id).where(key_of_made == PAYEE_KEY))
    assert sorted(one_payee) == sorted([made.id, edited.id, own.id])


@pytest.mark.parametrize("typed", NOT_PANS)
def test_every_writer_refuses_what_is_no_pan_once_trimmed(world, make_user, typed):
    admin = _admin(make_user)
    edited, _ = _doctor(world)
    with pytest.raises(ValidationError):
        update_provider(admin, db.session.get(Provider, edited.id), pan=typed)
    db.session.rollback()
    own, own_user = world.provider()
    with pytest.raises(ValidationError):
        enter_own_pan(db.session.get(User, own_user.id), typed, typed)
    db.session.rollback()
    assert _keys(edited.id) == _keys(own.id) == (None, None, None)


@pytest.mark.parametrize("stored", UNSHAPED)
def test_the_database_refuses_a_pan_not_stored_as_the_rule_makes_it(world, stored):
    """Around every writer: the column takes five letters, four digits and a letter
    (A-Z, 0-9), or nothing. Both keys are then the value itself."""
    provider, _ = world.provider()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.update(Provider).where(Provider.id == provider.id).values(pan=stored))
        db.session.flush()
    db.session.rollback()
    db.session.execute(sa.update(Provider).where(Provider.id == provider.id).values(pan=PAN))
    db.session.commit()
    assert _keys(provider.id) == (PAN, PAN, PAN)
