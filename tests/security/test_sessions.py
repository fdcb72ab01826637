"""Issue #15, finding 2: a session ends everywhere when the user's sessions end.

A copied session cookie (or remember-me cookie) used from a second browser must stop
working after logout, a password reset, a password change and deactivation (also after a
later reactivation). Every session carries the user's ``session_version``; those events
bump it and the user loader refuses an id with an older one."""

import re

import sqlalchemy as sa

from portal.accounts import service
from portal.accounts.models import User
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.plugin import PASSWORD

NEW_PASSWORD = "a brand new pass phrase"


def _signed_in(client):
    """True when the client is signed in (a signed-in page answers, no login redirect)."""
    response = client.get("/me/")
    return response.status_code == 200


def _copy_cookies(source, target, *names):
    for name in names:
        cookie = source.get_cookie(name)
        assert cookie is not None, f"no {name} cookie"
        target.set_cookie(name, cookie.value)


def _thief(app, client, name="session"):
    """A second browser holding a copy of the client's cookie; signed in by it."""
    thief = app.test_client()
    _copy_cookies(client, thief, name)
    assert _signed_in(thief)
    return thief


def test_a_copied_cookie_stops_working_after_logout(app, client, make_user, login):
    login(make_user("patient"))
    thief = _thief(app, client)
    client.post("/auth/logout")
    assert not _signed_in(client)
    assert not _signed_in(thief)


def test_a_copied_cookie_stops_working_after_a_password_reset(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    thief = _thief(app, client)
    # The owner resets the password from another browser (the usual reason to: "someone
    # is in my account").
    other = app.test_client()
    other.post("/auth/forgot-password", data={"email": user.email})
    with app.app_context():
        text = db.session.scalar(sa.select(MailMessage.text).where(MailMessage.to == user.email))
        db.session.remove()
    path = re.search(r"https?://[^/\s]+(/\S+)", text).group(1)
    response = other.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert not _signed_in(thief)
    assert not _signed_in(client)


def test_a_copied_cookie_stops_working_after_a_password_change(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    thief = _thief(app, client)
    response = client.post(
        "/auth/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert _signed_in(client)  # the browser that changed it carries on
    assert not _signed_in(thief)


def test_a_password_change_needs_the_current_password(app, client, make_user, login):
    login(make_user("patient"))
    response = client.post(
        "/auth/password",
        data={
            "current_password": "not it at all",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "Your current password is incorrect." in response.get_data(as_text=True)


def test_a_copied_cookie_stays_dead_after_deactivation_and_reactivation(
    app, client, make_user, login
):
    admin = make_user("admin")
    user = make_user("patient")
    login(user)
    thief = _thief(app, client)
    with app.app_context():
        actor = db.session.get(User, admin.id)
        service.deactivate_user(actor, user.id)
        db.session.remove()
    assert not _signed_in(thief)
    with app.app_context():
        actor = db.session.get(User, admin.id)
        service.reactivate_user(actor, user.id)
        db.session.remove()
    # Reactivating the account does not revive the sessions open before.
    assert not _signed_in(thief)
    assert not _signed_in(client)


def test_a_copied_remember_me_cookie_stops_working_after_logout(app, client, make_user):
    user = make_user("patient")
    client.post("/auth/login", data={"email": user.email, "password": PASSWORD, "remember": "y"})
    thief = app.test_client()
    _copy_cookies(client, thief, "remember_token")  # no session cookie: only remember-me
    assert _signed_in(thief)
    client.post("/auth/logout")
    later = app.test_client()
    _copy_cookies(thief, later, "remember_token")
    assert not _signed_in(later)


def test_a_malformed_or_huge_session_id_is_no_user(app, client, make_user):
    user = make_user("patient")
    with app.app_context():
        for bad in ("", "x", str(user.id), f"{user.id}:", f"{2**70}:0", f"{user.id}:{2**70}"):
            assert service.session_user(bad) == (None, None), bad
        assert service.session_user(f"{user.id}:1") == (None, None)  # an ended session
        found, values = service.session_user(f"{user.id}:0", [sa.literal(7)])
        assert (found.id, values) == (user.id, (7,))
        db.session.remove()
