"""Issue #15, finding 5: the embedded sandbox's control API needs its key or a signed-in
portal admin, and its checkout sends the browser back only to the portal itself."""

import base64
import re

import pytest

from portal.gateway.sandbox import create_sandbox_app
from portal.gateway.sandbox.common import ApiError

TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')

CONTROL = [
    ("GET", "/_control/state"),
    ("GET", "/_control/events"),
    ("GET", "/_control/notifications"),
    ("POST", "/_control/faults"),
    ("POST", "/_control/advance"),
    ("POST", "/_control/deliver"),
    ("POST", "/_control/settle"),
    ("POST", "/_control/outcome"),
    ("POST", "/_control/reset"),
]


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def key_of(app):
    return basic(app.config["RAZORPAY_KEY_ID"], app.config["RAZORPAY_KEY_SECRET"])


@pytest.mark.parametrize("method, path", CONTROL)
def test_control_refuses_anonymous_and_wrong_keys(client, app, method, path):
    assert client.open("/sandbox" + path, method=method, json={}).status_code == 401
    wrong = basic(app.config["RAZORPAY_KEY_ID"], "guess")
    assert client.open("/sandbox" + path, method=method, json={}, headers=wrong).status_code == 401


@pytest.mark.parametrize("role", ["patient", "provider"])
def test_control_refuses_signed_in_non_admins(client, make_user, login, role):
    login(make_user(role))
    assert client.get("/sandbox/_control/state").status_code == 401
    assert client.post("/sandbox/_control/reset").status_code == 401


def test_control_answers_the_key_and_a_portal_admin(client, app, make_user, login):
    assert client.get("/sandbox/_control/state", headers=key_of(app)).status_code == 200
    login(make_user("admin"))
    assert client.get("/sandbox/_control/state").status_code == 200


def test_an_admins_changes_need_the_portals_csrf_token(client, app, make_user, login, monkeypatch):
    """The admin's cookie alone would let any page the admin visits post a reset (a plain
    form, another port of the same host counts as same-site): a change needs the token."""
    login(make_user("admin"))
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    store = app.extensions["razorpay_sandbox"].store
    order = store.create_order({"amount": 50_000, "currency": "INR", "receipt": "r1"})
    token = TOKEN.search(client.get("/admin/").get_data(as_text=True)).group(1)
    hostile = {"Origin": "http://127.0.0.1:8080"}
    for path in ("/_control/reset", "/_control/advance", "/_control/deliver"):
        answer = client.post("/sandbox" + path, data={"x": "1"}, headers=hostile)
        assert answer.status_code == 401, path
    wrong = client.post("/sandbox/_control/reset", json={}, headers={"X-CSRFToken": "forged"})
    assert wrong.status_code == 401
    assert store.get_order(order["id"])["id"] == order["id"]  # nothing was reset
    assert client.get("/sandbox/_control/state").status_code == 200  # reading needs none
    done = client.post("/sandbox/_control/reset", json={}, headers={"X-CSRFToken": token})
    assert done.status_code == 200
    with pytest.raises(ApiError):
        store.get_order(order["id"])


def test_standalone_control_needs_the_key():
    app = create_sandbox_app({"WEBHOOK_THREAD": False, "KEY_ID": "k", "KEY_SECRET": "s"})
    client = app.test_client()
    assert client.get("/_control/state").status_code == 401
    assert client.get("/_control/state", headers=basic("k", "s")).status_code == 200


@pytest.fixture
def order(app):
    sandbox = app.extensions["razorpay_sandbox"]
    return sandbox.store.create_order({"amount": 50_000, "currency": "INR", "receipt": "r1"})


@pytest.mark.parametrize(
    "callback",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "http://localhost@evil.example/",
        "http://evil.example\\@localhost/",
        "http://localhost.evil.example/",
        "javascript:alert(1)",
        "http://localhost:8080/other-port",
    ],
)
def test_checkout_refuses_callbacks_off_the_portal(client, order, callback):
    page = client.get(f"/sandbox/checkout/{order['id']}", query_string={"callback_url": callback})
    assert page.status_code == 400
    submit = client.post(
        f"/sandbox/checkout/{order['id']}", data={"callback_url": callback, "outcome": "success"}
    )
    assert submit.status_code == 400 and "location" not in submit.headers


def test_checkout_returns_to_the_portal(client, app, order):
    for callback in ("http://localhost/me/visits/1/paid", app.config["PUBLIC_URL"] + "/cb"):
        page = client.get(
            f"/sandbox/checkout/{order['id']}", query_string={"callback_url": callback}
        )
        assert page.status_code == 200
    answer = client.post(
        f"/sandbox/checkout/{order['id']}",
        data={"callback_url": "http://localhost/me/visits/1/paid", "outcome": "success"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("http://localhost/me/visits/1/paid?")


def test_a_payment_link_with_a_foreign_callback_does_not_redirect(client, app):
    sandbox = app.extensions["razorpay_sandbox"]
    link = sandbox.store.create_link(
        {"amount": 10_000, "currency": "INR", "callback_url": "https://evil.example/x"},
        "http://localhost/sandbox",
    )
    answer = client.post(f"/sandbox/pl/{link['id']}", data={"outcome": "success"})
    assert answer.status_code == 200 and "location" not in answer.headers
