"""On PostgreSQL an export reads its rows from a server-side cursor, a batch at a time:
the memory it holds does not grow with the number of rows (no list is built)."""

import time
import tracemalloc

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.exports import ExportSpec, build, number, text
from portal.exports.spec import YIELD_PER
from portal.extensions import db
from tests.plugin import past_the_triggers
from tests.threads import run_together


def _seed_audit(n):
    past_the_triggers(db.session.connection())  # the log is append-only
    db.session.execute(sa.text("DELETE FROM audit_log"))
    db.session.execute(
        sa.text(
            "INSERT INTO audit_log (at, action, object_type, object_id, after) "
            "SELECT now() - (g || ' seconds')::interval, 'bench.row', 'thing', g::text, "
            "CAST('{\"n\": 1}' AS json) FROM generate_series(1, :n) AS g"
        ),
        {"n": n},
    )
    db.session.commit()


def _peak_bytes_exporting():
    spec = build("audit", {"action": "bench."})
    tracemalloc.start()
    rows = 0
    for chunk in spec.iter_csv():
        rows += chunk.count("\r\n")
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return rows, peak


def test_export_memory_does_not_grow_with_rows(pg_app):
    with pg_app.app_context():
        try:
            _seed_audit(2_000)
            small_rows, small_peak = _peak_bytes_exporting()
            db.session.rollback()
            _seed_audit(20_000)
            large_rows, large_peak = _peak_bytes_exporting()
            db.session.rollback()
            assert (small_rows, large_rows) == (2_000 + 6, 20_000 + 6)
            # Ten times the rows, about the same memory: a batch and a chunk at a time.
            assert large_peak < 2 * small_peak, (small_peak, large_peak)
            assert large_peak < 8 * 2**20
        finally:
            db.session.rollback()
            past_the_triggers(db.session.connection())
            db.session.execute(sa.text("DELETE FROM audit_log"))
            db.session.commit()
            db.session.remove()


def _columns_spec():
    """Plain columns: read straight from the connection, not through the ORM."""
    return ExportSpec(
        name="t",
        title="t",
        columns=[number("Id", lambda r: r.id), text("Action", lambda r: r.action)],
        query=sa.select(AuditEntry.id, AuditEntry.action).order_by(AuditEntry.id),
    )


@pytest.mark.parametrize(
    "make", [lambda: build("audit", {"action": "bench."}), _columns_spec], ids=["orm", "columns"]
)
def test_the_cursor_is_a_named_server_side_cursor(pg_app, make):
    with pg_app.app_context():
        try:
            _seed_audit(YIELD_PER + 10)  # more than one batch: the cursor stays open
            spec = make()
            assert spec.count() == YIELD_PER + 10
            rows = spec.iter_rows()
            next(rows)
            cursors = db.session.execute(sa.text("SELECT count(*) FROM pg_cursors")).scalar()
            assert cursors >= 1  # the export's DECLARE … CURSOR, open while it streams
            rows.close()
        finally:
            db.session.rollback()
            past_the_triggers(db.session.connection())
            db.session.execute(sa.text("DELETE FROM audit_log"))
            db.session.commit()
            db.session.remove()


@pytest.mark.postgres
def test_the_same_export_asked_for_three_times_at_once_is_made_once(pg_app, monkeypatch):
    """A double click on "Export CSV" (or two tabs): asking again for a file still queued
    gets that export, at the same moment too. Review finding: three requests at once each
    looked, found none, and made 3 exports, 3 jobs and 3 ``export.requested`` rows. Each
    request here counts its rows (after its look) only once the others are either counting
    too (the old race) or waiting for the lock on that request (the fix)."""
    from portal.accounts.models import User
    from portal.exports import service as exports
    from portal.exports.models import Export
    from portal.exports.spec import ExportSpec
    from tests.plugin import user_maker
    from tests.threads import lock_waiters

    monkeypatch.setattr(exports, "enqueue", lambda *a, **k: None)  # the worker is busy
    admin_id = user_maker(pg_app)("admin").id
    counting, real_count = [], ExportSpec.count

    def count_when_the_others_came(spec):
        counting.append(1)
        deadline = time.monotonic() + 20  # a safety net: the test fails, never hangs
        while len(counting) < 3 and lock_waiters(db.engine) < 2:
            assert time.monotonic() < deadline, "the other requests never came"
            time.sleep(0.01)
        return real_count(spec)

    monkeypatch.setattr(ExportSpec, "count", count_when_the_others_came)

    def ask():
        return exports.start(db.session.get(User, admin_id), "audit", {"action": "visit."}).id

    results = run_together(pg_app, ask, ask, ask)
    with pg_app.app_context():
        made = db.session.scalar(sa.select(sa.func.count()).select_from(Export))
        requested = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "export.requested")
        )
        db.session.remove()
    assert all(isinstance(r, int) for r in results), results
    assert (len(set(results)), made, requested) == (1, 1, 1), results
