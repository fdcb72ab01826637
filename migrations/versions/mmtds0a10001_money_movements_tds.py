"""money movements: a payout's TDS withheld on its row, and in the summed indexes

Revision ID: mmtds0a10001
Revises: depident0001
Create Date: 2026-12-06 14:00:00

A payout's console row had its gross (``amount``) and its net after TDS, but not the TDS
withheld: finance reconciling a payout against the TDS report had to look elsewhere
(review finding). ``money_movements.tds`` (a payout's ``payouts.tds``; NULL on every
other row) is written by the payout's projector; existing payout rows are filled here
from their payouts, so no rebuild is needed. The console's summary sums it, so the two
covering indexes (``ix_money_movements_time``, ``ix_money_movements_type_time``) carry it
as they carry the other summed columns: the summary stays an index-only scan on
PostgreSQL. Downgrade puts the indexes back as they were and drops the column.

Locks (PostgreSQL; re-read finding: this said it held writes for the index builds). The
whole upgrade is one transaction (migrations/env.py), and ADD COLUMN and DROP INDEX take
an ACCESS EXCLUSIVE lock on money_movements, held until the commit: through the backfill
UPDATE and both index builds nothing reads or writes the table. The console, its CSV and
every payment, refund, payout or settlement write (its row is projected in the same
transaction) wait. Measured on 6 December 2026 (the shared 2-core machine, loaded; 1 row
in 10 a payout): 0.7 to 1.3 s for 100,000 rows, 12 to 13 s for 1,000,000, a plain read
of the table waiting as long. Run it in a quiet window (no payout run, no large export),
on its own (``flask db upgrade depident0001``, then ``mmtds0a10001``, then the rest: the
lock lasts until the last revision of an upgrade commits), with ``PGOPTIONS='-c lock_timeout=5s'``:
behind a long read it then gives up and rolls back, to be run again, instead of queueing
every request behind it (docs/deploy.md). On SQLite the upgrade holds the one write lock.
"""

import sqlalchemy as sa
from alembic import op

revision = "mmtds0a10001"
down_revision = "depident0001"
branch_labels = None
depends_on = None

SUMMED_BEFORE = ["bucket", "amount", "net", "gateway_fee"]
SUMMED = [*SUMMED_BEFORE, "tds"]
COVERING = {
    "ix_money_movements_time": ["occurred_at", "id"],
    "ix_money_movements_type_time": ["type", "occurred_at", "id"],
}


def _cover(include):
    # INCLUDE is PostgreSQL's; SQLite's indexes are the same either way.
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in COVERING.items():
        op.drop_index(name, table_name="money_movements")
        op.create_index(name, "money_movements", columns, postgresql_include=include)


def upgrade():
    with op.batch_alter_table("money_movements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tds", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE money_movements SET tds ="
        " (SELECT payouts.tds FROM payouts WHERE payouts.id = money_movements.source_id)"
        " WHERE source = 'payout'"
    )
    _cover(SUMMED)


def downgrade():
    _cover(SUMMED_BEFORE)
    with op.batch_alter_table("money_movements", schema=None) as batch_op:
        batch_op.drop_column("tds")
