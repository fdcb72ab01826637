"""policy_versions: a scheduled change can be withdrawn (status WITHDRAWN)

Revision ID: po11c1e50002
Revises: wh0e1d0c0001
Create Date: 2026-12-05 10:00:00

An approved version not yet in force can be taken back (a year typed wrong, a decision
reversed): it becomes WITHDRAWN and never applies (docs/policy.md). Before, an approved
version could never be withdrawn and every later change had to come after it.
"""

from alembic import op

revision = "po11c1e50002"
down_revision = "wh0e1d0c0001"
branch_labels = None
depends_on = None

STATUS_OLD = "status IN ('PENDING', 'APPROVED', 'REJECTED')"
STATUS_NEW = "status IN ('PENDING', 'APPROVED', 'REJECTED', 'WITHDRAWN')"


def upgrade():
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_constraint(op.f("ck_policy_versions_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_policy_versions_status_known"), STATUS_NEW)


def downgrade():
    # A withdrawn version never applied: as a rejected one, it stays out of the policy.
    op.execute("UPDATE policy_versions SET status = 'REJECTED' WHERE status = 'WITHDRAWN'")
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_constraint(op.f("ck_policy_versions_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_policy_versions_status_known"), STATUS_OLD)
