"""A visitor's kept free-times answer is replayed before Flask (portal.web.replay): the
same bytes as Flask's answer, its own request id and log line, and never once the calendar
has moved, the day has turned, or the request is signed in or in another language."""

import json
import logging
from datetime import datetime, timedelta

import pytest
import time_machine

from portal.web.replay import MARK
from tests.booking.factories import IST, NOW
from tests.booking.test_free_times_cache import HX, hold, times_url, w  # noqa: F401
from tests.logrecords import logged
from tests.plugin import PASSWORD

TIMES = {**HX, "HX-Target": "times"}


def replayed(app):
    return app.extensions["replay"].stats["replayed"]


def test_a_visitors_second_answer_is_replayed_with_its_own_request_id(app, client, w):
    url = times_url(w, 1)
    first = client.get(url, headers=TIMES)
    before = replayed(app)
    with logged("portal.events", logging.INFO) as records:
        again = client.get(url, headers=TIMES)
    assert replayed(app) == before + 1
    assert again.status_code == 200 and again.data == first.data and b">10:00</a>" in again.data
    for name in ("Content-Security-Policy", "X-Frame-Options", "Vary", "Content-Type"):
        assert again.headers[name] == first.headers[name]
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    (line,) = [json.loads(r.getMessage()) for r in records]
    assert (line["kind"], line["route"], line["status"], line["user_id"]) == (
        "request",
        "/find/times",
        200,
        None,
    )
    assert line["request_id"] == again.headers["X-Request-ID"]


def test_a_hold_ends_the_replay_at_once(app, client, w):
    url = times_url(w, 1)
    for _ in "12":
        client.get(url, headers=TIMES)
    before = replayed(app)
    hold(app, w, hour=10)
    answer = client.get(url, headers=TIMES)
    assert replayed(app) == before and b">10:00</a>" not in answer.data
    assert b">10:30</a>" in answer.data


def test_another_language_or_a_signed_in_patient_is_answered_by_flask(
    app, client, w, make_user, login
):
    url = times_url(w, 1)
    english = [client.get(url, headers=TIMES).data for _ in "12"][-1]
    before = replayed(app)
    client.set_cookie("lang", "hi")
    hindi = [client.get(url, headers=TIMES).data for _ in "12"]
    assert hindi[0] != english and hindi[1] == hindi[0]
    assert replayed(app) == before + 1  # the second Hindi answer, kept under its cookie
    client.delete_cookie("lang")
    login(make_user("patient", email="replay@example.com"))
    for _ in "12":
        assert client.get(url, headers=TIMES).data == english
    assert replayed(app) == before + 1  # a session cookie: every answer is Flask's


def test_the_search_results_are_not_replayed_past_midnight(app, client, w, still_clock):
    """/find's results start from today: kept at 23:59:50 they end at midnight, not
    30 seconds later, since a replay finds them by the address alone."""
    url = f"/find?clinic={w.clinic}&service={w.consult}&q=Dr+Doc+1"
    headers = {**HX, "HX-Target": "results"}
    late = datetime.combine(NOW.date(), datetime.min.time(), IST) + timedelta(
        hours=23, minutes=59, seconds=50
    )
    with time_machine.travel(late, tick=False) as clock:
        for _ in "12":
            evening = client.get(url, headers=headers).data
        before = replayed(app)
        clock.move_to(late + timedelta(seconds=15))
        morning = client.get(url, headers=headers).data
    assert replayed(app) == before
    assert morning != evening


def test_an_answer_that_sets_a_cookie_is_not_kept(app):
    from portal.web.replay import Replay

    def inner(environ, start_response):
        environ[MARK] = (("times",), "body", "/find/times")
        start_response("200 OK", [("Content-Type", "text/html"), ("Set-Cookie", "a=b")])
        return [b"body"]

    replay = Replay(app, inner)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/find/times", "QUERY_STRING": ""}
    for _ in "12":
        assert replay(dict(environ), lambda status, headers, exc_info=None: None) == [b"body"]
    assert replay.stats == {"replayed": 0, "kept": 0}


@pytest.mark.parametrize("method", ["HEAD", "POST"])
def test_only_a_get_is_kept(app, method):
    from portal.web.replay import Replay

    def inner(environ, start_response):
        environ[MARK] = (("times",), "body", "/find/times")
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"body"]

    replay = Replay(app, inner)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/find/times", "QUERY_STRING": ""}
    replay(dict(environ), lambda status, headers, exc_info=None: None)
    assert replay.stats["kept"] == 0


def test_the_same_inner_answer_is_kept_for_a_get(app):
    """The fake above kept for a GET, so the two tests before it could fail."""
    from portal.web.replay import Replay

    def inner(environ, start_response):
        environ[MARK] = (("times",), "body", "/find/times")
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"body"]

    replay = Replay(app, inner)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/find/times", "QUERY_STRING": ""}
    replay(dict(environ), lambda status, headers, exc_info=None: None)
    assert replay.stats["kept"] == 1


def test_a_newer_answer_kept_by_another_request_is_not_replayed_as_the_old_one(
    app, client, w, make_user
):
    """The calendar keeps the text under a key several requests share (a signed-in
    patient's, another encoding's): replayed bytes must be built from the very text it
    holds now, not from any text it holds."""
    url = times_url(w, 1)
    for _ in "12":
        client.get(url, headers=TIMES)
    hold(app, w, hour=10)
    patient = app.test_client()
    patient.post(
        "/auth/login",
        data={"email": make_user("patient", email="other@example.com").email, "password": PASSWORD},
    )
    assert b">10:00</a>" not in patient.get(url, headers=TIMES).data  # kept anew, by Flask
    before = replayed(app)
    answer = client.get(url, headers=TIMES)
    assert replayed(app) == before and b">10:00</a>" not in answer.data
