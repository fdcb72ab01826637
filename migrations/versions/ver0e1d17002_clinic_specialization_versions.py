"""clinics and specializations: the version an admin's edit form was filled from

Revision ID: ver0e1d17002
Revises: tdsrule00001
Create Date: 2026-12-06 20:00:00

As ``ver0e1d17001`` for coupons, services and providers: a clinic's edit form sends every
field (name, city, address, time zone, GSTIN, open for bookings, the opening hours), so
saved after another administrator changed the clinic it put the old values back (a
clinic they closed open for booking again); a specialization's form its name. Each row
now has a ``version``, raised by every admin change of it; the form carries the version
it was filled from and a save over a newer one is refused. Existing rows start at 1. No
data moves.
"""

import sqlalchemy as sa
from alembic import op

revision = "ver0e1d17002"
down_revision = "tdsrule00001"
branch_labels = None
depends_on = None

TABLES = ("clinics", "specializations")


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
