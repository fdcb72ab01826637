"""Password hashing and checking (argon2: about a second at the production cost) runs
outside units of work (docs/architecture.md, "The embedded mode"). On SQLite every
outermost unit of work holds the process lock ``SQLITE_LOCK`` from its first read to its
commit: a sign-in that verified the password inside one made every other writer (holds,
webhook jobs, sweeps) wait behind it, and wrong passwords and unknown addresses hash too,
so an anonymous visitor within the sign-in limit could stall them for seconds a minute.
On PostgreSQL the same work held the account's row lock. Each hash and check is probed
from another thread, as a writer would: the lock must be free (on PostgreSQL from another
connection, so those tests commit for real: ``norollback``)."""

import threading

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from portal.accounts import service
from portal.accounts.models import User
from portal.accounts.passwords import needs_rehash
from portal.audit.models import AuditEntry
from portal.db import SQLITE_LOCK
from portal.extensions import db
from portal.privacy import closure
from tests.plugin import PASSWORD

NEW_PASSWORD = "a brand new password 4821"


class Seen(list):
    ids = ()


@pytest.fixture
def probed(app, monkeypatch):
    """Every argon2 call of the accounts service, recorded as (what, lock free?): free
    when another thread can take SQLITE_LOCK (SQLite) or the accounts' rows FOR UPDATE
    NOWAIT (PostgreSQL) at that moment. ``seen.ids``: the accounts whose rows are probed."""
    seen = Seen()
    engine = db.engine

    def writer_can_go():
        got = {}

        def take():
            if engine.dialect.name == "postgresql":
                with engine.connect() as other:
                    try:
                        other.execute(
                            sa.text("SELECT id FROM users WHERE id = ANY(:ids) FOR UPDATE NOWAIT"),
                            {"ids": list(seen.ids)},
                        )
                        got["free"] = True
                    except sa.exc.OperationalError:  # lock_not_available
                        got["free"] = False
                    other.rollback()
                return
            got["free"] = SQLITE_LOCK.acquire(blocking=False)
            if got["free"]:
                SQLITE_LOCK.release()

        probe = threading.Thread(target=take)
        probe.start()
        probe.join(10)
        return got.get("free")

    def wrap(name):
        real = getattr(service, name)

        def probed_call(*args):
            seen.append((name, writer_can_go()))
            return real(*args)

        monkeypatch.setattr(service, name, probed_call)

    wrap("verify_password")
    wrap("hash_password")
    service._dummy_hashes.clear()  # the unknown address's dummy hash is made (and probed) too
    return seen


def _free(seen, *names):
    assert [name for name, _ in seen] == list(names)
    assert all(free for _, free in seen), seen


@pytest.mark.norollback  # probed from another connection: the rows must be committed
def test_a_sign_in_checks_the_password_with_no_lock_held(app, ctx, make_user, probed):
    user = make_user("patient")
    probed.ids = [user.id]
    assert service.authenticate(user.email, PASSWORD).id == user.id
    _free(probed, "verify_password")


@pytest.mark.norollback  # probed from another connection: the rows must be committed
def test_a_wrong_password_and_an_unknown_address_hash_with_no_lock_held(
    app, ctx, make_user, probed
):
    user = make_user("patient")
    probed.ids = [user.id]
    for email in (user.email, "nobody@example.com"):
        with pytest.raises(service.ValidationError) as refused:
            service.authenticate(email, "not the password")
        assert refused.value.errors == {service.FORM: service.BAD_LOGIN}
    # The first check against the dummy hash makes it first.
    _free(probed, "verify_password", "hash_password", "verify_password")
    assert db.session.get(User, user.id).failed_logins == 1


@pytest.mark.norollback  # probed from another connection: the rows must be committed
def test_a_password_change_checks_and_hashes_with_no_lock_held(app, ctx, make_user, probed):
    user = make_user("patient")
    probed.ids = [user.id]
    changed = service.change_password(user.id, PASSWORD, NEW_PASSWORD)
    _free(probed, "verify_password", "hash_password")
    assert service.verify_password(changed.password_hash, NEW_PASSWORD)


@pytest.mark.norollback  # probed from another connection: the rows must be committed
def test_a_password_from_a_reset_link_is_hashed_with_no_lock_held(app, ctx, make_user, probed):
    user = make_user("patient")
    probed.ids = [user.id]
    token = service.make_password_token(db.session.get(User, user.id), service.RESET)
    done = service.reset_password(token, NEW_PASSWORD)
    _free(probed, "hash_password")
    assert service.verify_password(done.password_hash, NEW_PASSWORD)


@pytest.mark.norollback  # probed from another connection: the rows must be committed
def test_closing_an_account_checks_the_password_with_no_lock_held(app, ctx, make_user, probed):
    """``check_own_password`` (a closure holds the claims' lock around its unit of work)."""
    user = make_user("patient")
    probed.ids = [user.id]
    closure.close_account(user.id, PASSWORD, True)
    _free(probed, "verify_password")
    assert db.session.get(User, user.id).closed_at is not None


def test_a_password_changed_while_it_was_checked_is_refused_uncounted(
    app, ctx, make_user, monkeypatch
):
    """The check ran against a hash the account no longer has (its owner reset the
    password meanwhile): refused with the wrong-password answer, not counted (the guess
    was checked against the old password), and audited so."""
    user = make_user("patient")
    real = service.verify_password

    def verify_while_reset(password_hash, password):
        with app.app_context():  # the owner's reset, committed meanwhile
            db.session.get(User, user.id).password_hash = service.hash_password(NEW_PASSWORD)
            db.session.commit()
            db.session.remove()
        return real(password_hash, password)

    monkeypatch.setattr(service, "verify_password", verify_while_reset)
    with pytest.raises(service.ValidationError) as refused:
        service.authenticate(user.email, PASSWORD)
    assert refused.value.errors == {service.FORM: service.BAD_LOGIN}
    row = db.session.get(User, user.id)
    assert (row.failed_logins, row.last_login_at) == (0, None)
    failed = db.session.scalars(
        sa.select(AuditEntry.after).where(
            AuditEntry.action == "login_failed", AuditEntry.object_id == str(user.id)
        )
    ).all()
    assert failed == [{"reason": "password_changed_meanwhile"}]


def test_a_hash_made_with_other_costs_is_replaced_at_sign_in(app, ctx, make_user):
    """Argon2's cost parameters raised in config: the next sign-in stores a hash made with
    them (computed outside the unit of work too); a wrong password leaves it."""
    user = make_user("patient")
    row = db.session.get(User, user.id)
    row.password_hash = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(PASSWORD)
    db.session.commit()
    old = row.password_hash
    with pytest.raises(service.ValidationError):
        service.authenticate(user.email, "not the password")
    assert db.session.get(User, user.id).password_hash == old
    service.authenticate(user.email, PASSWORD)
    new = db.session.get(User, user.id).password_hash
    assert new != old and not needs_rehash(new) and service.verify_password(new, PASSWORD)
