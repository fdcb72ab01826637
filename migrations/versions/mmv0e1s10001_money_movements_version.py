"""money movements: a version per row (a rebuild never writes over a newer row)

Revision ID: mmv0e1s10001
Revises: prc1a1m0001
Create Date: 2026-12-05 11:45:00

``money_movements.version``, bumped by every write of the row. ``flask transactions
rebuild`` reads the versions of a batch's rows before its records and rewrites a row only
if it still has that version (``portal.transactions.projection.rebuild``): run while the
portal was live, it wrote a record's row from a copy read before the record changed, over
the newer row that change had written. Existing rows start at 1 (a constant default:
PostgreSQL adds the column without rewriting the table).
"""

from alembic import op
import sqlalchemy as sa


revision = "mmv0e1s10001"
down_revision = "prc1a1m0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("money_movements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default="1", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("money_movements", schema=None) as batch_op:
        batch_op.drop_column("version")
