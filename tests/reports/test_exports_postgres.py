"""On PostgreSQL an export reads its rows from a server-side cursor, a batch at a time:
the memory it holds does not grow with the number of rows (no list is built)."""

import tracemalloc

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.exports import ExportSpec, build, number, text
from portal.exports.spec import YIELD_PER
from portal.extensions import db


def _seed_audit(n):
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
            db.session.execute(sa.text("DELETE FROM audit_log"))
            db.session.commit()
            db.session.remove()
