"""catalog_version: the stamp per-process catalog caches check (issue #17)

Revision ID: perf0c47a109
Revises: ledgerx00001
Create Date: 2026-12-02 21:35:00

One row whose ``stamp`` gets a new random value in every transaction that changes the
catalog (``portal.catalog.cache``).
"""

import random

from alembic import op
import sqlalchemy as sa

revision = "perf0c47a109"
down_revision = "rec0a1b2c3d4"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_version")),
    )
    # Random, like every later stamp: no two databases share one by accident.
    op.bulk_insert(table, [{"id": 1, "stamp": random.randint(1, 2**62)}])


def downgrade():
    op.drop_table("catalog_version")
