"""Liveness (/healthz: nothing but the process) and readiness (/readyz: database, Redis,
migrations at head)."""

from portal.web import ops
from tests.querycount import counted_queries


def test_healthz_answers_without_touching_the_database(client):
    with counted_queries() as statements:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []


def test_healthz_is_answered_before_the_application(app, client, monkeypatch):
    """No request hook runs for a liveness poll (no session, limiter or log line), HEAD
    works for load balancers that use it, and other methods reach the app, which has no such page."""
    calls = []
    monkeypatch.setattr(app, "before_request_funcs", {None: [lambda: calls.append(1)]})
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert calls == []
    head = client.head("/healthz")
    assert head.status_code == 200 and head.data == b""
    assert client.post("/healthz").status_code == 404  # only GET and HEAD are liveness
    assert calls  # the POST went through the application


def test_healthz_stays_up_when_the_database_is_down(app, client, monkeypatch):
    monkeypatch.setattr(ops, "_database", lambda: {"ok": False, "error": "OperationalError"})
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503


def test_readyz_fails_when_the_database_is_behind_the_migrations(client):
    # The tests build the schema with create_all: no alembic_version row, so not at head.
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failing"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["ok"] is False
    assert body["checks"]["migrations"]["head"]  # the scripts' head is named


def test_readyz_is_ok_at_head_and_reads_the_scripts_once(app, client, monkeypatch):
    app.extensions.pop("portal.migration_heads", None)
    reads = []
    real = ops.ScriptDirectory.from_config

    def counting(config):
        reads.append(1)
        return real(config)

    monkeypatch.setattr(ops.ScriptDirectory, "from_config", counting)
    client.get("/readyz")
    # Pretend the database is at the head the scripts name (no alembic_version here).
    monkeypatch.setitem(app.extensions, "portal.migration_heads", frozenset())
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ok"
    assert len(reads) == 1
