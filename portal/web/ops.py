"""Operability: liveness for load balancers, readiness for deploys and monitors.

``/healthz`` says only that this process answers: no database, no Redis, no migrations
scan, so a load balancer may poll it often and a slow database does not take every web
process out of rotation at once. It is answered by ``Liveness``, a WSGI layer in front of
Flask: a poll costs no session, limiter, login, request log line or template work (0.63 →
~0.1 ms in-process, the bare Flask view's cost), so frequent polling takes nothing from
patients' requests. ``/readyz`` checks what serving needs: the database and
Redis answer and the database is at the migrations' head (the head is read from the
scripts once per process: they do not change under a running process).
``/readyz/reports`` tells monitors whether the reporting replica answers and how far
behind it is (portal.replica)."""

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from flask_migrate import Migrate

from portal import replica
from portal.extensions import db

bp = Blueprint("ops", __name__)

_LIVE = b'{"status":"ok"}\n'
_LIVE_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(_LIVE))),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]


class Liveness:
    """``GET``/``HEAD /healthz`` answered before the application; every other request
    passes through untouched."""

    path = "/healthz"

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == self.path and environ.get("REQUEST_METHOD") in (
            "GET",
            "HEAD",
        ):
            start_response("200 OK", list(_LIVE_HEADERS))
            return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [_LIVE]
        return self.app(environ, start_response)


@bp.get("/readyz")
def readyz():
    checks = {"database": _database(), "migrations": _migrations(), "redis": _redis()}
    healthy = all(c["ok"] for c in checks.values())
    return jsonify(status="ok" if healthy else "failing", checks=checks), 200 if healthy else 503


@bp.get("/readyz/reports")
def readyz_reports():
    """The reporting replica, for monitors: whether it answers and how many seconds behind
    it is. Its own path, not one of ``/readyz``'s checks: only the reports read the
    replica, so a web host is ready to take bookings without it, and a replica that hangs
    must not hold a readiness probe."""
    state = replica.status()
    if state is None:
        return jsonify(status="ok", replica=False)
    return jsonify(status="ok" if state["ok"] else "failing", replica=True, **state), (
        200 if state["ok"] else 503
    )


def _database():
    try:
        db.session.execute(sa.text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _heads(app):
    """The migration scripts' heads, read once per app (process)."""
    heads = app.extensions.get("portal.migration_heads")
    if heads is None:
        migrate: Migrate = app.extensions["migrate"]
        script = ScriptDirectory.from_config(migrate.migrate.get_config())
        heads = app.extensions["portal.migration_heads"] = frozenset(script.get_heads())
    return heads


def _migrations():
    try:
        heads = _heads(current_app)
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        return {"ok": current == heads, "current": sorted(current), "head": sorted(heads)}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _redis():
    url = current_app.config.get("REDIS_URL")
    if not url:
        return {"ok": True, "mode": "embedded (no Redis)"}
    try:
        from redis import Redis

        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
