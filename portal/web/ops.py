"""Operability: the health check load balancers and monitors call."""

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from flask_migrate import Migrate

from portal.extensions import db

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    checks = {"database": _database(), "migrations": _migrations(), "redis": _redis()}
    healthy = all(c["ok"] for c in checks.values())
    return jsonify(status="ok" if healthy else "failing", checks=checks), 200 if healthy else 503


def _database():
    try:
        db.session.execute(sa.text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _migrations():
    try:
        migrate: Migrate = current_app.extensions["migrate"]
        script = ScriptDirectory.from_config(migrate.migrate.get_config())
        heads = set(script.get_heads())
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

        Redis.from_url(url, socket_timeout=2).ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
