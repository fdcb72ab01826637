"""One JSON line per request: who, what, the answer, how long it took and how much of that
was the request's own CPU (under load the rest is waiting for a core)."""

import json
import logging

import pytest

from portal.extensions import db
from tests.logrecords import logged


def test_the_request_line_says_the_route_status_time_and_cpu(app, client):
    with logged("portal.events", logging.INFO) as records:
        assert client.get("/auth/login").status_code == 200
    lines = [json.loads(r.getMessage()) for r in records]
    (line,) = [x for x in lines if x.get("kind") == "request"]
    assert (line["route"], line["status"], line["method"]) == ("/auth/login", 200, "GET")
    assert line["duration_ms"] >= 0 and isinstance(line["cpu_ms"], float)
    assert 0 <= line["cpu_ms"] <= line["duration_ms"] + 1


@pytest.mark.parametrize("kind, path", [("reset", "reset-password"), ("invite", "accept-invite")])
def test_a_password_links_token_is_not_written_to_the_log(app, client, make_user, kind, path):
    """The request line carried a password link's whole signed token (and in it the
    e-mail): anyone reading the logs could set the password (review finding)."""
    from portal.accounts import service

    user = make_user("patient", email="ravi.secret@example.com")
    with app.app_context():
        kind = service.RESET if kind == "reset" else service.INVITE
        token = service.make_password_token(db.session.get(type(user), user.id), kind)
    with logged("portal.events") as records:
        assert client.get(f"/auth/{path}/{token}").status_code == 200
    lines = [r.getMessage() for r in records if '"kind":"request"' in r.getMessage()]
    assert lines and not [line for line in lines if token in line]
    assert f'"path":"/auth/{path}/[hidden]"' in lines[-1]
