"""Kept free-times answers replayed before Flask, to visitors who are not signed in.

The free-times answers (``/find``'s results and ``/find/times`` over htmx) are the hottest
requests, and most come from visitors. ``catalog.calendar`` keeps their text per process;
answering from it through Flask still costs the request's machinery (request context,
session, login, limiter, hooks, the request log line: about two thirds of a kept answer's
CPU). ``Replay``, a WSGI layer in front of Flask like ``/healthz``'s, keeps the whole answer
a view offered (:func:`offer`: status, headers, body) under everything in the request the
answer can depend on (``KEY``), and answers the same request again before Flask while
``calendar.probe`` still returns the very text the answer was built from: the same check
the view makes (calendar versions, catalog and policy stamps, expiry), so a replayed answer
is never staler than the view's own.

Only a visitor's ``GET``: no cookie but the language one and a session cookie holding
nothing but ``VISITOR_SESSION`` (the CSRF token every browser gets with a whole page, and
Flask-Login's freshness mark), checked as Flask opens it. A signed-in user, a message
waiting in the session, a remember-me or any other cookie goes to Flask; an answer that
rendered a CSRF token (its session's) is never offered, and nothing with a ``Set-Cookie``
is kept. Each replayed answer gets its own ``X-Request-ID``, ``Date`` (the server's) and
request log line (user none, as for any visitor). At most ``MAX_ENTRIES`` answers and
``MAX_BYTES`` are kept, the least recently used going first."""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from flask import current_app, g, request
from itsdangerous import BadSignature
from werkzeug.http import parse_cookie

from portal.catalog import calendar
from portal.i18n import LANGUAGE_COOKIE
from portal.logs import log_request_line, request_id

MARK = "portal.replay"  # environ: what the view offered (see offer)
MAX_ENTRIES = 1024
MAX_BYTES = 16 * 1024 * 1024  # the answers' bodies and keys (odd headers make long keys)
MAX_SESSIONS = 4096  # session cookies whose verdict is kept
_OWN = {"x-request-id", "date"}  # headers each answer has its own of (the server adds Date)
# What a free-times answer's bytes can depend on in the request: the address (filters,
# day, page), the site's root (links), the scheme and host (what an absolute link would
# carry), htmx's headers (which block), the language inputs and the encoding
# (compression). The language cookie's value completes the key (see _visitor); a
# visitor's session cookie is not in it, since the answer shows nothing of the session.
KEY = (
    "PATH_INFO",
    "QUERY_STRING",
    "SCRIPT_NAME",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "HTTP_HX_REQUEST",
    "HTTP_HX_TARGET",
    "HTTP_HX_BOOSTED",
    "HTTP_HX_HISTORY_RESTORE_REQUEST",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_ACCEPT_ENCODING",
)
# What a visitor's session may hold: the CSRF token the layout's language form put there
# (every browser that saw a full page has one) and Flask-Login's freshness flag. Flashes,
# a signed-in user or anything else sends the request to Flask.
VISITOR_SESSION = frozenset({"csrf_token", "_fresh"})


def offer(response, key, value):
    """``response`` (a fragment built from ``value``, which ``calendar.keep`` kept under
    ``key``) may be replayed to the same request while the calendar still holds ``value``.
    A text the calendar did not keep (Redis away, this transaction's own writes) is not
    offered: its replay could only ever be refused, at the cost of a check."""
    csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    # A CSRF token rendered into the answer is its session's: never given to another.
    if calendar.holds(key, value) and csrf_field not in g:
        request.environ[MARK] = (key, value, request.url_rule.rule)
    return response


@dataclass(frozen=True, slots=True)
class _Answer:
    calendar_key: tuple  # what the view's text is kept under (calendar.keep)
    value: str  # that text
    route: str  # for the log line
    status_line: str
    headers: list  # Flask's, but its X-Request-ID and Date (each answer's own)
    body: bytes
    size: int  # what it holds in memory, roughly (MAX_BYTES)


class Replay:
    def __init__(self, flask_app, wsgi_app):
        self.flask_app = flask_app
        self.app = wsgi_app
        self.lock = threading.Lock()
        self.answers = OrderedDict()  # KEY's values -> _Answer
        self.held = 0  # the answers' sizes
        self.sessions = {}  # session cookie -> whether a visitor's (checking costs 0.1 ms)
        self.stats = {"replayed": 0, "kept": 0}

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        started, cpu = time.monotonic(), time.thread_time()
        visitor, language = self._visitor(environ)
        if not visitor:
            return self.app(environ, start_response)
        key = (*(environ.get(name) for name in KEY), language)
        with self.lock:
            answer = self.answers.get(key)
        if answer is not None and self._current(answer):
            return self._replay(environ, start_response, key, answer, started, cpu)
        return self._through(environ, start_response, key)

    def clear(self):
        with self.lock:
            self.answers.clear()
            self.held = 0
        self.sessions.clear()

    def _current(self, answer):
        with self.flask_app.app_context():
            return calendar.probe(answer.calendar_key).value is answer.value

    def _replay(self, environ, start_response, key, answer, started, cpu):
        with self.lock:
            if key in self.answers:
                self.answers.move_to_end(key)
            self.stats["replayed"] += 1
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(answer.status_line, [*answer.headers, ("X-Request-ID", rid)])
        path = environ.get("PATH_INFO", "")
        log_request_line(rid, None, "GET", answer.route, path, 200, started, cpu)
        return [answer.body]

    def _through(self, environ, start_response, key):
        """Flask answers; an answer its view offered is kept."""
        seen = []

        def starting(status, headers, exc_info=None):
            seen.append((status, headers))
            return start_response(status, headers, exc_info)

        body = self.app(environ, starting)
        offered = environ.get(MARK)
        if offered is None or not seen:
            return body
        status, headers = seen[-1]
        if not status.startswith("200 ") or any(n.lower() == "set-cookie" for n, _ in headers):
            return body
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        calendar_key, value, route = offered
        kept = [(n, v) for n, v in headers if n.lower() not in _OWN]
        size = len(data) + sum(len(part or "") for part in key)
        answer = _Answer(calendar_key, value, route, status, kept, data, size)
        with self.lock:
            old = self.answers.pop(key, None)
            self.held += size - (old.size if old is not None else 0)
            self.answers[key] = answer
            self.stats["kept"] += 1
            while len(self.answers) > MAX_ENTRIES or self.held > MAX_BYTES:
                self.held -= self.answers.popitem(last=False)[1].size
        return [data]

    def _visitor(self, environ):
        """(whether the request is a visitor's: no cookie but the language one and a
        session holding nothing but what VISITOR_SESSION allows; its language cookie)."""
        raw = environ.get("HTTP_COOKIE")
        if not raw:
            return True, None
        cookies = parse_cookie(raw)
        language = cookies.get(LANGUAGE_COOKIE)
        others = cookies.keys() - {LANGUAGE_COOKIE}
        if not others:
            return True, language
        name = self.flask_app.config["SESSION_COOKIE_NAME"]
        if others != {name}:
            return False, language  # remember-me, or a cookie this app does not set
        cookie = cookies[name]
        verdict = self.sessions.get(cookie)
        if verdict is None:
            if len(self.sessions) >= MAX_SESSIONS:
                self.sessions.clear()
            # A cookie's content is fixed by its signature; only its age moves, and an
            # expired one is opened empty: a visitor's all the same.
            verdict = self.sessions[cookie] = self._visitor_session(cookie)
        return verdict, language

    def _visitor_session(self, cookie):
        """The session cookie opened as Flask opens it (signature, age): a visitor's?"""
        app = self.flask_app
        serializer = app.session_interface.get_signing_serializer(app)
        if serializer is None:
            return False
        try:
            max_age = int(app.permanent_session_lifetime.total_seconds())
            data = serializer.loads(cookie, max_age=max_age)
        except BadSignature:
            return False  # Flask opens it empty: let it
        return isinstance(data, dict) and data.keys() <= VISITOR_SESSION


def init_app(app):
    app.wsgi_app = replay = Replay(app, app.wsgi_app)
    app.extensions["replay"] = replay
