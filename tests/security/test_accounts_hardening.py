"""Issue #15, finding 7: accounts.

Per-account lockout with backoff, reset-mail limits (per account and per address), common
and personal passwords refused, control characters refused in every text field,
``Cache-Control: no-store`` on signed-in pages, no server version, and a registration that
answers the same for a known and a new address (the known owner is mailed)."""

import importlib
import inspect
import pkgutil
import re
import threading
import urllib.request
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_wtf import FlaskForm as FlaskWTFForm
from werkzeug.serving import make_server

import portal.web.forms
from portal.accounts import service
from portal.accounts.models import User
from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.plugin import PASSWORD, rate_limited

REGISTRATION = {
    "name": "Asha Rao",
    "email": "asha@example.com",
    "phone": "+91 98123 45678",
    "password": "a long password",
    "confirm": "a long password",
}


def _mails(app, to):
    with app.app_context():
        rows = db.session.scalars(
            sa.select(MailMessage).where(MailMessage.to == to).order_by(MailMessage.id)
        ).all()
        mails = [(m.subject, m.text) for m in rows]
        db.session.remove()
        return mails


def _user(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        db.session.remove()
        return user


def _login(client, email, password, address="10.0.0.1"):
    return client.post(
        "/auth/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


# --- lockout ---------------------------------------------------------------------------


def test_five_failures_from_five_addresses_lock_the_account(app, client, make_user):
    user = make_user("patient")
    for n in range(5):  # a different address each time: the per-address limit never trips
        response = _login(client, user.email, "wrong password!", address=f"10.0.0.{n}")
        assert response.status_code == 422
    # Now even the right password is refused, with the wrong-password answer.
    response = _login(client, user.email, PASSWORD, address="10.9.9.9")
    assert response.status_code == 422
    assert service.BAD_LOGIN in response.get_data(as_text=True)
    locked = _user(app, user.id)
    assert locked.locked_until is not None
    assert timedelta(seconds=50) < locked.locked_until - utcnow() <= timedelta(seconds=60)


def test_lockout_doubles_and_success_resets_it(app, client, make_user):
    user = make_user("patient")
    for _ in range(5):
        _login(client, user.email, "wrong password!")

    def expire_lock():
        with app.app_context():
            row = db.session.get(User, user.id)
            row.locked_until = utcnow() - timedelta(seconds=1)
            db.session.commit()
            db.session.remove()

    expire_lock()
    _login(client, user.email, "wrong password!")  # the sixth failure: locked for 2 minutes
    locked = _user(app, user.id)
    assert timedelta(seconds=110) < locked.locked_until - utcnow() <= timedelta(seconds=120)
    expire_lock()
    assert _login(client, user.email, PASSWORD).status_code == 303
    after = _user(app, user.id)
    assert (after.failed_logins, after.locked_until) == (0, None)


def test_a_locked_account_and_an_unknown_one_get_the_same_answer(app, client, make_user):
    user = make_user("patient")
    for _ in range(6):
        _login(client, user.email, "wrong password!")
    locked = _login(client, user.email, PASSWORD)
    unknown = _login(client, "nobody@example.com", PASSWORD)
    assert locked.status_code == unknown.status_code == 422
    assert service.BAD_LOGIN in locked.get_data(as_text=True)
    assert service.BAD_LOGIN in unknown.get_data(as_text=True)


# --- reset mails -----------------------------------------------------------------------


def test_reset_mails_are_limited_per_account(app, make_user):
    user = make_user("patient")
    for n in range(5):  # five addresses, so only the per-account limit can stop them
        app.test_client().post(
            "/auth/forgot-password",
            data={"email": user.email},
            environ_base={"REMOTE_ADDR": f"10.1.0.{n}"},
        )
    assert len(_mails(app, user.email)) == 3


@pytest.fixture
def limited_app(app):
    """A twin of the session app with rate limiting on."""
    with rate_limited(
        app, PASSWORD_RESET_RATE_LIMIT="2 per hour", LOGIN_RATE_LIMIT="2/minute"
    ) as limited:
        yield limited


def test_reset_requests_are_limited_per_address(limited_app, make_user):
    client = limited_app.test_client()
    answers = [
        client.post(
            "/auth/forgot-password",
            data={"email": f"someone{n}@example.com"},
            environ_base={"REMOTE_ADDR": "10.2.0.1"},
        ).status_code
        for n in range(3)
    ]
    assert answers == [303, 303, 429]


def test_guessing_the_current_password_is_limited(limited_app, make_user):
    user = make_user("patient")
    client = limited_app.test_client()
    client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    answers = [
        client.post(
            "/auth/password",
            data={"current_password": f"guess number {n}", "password": "x", "confirm": "x"},
        ).status_code
        for n in range(3)
    ]
    assert answers == [422, 422, 429]


def _change(client, current, address="10.0.0.1"):
    return client.post(
        "/auth/password",
        data={
            "current_password": current,
            "password": "new secret words 42",
            "confirm": "new secret words 42",
        },
        environ_base={"REMOTE_ADDR": address},
    )


def test_a_stolen_session_guessing_from_many_addresses_is_locked_out(app, make_user):
    """Review rev6: the password change was limited per address only; one stolen cookie
    sent from 12 addresses (3 tries each within "3 per minute") made 36 guesses, none
    counted toward the account's lockout. Now a wrong current password counts as a failed
    sign-in does: the fifth locks the account and ends its sessions (the stolen one with
    them), so the rest are never checked."""
    user = make_user("patient", email="asha@example.com")
    with rate_limited(app, LOGIN_RATE_LIMIT="3 per minute") as limited:
        thief = limited.test_client()
        _login(thief, user.email, PASSWORD, address="198.51.100.1")
        answers = [
            _change(thief, f"guess {ip}-{n}", address=f"203.0.113.{ip + 10}").status_code
            for ip in range(12)
            for n in range(3)
        ]
    assert answers[:4] == [422] * 4
    assert answers[4] == 303  # locked: signed out, to the sign-in page
    assert set(answers[5:]) == {302}  # no session any more: the login page, nothing checked
    locked = _user(app, user.id)
    assert locked.failed_logins == 5 and locked.locked_until is not None


def test_the_guess_that_locks_the_account_ends_every_session(app, client, make_user):
    user = make_user("patient")
    owner = app.test_client()
    _login(owner, user.email, PASSWORD)
    _login(client, user.email, PASSWORD)
    for n in range(4):
        response = _change(client, f"guess {n}")
        assert response.status_code == 422
        assert "Your current password is incorrect." in response.get_data(as_text=True)
    response = _change(client, "guess 5")
    assert response.status_code == 303 and response.location == "/auth/login"
    page = client.get(response.location).get_data(as_text=True)
    assert "for your safety you have been signed out" in page
    for someone in (client, owner):
        assert someone.get("/auth/password").status_code == 302  # signed out
    # Locked as after five failed sign-ins: the right password waits too.
    assert _login(client, user.email, PASSWORD).status_code == 422
    # The owner resets the password by email: the lock goes.
    with app.app_context():
        token = service.make_password_token(db.session.get(User, user.id), service.RESET)
        service.reset_password(token, "a fresh pass phrase 7")
        db.session.remove()
    assert _login(client, user.email, "a fresh pass phrase 7").status_code == 303


def test_a_locked_account_cannot_change_its_password(app, client, make_user):
    """Locked by failed sign-ins elsewhere: a session's change is refused (the password
    not checked), with a message; the password stays."""
    user = make_user("patient")
    _login(client, user.email, PASSWORD)
    for n in range(5):
        _login(app.test_client(), user.email, "wrong password!", address=f"10.1.0.{n}")
    response = _change(client, PASSWORD)
    assert response.status_code == 422
    assert "Try again in a few minutes, or reset your password by email." in (
        response.get_data(as_text=True)
    )
    with app.app_context():
        row = db.session.get(User, user.id)
        assert service.verify_password(row.password_hash, PASSWORD)
        db.session.remove()


def test_a_right_current_password_clears_the_failures(app, client, make_user):
    user = make_user("patient")
    _login(client, user.email, PASSWORD)
    for n in range(3):
        _change(client, f"guess {n}")
    assert _user(app, user.id).failed_logins == 3
    assert _change(client, PASSWORD).status_code == 303
    assert (_user(app, user.id).failed_logins, _user(app, user.id).locked_until) == (0, None)


# --- passwords -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password,message",
    [
        ("password123", "too common"),
        ("Qwertyuiop!", "too common"),
        ("1234567890", "too common"),
        ("asha@example.com", "email address or name"),
        ("AshaRao2024!", "email address or name"),
    ],
)
def test_common_and_personal_passwords_are_refused(app, client, password, message):
    response = client.post(
        "/auth/register", data={**REGISTRATION, "password": password, "confirm": password}
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        db.session.remove()


def test_a_good_password_is_still_accepted():
    assert service.check_password("tram lines at dusk", "asha@example.com", "Asha Rao")


# --- control characters ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "email", "phone"])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f"])
def test_control_characters_are_refused_with_a_message(app, client, field, char):
    value = REGISTRATION[field][:3] + char + REGISTRATION[field][3:]
    response = client.post("/auth/register", data={**REGISTRATION, field: value})
    assert response.status_code == 422
    assert service.CONTROL_CHARS in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        db.session.remove()


def test_control_characters_in_a_dependent_name_are_refused(app, client, make_user, login):
    login(make_user("patient"))
    response = client.post("/me/dependents", data={"name": "Ri\x00ya", "relationship": "child"})
    assert response.status_code == 422
    assert service.CONTROL_CHARS in response.get_data(as_text=True)


# Bidi embedding, override and isolate controls, and the direction marks: a name holding
# U+202E shows reversed on admin pages, receipts and CSV exports ("Asha\u202eoaR" reads
# "AshaRao" backwards from the override on).
BIDI_OVERRIDES = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e"]
BIDI_ISOLATES = ["\u2066", "\u2067", "\u2068", "\u2069"]
BIDI_MARKS = ["\u200e", "\u200f", "\u061c"]
BIDI_REFUSED = "Remove characters that change the direction of text"


def _dependents(app):
    from portal.accounts.models import Dependent

    with app.app_context():
        names = db.session.scalars(sa.select(Dependent.name)).all()
        db.session.remove()
        return names


@pytest.mark.parametrize("char", BIDI_OVERRIDES + BIDI_ISOLATES + BIDI_MARKS)
def test_bidi_controls_in_a_dependent_name_are_refused(app, client, make_user, login, char):
    login(make_user("patient"))
    name = f"Riya{char}oaR"
    response = client.post("/me/dependents", data={"name": name, "relationship": "child"})
    assert response.status_code == 422
    assert BIDI_REFUSED in response.get_data(as_text=True)
    assert _dependents(app) == []


def test_bidi_controls_are_refused_in_hindi_on_the_patients_page(app, client, make_user, login):
    login(make_user("patient"))
    client.post("/language", data={"language": "hi", "next": "/"})
    response = client.post(
        "/me/dependents", data={"name": "Riya\u202eoaR", "relationship": "child"}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "दिशा बदलने वाले अक्षर" in page and BIDI_REFUSED not in page


def test_bidi_controls_in_a_registration_name_are_refused(app, client):
    response = client.post("/auth/register", data={**REGISTRATION, "name": "Asha \u202eoaR"})
    assert response.status_code == 422
    assert BIDI_REFUSED in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        db.session.remove()


def test_a_phone_number_copied_wrapped_in_direction_controls_is_taken_as_the_number(app, client):
    """Phone apps wrap a copied number in U+202A…U+202C: the number is what the person
    meant, so the phone rule drops them (a number is never shown reversed: it is kept as
    "+91" and ten digits) instead of refusing it like a name."""
    wrapped = "\u202a+91 98123 45678\u202c"
    response = client.post("/auth/register", data={**REGISTRATION, "phone": wrapped})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    with app.app_context():
        assert db.session.scalars(sa.select(User.phone)).all() == ["+919812345678"]
        db.session.remove()
    assert service.normalise_phone("\u2066098123\u200e45678\u2069") == "+919812345678"


def test_a_password_is_not_refused_for_direction_controls(app):
    """A password is never shown, and refusing one at sign-in would lock out whoever chose
    it before the rule: the direction rule leaves password fields alone."""
    from werkzeug.datastructures import MultiDict
    from wtforms import PasswordField

    from portal.web.forms.base import PortalForm

    class Probe(PortalForm):  # a posted form (the tests' app checks no CSRF token)
        password = PasswordField()

    with app.test_request_context("/", method="POST"):
        form = Probe(formdata=MultiDict({"password": "secret\u202eword-1234"}))
        assert form.validate(), form.errors


def test_a_devanagari_name_with_zero_width_joiners_is_accepted(app, client, make_user, login):
    """ZWJ (U+200D) and ZWNJ (U+200C) choose how Devanagari conjuncts are drawn (क्‍ष, क्‌ष):
    part of how a Hindi name is written, not a direction control."""
    login(make_user("patient"))
    name = "क्\u200dषमा श्\u200cरीवास्तव"
    response = client.post("/me/dependents", data={"name": name, "relationship": "child"})
    assert response.status_code == 303
    assert _dependents(app) == [name]


def test_a_person_name_with_a_bidi_control_is_refused_by_the_service_too():
    """A name reaching the accounts service without a form (the admin's desk, a script)."""
    with pytest.raises(ValueError, match=BIDI_REFUSED):
        service.normalise_name("Asha \u202eoaR")
    assert service.normalise_name("क्\u200dषमा") == "क्\u200dषमा"


def _form_errors(app, data):
    """The shared check on a one-line field and a text area, as every form gets it."""
    from werkzeug.datastructures import MultiDict
    from wtforms import StringField, TextAreaField

    from portal.web.forms.base import PortalForm

    class Probe(PortalForm):  # a posted form (the tests' app checks no CSRF token)
        name = StringField()
        note = TextAreaField()

    with app.test_request_context("/", method="POST"):
        form = Probe(formdata=MultiDict(data))
        form.validate()
        return {name: [str(e) for e in errors] for name, errors in form.errors.items()}


@pytest.mark.parametrize("char", BIDI_OVERRIDES + BIDI_ISOLATES)
def test_override_and_isolate_controls_are_refused_in_text_areas_too(app, char):
    errors = _form_errors(app, {"name": "Asha Rao", "note": f"Patient said{char} it hurts"})
    assert list(errors) == ["note"] and BIDI_REFUSED in errors["note"][0]


@pytest.mark.parametrize("char", BIDI_MARKS)
def test_direction_marks_are_refused_in_one_line_fields_only(app, char):
    errors = _form_errors(app, {"name": f"Asha{char} Rao", "note": f"Rao{char}, Asha: fever"})
    assert list(errors) == ["name"] and BIDI_REFUSED in errors["name"][0]


def test_zero_width_joiners_pass_in_every_field(app):
    text = "क्\u200dष श्\u200cरी"
    assert _form_errors(app, {"name": text, "note": text}) == {}


def test_every_form_checks_for_control_characters():
    """Every form of the web layer derives from the portal's base form (which adds the
    check to every text field)."""
    from portal.web.forms.base import PortalForm

    forms = []
    for info in pkgutil.iter_modules(portal.web.forms.__path__):
        module = importlib.import_module(f"portal.web.forms.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, FlaskWTFForm) and obj.__module__ == module.__name__:
                forms.append(obj)
    assert len(forms) > 20
    strays = [f.__name__ for f in forms if f is not PortalForm and not issubclass(f, PortalForm)]
    assert strays == []


# --- response headers ------------------------------------------------------------------


def test_signed_in_pages_are_not_stored(client, make_user, login):
    login(make_user("patient"))
    for path in ("/me/", "/me/dependents"):
        response = client.get(path)
        assert response.status_code == 200
        assert "no-store" in response.headers.get("Cache-Control", ""), path


def test_the_server_does_not_announce_its_version(app):
    """Through the real serving tier (``flask serve``: Werkzeug's server with the portal's
    request handler), not the test client, which sends no Server header at all."""
    from portal.cli import QuietRequestHandler

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/auth/login") as r:
            header = r.headers.get("Server", "")
    finally:
        server.shutdown()
        thread.join(5)
    assert header
    assert not any(ch.isdigit() for ch in header), header
    assert "werkzeug" not in header.lower() and "python" not in header.lower(), header


# --- registration ----------------------------------------------------------------------


def test_registration_does_not_reveal_a_known_address(app, make_user):
    make_user("patient", email="ravi@example.com", name="Ravi Menon")

    def register(email):
        client = app.test_client()
        response = client.post("/auth/register", data={**REGISTRATION, "email": email})
        page = client.get(response.location) if response.location else response
        # The CSRF token differs per session; nothing else may.
        text = re.sub(r'Token": "[^"]+"', "", page.get_data(as_text=True))
        text = re.sub(r'name="csrf_token" value="[^"]+"', "", text)
        return response.status_code, response.location, text

    known = register("ravi@example.com")
    new = register("new.person@example.com")
    assert known[:2] == new[:2]
    # The same page and message (the only difference allowed would be the address itself).
    assert known[2] == new[2]
    [(subject, text)] = _mails(app, "ravi@example.com")
    assert "already" in subject and "/auth/forgot-password" in text


def test_sign_in_with_the_limiters_redis_away_still_works_and_is_still_limited(app, make_user):
    """Redis unreachable: the limits count in the process's memory instead of failing
    every sign-in with a 500 (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED)."""
    user = make_user("patient")
    with rate_limited(
        app, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", LOGIN_RATE_LIMIT="2/minute"
    ) as limited:
        limited.config["PROPAGATE_EXCEPTIONS"] = False
        client = limited.test_client()
        answers = [
            client.post(
                "/auth/login",
                data={"email": user.email, "password": PASSWORD},
                environ_base={"REMOTE_ADDR": "10.9.0.1"},
            ).status_code
            for _ in range(3)
        ]
    assert answers == [303, 303, 429]
