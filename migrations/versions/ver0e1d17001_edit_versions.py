"""coupons, services and providers: the version an admin's edit form was filled from

Revision ID: ver0e1d17001
Revises: rcn0a7e1001
Create Date: 2026-12-05 16:40:00

An admin's edit form (a coupon, a service, a provider) sends every field; saved after
another administrator changed the row it put the old values back (a deactivated coupon
active again, a raised fee lowered). Each row now has a ``version``, raised by every admin
change of it (and of the links a service or provider form shows); the form carries the
version it was filled from and a save over a newer one is refused. Existing rows start at
1. No data moves.
"""

from alembic import op
import sqlalchemy as sa


revision = "ver0e1d17001"
down_revision = "rcn0a7e1001"
branch_labels = None
depends_on = None

TABLES = ("coupons", "services", "providers")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("version", sa.Integer(), nullable=False, server_default="1")
            )


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
