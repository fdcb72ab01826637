"""settlements: when one left the lookback with its rows incomplete

Revision ID: setl0c0d1b0002
Revises: setl0c0d1b0001
Create Date: 2026-12-06 11:00:00

``settlements.left_incomplete_at``: when the daily settlement job flagged it (an audit row
``settlement.left_incomplete`` and a HIGH admin alert) as leaving the lookback with its
recon rows incomplete, once; the settlements page marks it incomplete. NULL for every
settlement so far: the first daily job after this migration flags, once each, those
already behind its window.

Plain ADD COLUMN, no batch: SQLite need not rebuild settlements, which its items reference.
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)

revision = "setl0c0d1b0002"
down_revision = "setl0c0d1b0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "settlements",
        sa.Column("left_incomplete_at", portal.db.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade():
    op.drop_column("settlements", "left_incomplete_at")
