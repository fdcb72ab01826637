"""payout attempts: when their first request went to RazorpayX

Revision ID: pay0a77e3f001
Revises: gst0a5155ued1
Create Date: 2026-12-06 10:00:00

``payout_attempts.first_request_at`` (NULL until the first request): an admin may mark an
attempt that was sent and never answered as failed (nothing listed at RazorpayX under its
reference) only a day after its first request (docs/payouts.md).

Backfill: only attempts still waiting for an answer (SENDING, sent at least once) need it;
when their first request went was never recorded, so they take their row's last write
(``updated_at``: their latest request), never earlier than the first, so the admin waits
at least as long. The others stay NULL (unknown, and never read).
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)

revision = "pay0a77e3f001"
down_revision = "gst0a5155ued1"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (nullable), no batch: SQLite need not rebuild the table.
    op.add_column(
        "payout_attempts",
        sa.Column("first_request_at", portal.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE payout_attempts SET first_request_at = updated_at"
        " WHERE status = 'SENDING' AND requests > 0"
    )


def downgrade():
    op.drop_column("payout_attempts", "first_request_at")
