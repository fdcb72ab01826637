"""One structured (JSON) log line per request and per job."""

import json
import logging
import sys
import time
import uuid

import sqlalchemy as sa
from flask import g, request, session
from flask_login import current_user

log = logging.getLogger("portal.events")


def log_event(kind, **fields):
    fields = {"kind": kind, **fields}
    if kind != "request":
        rid = _request_id()
        if rid:
            fields.setdefault("request_id", rid)
    log.info(json.dumps(fields, default=str, separators=(",", ":")))


def _request_id():
    try:
        return g.get("request_id")
    except RuntimeError:
        return None


def init_app(app):
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    @app.before_request
    def _start():
        g.request_started = time.monotonic()
        g.request_cpu = time.thread_time()
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))

    @app.after_request
    def _finish(response):
        # Logging must never turn an answer into a 500: after a request that broke the
        # database session, loading the user (or anything else here) may fail.
        try:
            _log_request(response)
        except Exception:  # noqa: BLE001
            log.exception("the request log line failed (request %s)", g.get("request_id"))
        return response


def request_id(incoming):
    """A caller's id (a load balancer's) if it looks sane, else a new one."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex


def log_request_line(rid, user_id, method, route, path, status, started, cpu):
    """The request's line; ``started`` and ``cpu`` are its ``time.monotonic()`` and
    ``time.thread_time()`` when it began (None: unknown)."""
    log_event(
        "request",
        request_id=rid,
        user_id=user_id,
        method=method,
        route=route,
        path=path,
        status=status,
        duration_ms=round((time.monotonic() - started) * 1000, 1) if started else None,
        # The request's own CPU: under load, duration_ms includes waiting for a core.
        cpu_ms=round((time.thread_time() - cpu) * 1000, 1) if cpu is not None else None,
    )


def _user_id():
    try:
        if not current_user or current_user.is_anonymous:
            return None
        user = current_user._get_current_object()
        state = sa.inspect(user, raiseerr=False)
        if state is not None and state.identity and {"id", "session_version"} & state.unloaded:
            # A use case's commit expired the user: the session holds the same id text
            # (load_user checked it), so the row is not read again for a log line.
            held = session.get("_user_id") or ""
            if held.partition(":")[0] == str(state.identity[0]):
                return held
        return user.get_id()
    except Exception:  # noqa: BLE001 (a broken session: the line is still worth writing)
        return None


# A URL's parts that are secrets (a password link's signed token, which also carries the
# e-mail): never written to a log line.
SECRET_ARGS = frozenset({"token"})
MASK = "[hidden]"


def _loggable_path():
    """The request's path with its secret parts masked (``SECRET_ARGS``)."""
    path = request.path
    for name, value in (request.view_args or {}).items():
        if name in SECRET_ARGS and isinstance(value, str) and value:
            path = path.replace(value, MASK)
    return path


def _log_request(response):
    started, cpu = g.get("request_started"), g.get("request_cpu")
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if request.path.startswith("/static/"):
        return
    log_request_line(
        g.get("request_id"),
        _user_id(),
        request.method,
        request.url_rule.rule if request.url_rule else None,
        _loggable_path(),
        response.status_code,
        started,
        cpu,
    )
