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


def stats(app):
    return dict(app.extensions["replay"].stats)


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
    assert replayed(app) == before + 1  # a signed-in session: every answer is Flask's


@pytest.mark.parametrize("page", ["results", "times"])
def test_an_answer_from_today_is_not_replayed_past_midnight(app, client, w, still_clock, page):
    """/find's results, and a day's times asked without a day, start from today: kept at
    23:59:50 they end at midnight, not 30 seconds later, since a replay finds them by the
    address alone."""
    if page == "results":
        url = f"/find?clinic={w.clinic}&service={w.consult}&q=Dr+Doc+1"
    else:
        url = times_url(w, 1).rsplit("&date=", 1)[0]
    headers = {**HX, "HX-Target": page}
    late = datetime.combine(NOW.date(), datetime.min.time(), IST) + timedelta(
        hours=23, minutes=59, seconds=50
    )
    with time_machine.travel(late, tick=False) as clock:
        client.get(url, headers=headers)
        before = replayed(app)
        evening = client.get(url, headers=headers).data
        assert replayed(app) == before + 1  # replayed until midnight
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


@pytest.mark.parametrize(
    "change",
    [
        {"headers": {"Accept-Language": "hi"}},
        {"headers": {"Accept-Encoding": "gzip"}},
        {"headers": {"HX-Boosted": "true"}},
        {"headers": {"HX-Target": "results"}},
        {"headers": {"HX-History-Restore-Request": "true"}},
        {"base_url": "http://localhost/portal"},  # the site's root
        {"base_url": "https://localhost"},
        {"base_url": "http://other.test"},
        {"query": "&page=2"},
        {"path": "/find"},  # the same query string on another page
        {"without": "HX-Request"},  # the whole page at the same address
    ],
)
def test_a_request_differing_in_what_the_answer_may_depend_on_is_not_replayed(
    app, client, w, change
):
    url = times_url(w, 1)
    for _ in "12":
        client.get(url, headers=TIMES)
    before = replayed(app)
    headers = {**TIMES, **change.get("headers", {})}
    headers.pop(change.get("without"), None)
    path, query = url.split("?")
    client.get(
        change.get("path", path) + "?" + query + change.get("query", ""),
        headers=headers,
        **{k: v for k, v in change.items() if k == "base_url"},
    )
    assert replayed(app) == before


@pytest.mark.parametrize("cookie", ["remember_token", "session", "anything"])
def test_a_request_with_any_cookie_but_the_language_goes_to_flask(app, client, w, cookie):
    url = times_url(w, 1)
    client.set_cookie(cookie, "1")
    before = stats(app)
    for _ in "12":
        assert client.get(url, headers=TIMES).status_code == 200
    assert stats(app) == before


def test_a_compressed_answer_is_replayed_compressed_without_its_old_date(app, client, w):
    url = times_url(w, 1)
    gzip = {**TIMES, "Accept-Encoding": "gzip"}
    first = client.get(url, headers=gzip)
    assert first.headers["Content-Encoding"] == "gzip" and "Date" in first.headers
    before = replayed(app)
    again = client.get(url, headers=gzip)
    assert replayed(app) == before + 1
    assert again.data == first.data and again.headers["Content-Encoding"] == "gzip"
    assert "Date" not in again.headers  # the server gives each answer its own


def test_the_whole_find_page_is_not_kept(app, client, w):
    url = f"/find?clinic={w.clinic}&service={w.consult}"
    before = stats(app)
    for _ in "12":
        assert client.get(url).status_code == 200
    assert stats(app) == before


def test_when_the_versions_cannot_be_read_flask_answers_and_nothing_is_kept(
    app, client, w, monkeypatch
):
    from portal.catalog import calendar

    monkeypatch.setattr(calendar, "_read", lambda provider_ids: None)
    url = times_url(w, 1)
    before = stats(app)
    for _ in "12":
        answer = client.get(url, headers=TIMES)
        assert answer.status_code == 200 and b">10:00</a>" in answer.data
    assert stats(app) == before


@pytest.mark.postgres
@pytest.mark.redis
def test_with_redis_a_hold_made_by_another_process_ends_the_replay(pg_app, still_clock):
    """Two instances (two gunicorn workers) sharing Redis: one replays its visitor's
    answer until a hold made through the other moves the calendar."""
    from tests.booking.test_free_times_cache import two_instances

    with two_instances(pg_app) as (reader, writer, world, _):
        client, url = reader.test_client(), times_url(world, 1)
        for _ in "123":  # the first, on an empty Redis, sets the epoch and is not kept
            client.get(url, headers=TIMES)
        assert replayed(reader) == 1
        hold(writer, world, hour=10)
        answer = client.get(url, headers=TIMES)
        assert replayed(reader) == 1 and b">10:00</a>" not in answer.data
        assert client.get(url, headers=TIMES).data == answer.data and replayed(reader) == 2


def test_the_answers_kept_are_bounded_in_bytes(app, monkeypatch):
    from portal.web import replay as replay_module
    from portal.web.replay import Replay

    def inner(environ, start_response):
        environ[MARK] = (("times",), "body", "/find/times")
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"x" * 100]

    monkeypatch.setattr(replay_module, "MAX_BYTES", 250)
    replay = Replay(app, inner)
    for path in ("/a", "/b", "/c"):
        replay({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda *a, **k: None)
    assert [key[0] for key in replay.answers] == ["/b", "/c"]  # the oldest went
    assert replay.held == sum(answer.size for answer in replay.answers.values()) <= 250


def test_a_browsers_visitors_with_their_csrf_sessions_share_the_replayed_answer(app, w):
    """A browser that saw a whole page holds a session cookie (the layout's language form
    put a CSRF token in it): still a visitor, and every visitor's key is the same."""
    url = times_url(w, 1)
    first, second = app.test_client(), app.test_client()
    for visitor in (first, second):
        visitor.get("/find")
        assert visitor.get_cookie(app.config["SESSION_COOKIE_NAME"]) is not None
        # Flask-Login marks the session not fresh once (a Set-Cookie: not kept).
        visitor.get(url, headers=TIMES)
    kept = first.get(url, headers=TIMES)
    assert "Set-Cookie" not in kept.headers
    before = replayed(app)
    assert second.get(url, headers=TIMES).data == kept.data == first.get(url, headers=TIMES).data
    assert replayed(app) == before + 2


def test_a_visitor_with_a_message_waiting_is_answered_by_flask_with_it(app, client, w):
    url = times_url(w, 1)
    for _ in "12":
        client.get(url, headers=TIMES)
    before = replayed(app)
    with client.session_transaction() as session:
        session["csrf_token"] = "x" * 40
        session["_flashes"] = [("info", "Your hold has expired.")]
    answer = client.get(url, headers=TIMES)
    assert replayed(app) == before and b"Your hold has expired." in answer.data


def test_an_answer_holding_a_csrf_token_is_not_offered(app, monkeypatch):
    from flask import g, make_response, request

    from portal.catalog import calendar
    from portal.web.replay import offer

    monkeypatch.setattr(calendar, "holds", lambda key, value: True)
    with app.test_request_context("/find/times"):
        offer(make_response("times"), ("times",), "times")
        assert MARK in request.environ
    with app.test_request_context("/find/times"):
        g.csrf_token = "a session's token"
        offer(make_response("times"), ("times",), "times")
        assert MARK not in request.environ
