"""visits: an index on dependent_id (the appointments search finds a child's visits)

Revision ID: ops0a1b2c3d4
Revises: reports0001
Create Date: 2026-12-02 21:30:00

"""

from alembic import op

# revision identifiers, used by Alembic. (The coordinator re-chains revisions at merge
# time; on this branch it follows the newest on main, reports0001.)
revision = "ops0a1b2c3d4"
down_revision = "ledgerx00001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_visits_dependent_id", "visits", ["dependent_id"], unique=False)


def downgrade():
    op.drop_index("ix_visits_dependent_id", table_name="visits")
