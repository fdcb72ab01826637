"""Account use cases run at the same moment on PostgreSQL, each in its own connection
(review rev6). Each asserts the right outcome and that the loser is told clearly."""

import time

import pytest
import sqlalchemy as sa

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.accounts.passwords import hash_password
from portal.audit.models import AuditEntry
from portal.extensions import db
from tests.plugin import PASSWORD
from tests.threads import lock_waiters, run_together

pytestmark = pytest.mark.postgres


def _users(pg_app, *specs):
    with pg_app.app_context():
        ids = []
        for role, email in specs:
            user = User(
                email=email,
                name=email.split("@")[0].title(),
                role=role,
                password_hash=hash_password(PASSWORD),
            )
            db.session.add(user)
            db.session.commit()
            ids.append(user.id)
        db.session.remove()
    return ids


def _meet(monkeypatch, target, name, parties=2, after=False):
    """Make ``target.name`` wait until every thread has reached it (the code before it ran
    in each: how the unlocked code raced) or another session waits on a lock (the locked
    code makes the others wait for the first's commit), at most 10 s. ``after``: wait
    after calling it, not before."""
    original = getattr(target, name)
    arrived = []

    def meet():
        arrived.append(1)
        deadline = time.monotonic() + 10
        while len(arrived) < parties and not lock_waiters(db.engine):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)

    def wait_then(*args, **kwargs):
        if not after:
            meet()
        answer = original(*args, **kwargs)
        if after:
            meet()
        return answer

    monkeypatch.setattr(target, name, wait_then)


def _count(pg_app, query):
    with pg_app.app_context():
        answer = db.session.scalar(query)
        db.session.remove()
    return answer


def test_two_admins_deactivating_each_other_at_once_leave_one_active(pg_app, monkeypatch):
    """Review rev6: the only two admins each pressed "Deactivate" on the other at the same
    moment; neither use case locked or re-read the acting admin, both committed and no
    active admin was left (nobody could sign in to reactivate anyone, approve an override
    or an adjustment). Now both accounts are locked in id order and the actor re-read: the
    second waits for the first's commit and is refused, its actor no longer active."""
    a_id, b_id = _users(pg_app, ("admin", "a@example.com"), ("admin", "b@example.com"))
    _meet(monkeypatch, accounts, "record")

    def deactivate(actor_id, target_id):
        def body():
            actor = db.session.get(User, actor_id)
            return accounts.deactivate_user(actor, target_id).id

        return body

    results = run_together(pg_app, deactivate(a_id, b_id), deactivate(b_id, a_id))
    active_admins = _count(
        pg_app,
        sa.select(sa.func.count(User.id)).where(User.role == "admin", User.active.is_(True)),
    )
    assert active_admins == 1, results
    done = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, accounts.ValidationError)]
    assert len(done) == 1 and len(refused) == 1, results
    assert refused[0].errors == {accounts.FORM: accounts.NOT_ACTIVE_ADMIN}


def test_one_reset_link_used_twice_at_once_sets_one_password(pg_app, monkeypatch):
    """Review rev6: a reset link works once (the password hash salts it), but two posts of
    it at the same moment both read the user unlocked, both passed the check and both set
    a password (the second silently replacing the first). Now the user is read FOR UPDATE
    on the way to a new password: the second waits, sees the new hash and is told the
    link is used."""
    (uid,) = _users(pg_app, ("patient", "p@example.com"))
    with pg_app.app_context():
        token = accounts.make_password_token(db.session.get(User, uid), accounts.RESET)
        db.session.remove()
    _meet(monkeypatch, accounts, "hash_password")

    def reset(new_password):
        return lambda: accounts.reset_password(token, new_password).id

    results = run_together(pg_app, reset("first new pass 4821"), reset("second new pass 9917"))
    done = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, accounts.ValidationError)]
    assert len(done) == 1 and len(refused) == 1, results
    assert refused[0].errors == {accounts.FORM: accounts.BAD_LINK}
    resets = _count(
        pg_app,
        sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "password_reset"),
    )
    assert resets == 1


def test_registrations_of_a_known_address_at_once_keep_the_mail_limit(pg_app, monkeypatch):
    """Review rev6: account mails are limited per account an hour; a reset request counts
    them under the user's row lock, but a sign-up with a known address (its owner is
    mailed) counted unlocked: sign-ups sent at the same moment all passed the count. With
    the limit at 1, two at once mailed twice. Now the owner's row is locked there too."""
    pg_app.config["PASSWORD_RESET_MAILS_PER_ACCOUNT"] = 1
    try:
        (uid,) = _users(pg_app, ("patient", "victim@example.com"))
        _meet(monkeypatch, accounts, "_may_mail", after=True)

        def sign_up(n):
            return lambda: accounts.sign_up(
                f"Someone {n}", "victim@example.com", "98123 45678", f"long enough pass {n}x7"
            )

        results = run_together(pg_app, sign_up(1), sign_up(2))
        mails = _count(
            pg_app,
            sa.select(sa.func.count(AuditEntry.id)).where(
                AuditEntry.action == accounts.ACCOUNT_MAIL_ACTION,
                AuditEntry.object_id == str(uid),
            ),
        )
    finally:
        pg_app.config["PASSWORD_RESET_MAILS_PER_ACCOUNT"] = 3
    assert results == [None, None]  # the visitor is told nothing either way
    assert mails == 1


def test_an_admin_deactivated_meanwhile_is_refused(pg_app):
    """The acting admin's own account is read afresh: deactivated since their page was
    opened, they cannot deactivate anyone (a clear message, nothing changes)."""
    a_id, b_id, p_id = _users(
        pg_app,
        ("admin", "a@example.com"),
        ("admin", "b@example.com"),
        ("patient", "p@example.com"),
    )
    with pg_app.app_context():
        stale = db.session.get(User, a_id)
        db.session.expunge(stale)
        accounts.deactivate_user(db.session.get(User, b_id), a_id)
        with pytest.raises(accounts.ValidationError) as refused:
            accounts.deactivate_user(stale, p_id)
        assert refused.value.errors == {accounts.FORM: accounts.NOT_ACTIVE_ADMIN}
        assert db.session.get(User, p_id).active is True
        db.session.remove()


def test_two_closes_of_one_account_at_once_close_it_once(pg_app, monkeypatch):
    """Closing one's account (docs/privacy.md) locks the patient's row before the password
    and the refusals are read: the same form posted twice at once (two tabs, a double
    click) closes it once; the second waits for the first's commit, finds the account
    inactive and is told it is not found (the page signs that browser out)."""
    from portal.privacy import closure

    (uid,) = _users(pg_app, ("patient", "closing@example.com"))
    _meet(monkeypatch, accounts, "check_own_password")

    def close():
        return closure.close_account(uid, PASSWORD, True).id

    results = run_together(pg_app, close, close)
    done = [r for r in results if not isinstance(r, Exception)]
    missing = [r for r in results if isinstance(r, accounts.NotFound)]
    assert len(done) == 1 and len(missing) == 1, results
    closed = _count(
        pg_app,
        sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "user.closed"),
    )
    assert closed == 1


def test_two_wrong_passwords_at_once_are_both_counted(pg_app, monkeypatch):
    """The password is checked before the account's row is locked (argon2 must not hold
    it, docs/security.md): two wrong guesses checked at the same moment are then counted
    one after the other, each under the row lock, reading the count afresh."""
    (uid,) = _users(pg_app, ("patient", "guessed@example.com"))
    _meet(monkeypatch, accounts, "verify_password")

    def guess():
        return accounts.authenticate("guessed@example.com", "not the password 1")

    results = run_together(pg_app, guess, guess)
    assert all(isinstance(r, accounts.ValidationError) for r in results), results
    assert _count(pg_app, sa.select(User.failed_logins).where(User.id == uid)) == 2


def test_one_dependent_added_twice_at_once_is_one_row(pg_app, monkeypatch):
    """Review rev-input: a double click on "Add dependent" sent two posts at once; both
    looked for her, found no one and added her, so the same child could be held with two
    doctors at one moment (the no-overlap rule is per dependent). Now the unique index on
    (guardian, folded name, date of birth) lets one in; the other is told she is there."""
    from datetime import date

    from portal.accounts import dependents

    (uid,) = _users(pg_app, ("patient", "p@example.com"))
    # Both have looked and found no one before either adds her.
    _meet(monkeypatch, dependents, "_same_person", after=True)

    def add(name):
        def body():
            guardian = db.session.get(User, uid)
            return dependents.add_dependent(guardian, name, "child", date(2018, 4, 1)).id

        return body

    results = run_together(pg_app, add("Diya Sharma"), add("diya  SHARMA"))
    done = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, dependents.DuplicateDependent)]
    assert len(done) == 1 and len(refused) == 1, results
    assert refused[0].dependent_id == done[0]
    assert "is already on your account" in refused[0].errors["name"]
    count = sa.select(sa.func.count()).select_from(dependents.Dependent)
    assert _count(pg_app, count) == 1
