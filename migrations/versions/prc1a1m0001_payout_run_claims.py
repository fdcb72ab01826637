"""payout runs: the runner's claim (one runner at a time)

Revision ID: prc1a1m0001
Revises: tm1e4a5e0001
Create Date: 2026-12-05 11:30:00

``payout_runs.claimed_by`` / ``claimed_until``: the runner working through a run and until
when (``portal.payouts.runs``). A second scheduler, or a ``flask jobs tick``, running the
same cycle at once found it half done, counted the provider just paid as carried forward
and failed moving the finished run to DONE. Both columns are empty on existing runs (no
runner holds them).
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)


revision = "prc1a1m0001"
down_revision = "tm1e4a5e0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_until", portal.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
