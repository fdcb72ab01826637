"""The reporting replica (portal.replica, docs/deploy.md): with ``REPORTS_DATABASE_URL`` set,
the report pages, their CSVs and background exports read the replica, and nothing can be
written through it; without it, they read the primary.

The "replica" here is a second database of the same kind (a file on SQLite, a database
on PostgreSQL) holding rows the primary does not, so a test sees which one answered. A
real standby is the same to the portal but for its lag: test_replica_standby.py."""

import os
import time
from contextlib import nullcontext

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from portal import create_app, replica
from portal.audit.models import AuditEntry
from portal.audit.service import record
from portal.db import unit_of_work
from portal.domain.states import ExportStatus
from portal.exports.models import Export
from portal.extensions import db
from tests.plugin import (
    _dispose,
    _test_config,
    create_schema,
    csv_rows,
    empty_tables,
    ensure_postgres_database,
    sign_in,
)


def _replica_url(primary_url, tmp_path_factory):
    url = make_url(primary_url)
    if url.drivername.startswith("sqlite"):
        return "sqlite:///" + str(tmp_path_factory.mktemp("replica") / "replica.sqlite3")
    replica_url = url.set(database=f"{url.database}_replica").render_as_string(hide_password=False)
    ensure_postgres_database(replica_url.replace("+psycopg", ""))
    return replica_url


@pytest.fixture(scope="module")
def replica_only(app, tmp_path_factory):
    """An app on the replica's database alone: to create its tables and put rows in it."""
    url = _replica_url(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path_factory)
    only = create_app(_test_config(url))
    create_schema(only)
    yield only
    _dispose(only)


@pytest.fixture(scope="module")
def reporting(app, replica_only):
    """The portal on the primary (``app``'s database) with reports on the replica."""
    config = _test_config(
        app.config["SQLALCHEMY_DATABASE_URI"],
        REPORTS_DATABASE_URL=replica_only.config["SQLALCHEMY_DATABASE_URI"],
    )
    portal = create_app(config)
    yield portal
    with portal.app_context():
        replica.engine().dispose()
    _dispose(portal)


@pytest.fixture(autouse=True)
def _empty_replica(request):
    yield
    if "replica_only" in request.fixturenames:
        empty_tables(request.getfixturevalue("replica_only"))


def _audit(app, action, n=1):
    with app.app_context():
        with unit_of_work():
            for i in range(n):
                record(None, action, "thing", i, after={"i": i})
        db.session.remove()


def _monitor_says(client, status_code, **expected):
    """``GET /readyz/reports`` answers ``status_code`` with exactly ``expected``."""
    monitor = client.get("/readyz/reports")
    assert (monitor.status_code, monitor.get_json()) == (status_code, expected)


def test_report_pages_and_their_csv_read_the_replica(app, replica_only, reporting, make_user):
    admin = make_user("admin")
    _audit(app, "primary.only")
    _audit(replica_only, "replica.only")
    client = sign_in(reporting, admin)

    page = client.get("/admin/reports/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "replica.only" in html and "primary.only" not in html
    assert "Figures from the reporting replica" in html
    # Not a standby (a plain database): no lag to show.
    assert "behind the live system" not in html
    _monitor_says(client, 200, status="ok", replica=True, ok=True, behind_seconds=None)

    download = client.get("/admin/reports/audit?format=csv")
    assert download.status_code == 200
    actions = [row[4] for row in csv_rows(download.get_data(as_text=True))[6:]]
    assert actions == ["replica.only"]

    # The other report pages read it too (nothing invoiced there: their empty states).
    gst = client.get("/admin/reports/gst?month=2026-11")
    assert gst.status_code == 200 and "Figures from the reporting replica" in gst.text
    tds = client.get("/admin/reports/tds?fy=2026-27")
    assert tds.status_code == 200 and "Figures from the reporting replica" in tds.text


def test_the_same_pages_read_the_primary_without_a_replica(app, client, make_user, login):
    admin = make_user("admin")
    _audit(app, "primary.only")
    login(admin)
    html = client.get("/admin/reports/audit").get_data(as_text=True)
    assert "primary.only" in html
    assert "reporting replica" not in html
    assert client.get("/readyz/reports").get_json() == {"status": "ok", "replica": False}


def test_a_background_export_reads_the_replica_and_is_recorded_on_the_primary(
    app, replica_only, reporting, make_user, tmp_path, monkeypatch
):
    monkeypatch.setitem(reporting.config, "EXPORT_BACKGROUND_ROWS", 2)
    monkeypatch.setitem(reporting.config, "EXPORT_DIR", str(tmp_path))
    admin = make_user("admin")
    _audit(replica_only, "replica.row", n=3)
    _audit(app, "replica.row.but.primary", n=1)  # the count and the file say 3, not 4
    client = sign_in(reporting, admin)

    r = client.get("/admin/reports/audit?action=replica.&format=csv")
    assert r.status_code == 303  # 3 rows > 2: a background export (run at the commit here)
    with app.app_context():
        export = db.session.scalars(sa.select(Export)).one()
        assert export.status == ExportStatus.DONE
        assert (export.rows_total, export.rows_written) == (3, 3)
        export_id = export.id
    with replica_only.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Export)) == 0
    download = client.get(f"/admin/exports/{export_id}/download")
    rows = csv_rows(download.get_data(as_text=True))
    download.close()
    assert [row[4] for row in rows[6:]] == ["replica.row"] * 3


def test_nothing_can_be_written_through_the_replica(app, replica_only, reporting, make_user):
    make_user("admin")
    with reporting.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
        with pytest.raises(sa.exc.DBAPIError) as refused:
            with replica.reads():
                db.session.add(AuditEntry(action="written.inside", object_type="thing"))
                db.session.flush()
        assert "read-only" in str(refused.value) or "readonly" in str(refused.value)
        db.session.remove()
    with replica_only.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == before


def test_the_block_has_a_session_of_its_own_and_gives_the_requests_back(
    app, replica_only, reporting, make_user
):
    make_user("admin")
    with reporting.app_context():
        own = db.session()
        # Changed before the block: still the request's, written with its commit.
        db.session.add(AuditEntry(action="pending.before", object_type="thing"))
        with replica.reads():
            assert db.session() is not own
            on_replica = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
            with replica.reads():  # nested: the same block
                inner = db.session()
            assert inner is db.session()
        assert db.session() is own
        # An error in the block gives the request's session back too.
        with pytest.raises(LookupError), replica.reads():
            raise LookupError("a report's own error")
        assert db.session() is own
        db.session.commit()
        db.session.remove()
    assert on_replica == 0
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action)).all()
        assert actions == ["pending.before"]


def test_a_replica_lost_mid_export_is_recorded_failed_on_the_primary(
    app, replica_only, reporting, make_user, tmp_path, monkeypatch
):
    """The job's own transaction (the outbox row, the export's FAILED) is the primary's: a
    replica connection that dies mid-file leaves it whole."""
    from portal.exports.spec import ExportSpec

    monkeypatch.setitem(reporting.config, "EXPORT_BACKGROUND_ROWS", 1)
    monkeypatch.setitem(reporting.config, "EXPORT_DIR", str(tmp_path))
    real = ExportSpec.iter_batches

    def dies_after_one_batch(spec):
        batches = real(spec)
        yield next(batches)
        connection = db.session.connection()  # the replica's, inside the block
        connection.invalidate()  # as a dropped connection is
        raise sa.exc.OperationalError("FETCH", {}, Exception("server closed the connection"))

    admin = make_user("admin")
    _audit(replica_only, "replica.row", n=3)
    client = sign_in(reporting, admin)
    monkeypatch.setattr(ExportSpec, "iter_batches", dies_after_one_batch)
    r = client.get("/admin/reports/audit?action=replica.&format=csv")
    assert r.status_code == 303
    with app.app_context():
        export = db.session.scalars(sa.select(Export)).one()
        assert export.status == ExportStatus.FAILED
        assert "server closed the connection" in export.error
        # Not retried: the job itself succeeded in recording the failure.
        from portal.outbox import OutboxItem

        item = db.session.scalars(sa.select(OutboxItem)).one()
        assert item.done_at is not None and item.attempts <= 1
    assert not os.listdir(tmp_path) or all(not n.endswith(".csv") for n in os.listdir(tmp_path))


def test_an_unreachable_replica_is_a_503_that_says_so(app, make_user, monkeypatch):
    # A closed port: the connection is refused at once, whatever the primary is.
    down = create_app(
        _test_config(
            app.config["SQLALCHEMY_DATABASE_URI"],
            REPORTS_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",
        )
    )
    try:
        admin = make_user("admin")
        client = sign_in(down, admin)
        r = client.get("/admin/reports/audit")
        assert r.status_code == 503
        assert "reporting database does not answer" in r.text
        assert client.get("/admin/reports/audit?format=csv").status_code == 503
        # The rest of the portal does not read it, and readiness does not look at it.
        assert client.get("/admin/").status_code == 200
        ready = client.get("/readyz").get_json()
        assert set(ready["checks"]) == {"database", "migrations", "redis"}
        assert ready["checks"]["database"] == {"ok": True}
        _monitor_says(client, 503, status="failing", replica=True, ok=False, error="Unavailable")
        # Open to anyone: a stream of asks costs one probe every STATUS_SECONDS, not one each.
        probes = []
        monkeypatch.setattr(replica, "reads", lambda: probes.append(1) or nullcontext())
        _monitor_says(client, 503, status="failing", replica=True, ok=False, error="Unavailable")
        assert probes == []
        later = time.monotonic() + replica.STATUS_SECONDS
        monkeypatch.setattr(replica.time, "monotonic", lambda: later)
        # Probed again (the block let through here, the replica still refuses the query).
        _monitor_says(
            client, 503, status="failing", replica=True, ok=False, error="OperationalError"
        )
        assert probes
    finally:
        _dispose(down)


def test_the_page_says_how_far_behind_a_lagging_replica_is(app):
    with app.test_request_context("/"):
        template = app.jinja_env.from_string(
            '{% from "admin/reports/_filters.html" import replica_note %}{{ replica_note(s) }}'
        )
        assert "about 12 s behind the live system" in template.render(s=replica.Source(12))
        caught_up = template.render(s=replica.Source(0))
        assert "reporting replica" in caught_up and "behind" not in caught_up
        assert template.render(s=None).strip() == ""


def test_the_replicas_connections_are_read_only_with_the_primarys_pool_settings():
    pg = replica.engine_options(
        "postgresql+psycopg://r@replica/portal",
        {"pool_recycle": 1800, "connect_args": {"prepare_threshold": None}},
    )
    assert pg == {
        "pool_recycle": 1800,
        "pool_pre_ping": True,  # a stale pooled connection is replaced, not a 500
        "pool_timeout": replica.POOL_TIMEOUT,
        "connect_args": {
            "prepare_threshold": None,
            "options": "-c default_transaction_read_only=on",
            "connect_timeout": replica.CONNECT_TIMEOUT,
            "tcp_user_timeout": replica.TCP_USER_TIMEOUT_MS,
        },
    }
    # What the URL names is the operator's.
    named = replica.engine_options(
        "postgresql+psycopg://r@replica/portal?connect_timeout=9&tcp_user_timeout=0", {}
    )
    assert "connect_timeout" not in named["connect_args"]
    assert "tcp_user_timeout" not in named["connect_args"]
    # A SQLite replica's connections are made read-only as they open (PRAGMA query_only).
    assert replica.engine_options("sqlite:///r.sqlite3", {"pool_pre_ping": True}) == {}


def test_the_gst_page_lists_and_accepts_what_the_replica_holds(
    app, replica_only, reporting, make_user
):
    from portal.catalog.models import Clinic

    admin = make_user("admin")
    with replica_only.app_context():
        with unit_of_work():
            db.session.add(Clinic(name="Replica Only Clinic", city="Pune"))
        clinic_id = db.session.scalar(sa.select(Clinic.id))
        db.session.remove()
    client = sign_in(reporting, admin)
    page = client.get("/admin/reports/gst?month=2026-11")
    assert page.status_code == 200 and "Replica Only Clinic" in page.text
    chosen = client.get(f"/admin/reports/gst?month=2026-11&clinic_id={clinic_id}")
    assert chosen.status_code == 200  # the filter reads where the list came from
    with app.app_context():
        assert db.session.get(Clinic, clinic_id) is None  # the primary has no such clinic


def test_a_use_case_cannot_start_inside_the_block(app, replica_only, reporting, make_user):
    make_user("admin")
    with reporting.app_context():
        with pytest.raises(RuntimeError, match="inside replica.reads"), replica.reads():
            with unit_of_work():
                record(None, "written.inside", "thing", 1)
        db.session.remove()
    for each in (app, replica_only):
        with each.app_context():
            assert not db.session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "written.inside")
            )


def test_a_replica_lost_while_a_page_reads_is_a_503(reporting, make_user, monkeypatch):
    from portal.reports import audit_log

    def lost(*args, **kwargs):
        raise sa.exc.OperationalError(
            "SELECT", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    admin = make_user("admin")
    client = sign_in(reporting, admin)
    monkeypatch.setattr(audit_log, "page", lost)
    r = client.get("/admin/reports/audit")
    assert r.status_code == 503 and "reporting database does not answer" in r.text
    # A statement that is wrong is not the replica's absence: it stays an error.
    monkeypatch.setattr(audit_log, "page", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        client.get("/admin/reports/audit")


def test_the_setting_makes_the_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTS_DATABASE_URL", "postgres://r@replica:5432/portal")
    portal = create_app(_test_config("sqlite:///" + os.path.join(tmp_path, "p.sqlite3")))
    with portal.app_context():
        assert replica.configured()
        assert replica.engine().url.render_as_string() == (
            "postgresql+psycopg://r@replica:5432/portal"
        )
        replica.engine().dispose()
    monkeypatch.delenv("REPORTS_DATABASE_URL")
    plain = create_app(_test_config("sqlite:///" + os.path.join(tmp_path, "q.sqlite3")))
    with plain.app_context():
        assert not replica.configured() and replica.engine() is None
        assert replica.source() is None and replica.behind() is None
