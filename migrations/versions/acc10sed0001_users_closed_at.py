"""users.closed_at: a patient closed their own account (docs/privacy.md)

Revision ID: acc10sed0001
Revises: clinic0open1
Create Date: 2026-12-05 19:00:00

Set when a patient closes their account: the row stays (bookings, payments, refunds, the
ledger and the audit refer to it) with its personal data erased, and it is never
reactivated. Existing rows are open (NULL).
"""

import sqlalchemy as sa
from alembic import op

import portal.db

revision = "acc10sed0001"
down_revision = "clinic0open1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("closed_at", portal.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("closed_at")
