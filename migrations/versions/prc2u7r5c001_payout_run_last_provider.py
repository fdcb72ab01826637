"""payout runs: the last provider whose turn a run committed (a resumed run starts after it)

Revision ID: prc2u7r5c001
Revises: mmv0e1s10001
Create Date: 2026-12-05 12:00:00

``payout_runs.last_provider_id``: providers go through a run in id order, and each turn
commits this with the run's counts (``portal.payouts.runs``). A run resumed after its
runner died went through every provider not yet *paid* in it, so those already carried
forward were counted again (and listed again among the skipped). Empty on existing runs:
an OPEN one is resumed as before.
"""

from alembic import op
import sqlalchemy as sa


revision = "prc2u7r5c001"
down_revision = "mmv0e1s10001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_provider_id", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.drop_column("last_provider_id")
