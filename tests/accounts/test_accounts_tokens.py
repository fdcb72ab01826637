"""Password links: reset and invitation tokens are single-use and expire."""

import base64
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts import service
from portal.accounts.models import User
from portal.accounts.passwords import verify_password
from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.accounts.helpers import link_path


def token_from_mail(to):
    [mail] = db.session.scalars(sa.select(MailMessage).where(MailMessage.to == to)).all()
    return link_path(mail.text).rsplit("/", 1)[1]


def test_reset_link_is_mailed_and_sets_the_password_once(ctx, make_user):
    user = make_user("patient", email="ravi@example.com")
    service.request_password_reset("RAVI@example.com")
    token = token_from_mail("ravi@example.com")
    service.reset_password(token, "a brand new password")
    assert verify_password(db.session.get(User, user.id).password_hash, "a brand new password")
    # Used once: the hash that salted it has changed.
    with pytest.raises(service.ValidationError) as exc:
        service.reset_password(token, "another new password")
    assert exc.value.errors == {service.FORM: service.BAD_LINK}


def test_reset_link_expires_after_an_hour(ctx, make_user):
    make_user("patient", email="ravi@example.com")
    service.request_password_reset("ravi@example.com")
    token = token_from_mail("ravi@example.com")
    with time_machine.travel(utcnow() + timedelta(minutes=59), tick=False):
        assert service.user_for_token(token, service.RESET).email == "ravi@example.com"
    with time_machine.travel(utcnow() + timedelta(minutes=61), tick=False):
        with pytest.raises(service.ValidationError):
            service.reset_password(token, "a brand new password")


def test_unknown_or_inactive_address_gets_no_mail_and_no_error(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    gone = make_user("patient", email="gone@example.com")
    service.deactivate_user(admin, gone.id)
    service.request_password_reset("nobody@example.com")
    service.request_password_reset("gone@example.com")
    service.request_password_reset("not an email")
    assert db.session.scalars(sa.select(MailMessage)).all() == []


def test_weak_new_password_is_refused_and_link_still_works(ctx, make_user):
    make_user("patient", email="ravi@example.com")
    service.request_password_reset("ravi@example.com")
    token = token_from_mail("ravi@example.com")
    with pytest.raises(service.ValidationError) as exc:
        service.reset_password(token, "short")
    assert set(exc.value.errors) == {"password"}
    service.reset_password(token, "long enough now")


def test_tokens_are_bound_to_their_purpose(ctx, make_user):
    user = db.session.merge(make_user("patient"))
    reset = service.make_password_token(user, service.RESET)
    with pytest.raises(service.ValidationError):
        service.accept_invite(reset, "a brand new password")


@pytest.mark.parametrize("token", ["", "garbage", "eyJ1aWQiOjF9.AAAA.BBBB"])
def test_forged_tokens_are_refused(ctx, make_user, token):
    make_user("patient")
    with pytest.raises(service.ValidationError):
        service.reset_password(token, "a brand new password")


@pytest.mark.parametrize("uid", [2**31, 2**70, 0, -1, True, "1"])
def test_a_token_naming_no_possible_user_is_a_bad_link(app, client, make_user, uid):
    """The payload is read before its signature can be checked (the user's hash salts
    it): a number beyond the id columns was a database error (a 500)."""
    from itsdangerous import URLSafeTimedSerializer

    make_user("patient")
    token = URLSafeTimedSerializer("any key").dumps({"uid": uid, "email": "x@example.com"})
    assert client.get(f"/auth/reset-password/{token}").status_code == 400
    assert client.get(f"/auth/accept-invite/{token}").status_code == 400


def test_tampered_user_id_is_refused(ctx, make_user):
    victim = make_user("patient")
    attacker = db.session.merge(make_user("patient"))
    token = service.make_password_token(attacker, service.RESET)
    _payload, rest = token.split(".", 1)
    forged = (
        base64.urlsafe_b64encode(json.dumps({"uid": victim.id, "email": victim.email}).encode())
        .decode()
        .rstrip("=")
    )
    with pytest.raises(service.ValidationError):
        service.reset_password(forged + "." + rest, "a brand new password")


def test_invite_link_expires_after_seven_days_and_works_once(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    service.invite_user("doc@example.com", "Dr Mehta", "provider", admin)
    token = token_from_mail("doc@example.com")
    with time_machine.travel(utcnow() + timedelta(days=7, minutes=1), tick=False):
        with pytest.raises(service.ValidationError):
            service.accept_invite(token, "a brand new password")
    user = service.accept_invite(token, "a brand new password")
    assert service.authenticate("doc@example.com", "a brand new password").id == user.id
    with pytest.raises(service.ValidationError):
        service.accept_invite(token, "a second password!")


def test_changing_the_email_kills_the_link(ctx, make_user):
    made = make_user("patient", email="old@example.com")
    user = db.session.get(User, made.id)
    token = service.make_password_token(user, service.RESET)
    user.email = "new@example.com"
    db.session.commit()
    with pytest.raises(service.ValidationError):
        service.reset_password(token, "a brand new password")
