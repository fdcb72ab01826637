"""On PostgreSQL, a reference with no dates reads every date (``filters.window_for``) and
the console's two reads of it — the page and the summary — stay index reads of the
reference's few rows, however many rows the table has and whatever other filter is set.

The one-year limit exists so that a sum never reads more than a year of a million-row
table (docs/transactions.md, "Measured"); a reference bounds the rows itself, so dropping
the window for it must not turn either read into a walk of the time (or type-time) index
filtering every row, nor a sequential scan."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.transactions import queries
from portal.transactions.filters import MovementFilter, window_for
from portal.transactions.models import MoneyMovement

pytestmark = pytest.mark.postgres

TODAY = date(2026, 12, 6)
WANTED = "pay_0kPlanWanted01"
ROWS = 100_000  # 555 days of rows (8 minutes apart), each its own reference but three


def _seed():
    db.session.execute(
        sa.text(
            """
            INSERT INTO money_movements (source, source_id, type, status, failed, bucket,
                occurred_at, amount, net, reference, updated_at, version)
            SELECT 'payment', 9000000 + i, 'payment_online', 'SUCCESSFUL', false, 'in',
                   :now - make_interval(mins => i * 8), 50000, 49000,
                   CASE WHEN i IN (10, 70000, 95000) THEN :wanted
                        ELSE 'pay_seed' || lpad(i::text, 10, '0') END,
                   :now, 1
            FROM generate_series(1, :rows) AS i
            """
        ),
        {"now": datetime(2026, 12, 6, 6, 0, tzinfo=UTC), "wanted": WANTED, "rows": ROWS},
    )
    db.session.execute(sa.text("ANALYZE money_movements"))
    db.session.commit()  # the statistics are written in the transaction: kept by its commit


def _plans(read):
    """EXPLAIN of every statement ``read`` runs on money_movements, with its parameters."""
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if "money_movements" in statement and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        result = read()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)
    cursor = db.session.connection().connection.cursor()
    plans = []
    for statement, parameters in seen:
        cursor.execute("EXPLAIN " + statement, parameters)
        plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return result, plans


def test_a_reference_read_over_every_date_stays_an_index_read(pg_app):
    plans = {}
    with pg_app.app_context():
        _seed()
        try:
            start, end = window_for(None, None, "7d", TODAY, reference=True)
            for other in ({}, {"type": "payment_online"}, {"status": "SUCCESSFUL"}):
                f = MovementFilter(start=start, end=end, reference=WANTED, **other)
                page, plans["page", *other] = _plans(lambda f=f: queries.movements_page(f))
                summary, plans["summary", *other] = _plans(lambda f=f: queries.summary(f))
                assert len(page.items) == 3 and summary.count == 3  # two over a year old
        finally:
            db.session.rollback()
            db.session.execute(sa.delete(MoneyMovement).where(MoneyMovement.source_id >= 9000000))
            db.session.commit()
    print("\n\n".join(f"{read}:\n{plan[0]}" for read, plan in plans.items()))
    for read, plan in plans.items():
        assert len(plan) == 1, read  # one statement each
        plan = plan[0]
        assert "ix_money_movements_reference" in plan, (read, plan)
        assert "Seq Scan on money_movements" not in plan, (read, plan)
        assert "_time" not in plan, (read, plan)  # no walk of a time-ordered index
