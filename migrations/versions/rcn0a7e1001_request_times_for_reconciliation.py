"""refunds and payout attempts: reconciliation dates them by their requests

Revision ID: rcn0a7e1001
Revises: rfc0a7e0002
Create Date: 2026-12-05 16:30:00

Reconciliation dated a gateway refund and a payout attempt by their row's creation, while
the gateway dates them by the request that made them: a refund or payout made on a
resend minutes later (5xx answers, a held payout released, a job that waited) was a
"time_differs" discrepancy. They are now dated by their requests.

``refunds.first_request_at`` / ``last_request_at`` (new; NULL until the first create
request) are kept as ``payout_attempts``' are. Backfill: gateway refunds already sent
take their row's creation for both (the time that was compared before; the request
times were never kept). Both ``last_request_at`` columns are indexed: a run reads a
window by them (a row never timed, by its creation).
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)

revision = "rcn0a7e1001"
down_revision = "rfc0a7e0002"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (nullable), no batch: SQLite need not rebuild the table.
    op.add_column(
        "refunds",
        sa.Column("first_request_at", portal.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "refunds",
        sa.Column("last_request_at", portal.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE refunds SET first_request_at = created_at, last_request_at = created_at"
        " WHERE destination = 'GATEWAY' AND (attempts > 0 OR razorpay_refund_id IS NOT NULL)"
    )
    op.create_index("ix_refunds_last_request_at", "refunds", ["last_request_at"])
    op.create_index(
        "ix_payout_attempts_last_request_at", "payout_attempts", ["last_request_at"]
    )


def downgrade():
    op.drop_index("ix_payout_attempts_last_request_at", table_name="payout_attempts")
    op.drop_index("ix_refunds_last_request_at", table_name="refunds")
    op.drop_column("refunds", "last_request_at")
    op.drop_column("refunds", "first_request_at")
