"""payout attempts: when their latest request went to RazorpayX

Revision ID: pay0a77e3f002
Revises: pay0a77e3f001
Create Date: 2026-12-05 09:00:00

``payout_attempts.last_request_at`` (NULL until the first request): an admin may mark an
attempt sent and never answered as failed only half an hour after its latest request as
well, since every resend under its key may be the one RazorpayX is still creating
(docs/payouts.md). Backfill: attempts still waiting for an answer take their row's last
write (``updated_at``: their latest request).
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)

revision = "pay0a77e3f002"
down_revision = "pay0a77e3f001"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (nullable), no batch: SQLite need not rebuild the table.
    op.add_column(
        "payout_attempts",
        sa.Column("last_request_at", portal.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE payout_attempts SET last_request_at = updated_at"
        " WHERE status = 'SENDING' AND requests > 0"
    )


def downgrade():
    op.drop_column("payout_attempts", "last_request_at")
