"""admin access requests: an administrator's invitation or reactivation waits for a second

Revision ID: admacc000001
Revises: svcoffer0001
Create Date: 2026-12-10 09:00:00

Review: maker-checker had a gap. One administrator could invite a second account they
control (or reactivate a dormant one) and approve their own money changes from it. While
another administrator is active, inviting an administrator and reactivating one's account
now wait in ``admin_access_requests`` for a second administrator (``accounts.admin_access``);
an invitation's account is made only once approved. One request waits per address and per
account (partial unique indexes). Nothing to backfill: accounts made before stay as they are.
"""

import sqlalchemy as sa
from alembic import op

import portal.db  # custom column types (UTCDateTime)

revision = "admacc000001"
down_revision = "svcoffer0001"
branch_labels = None
depends_on = None

PENDING = "status = 'PENDING'"


def upgrade():
    op.create_table(
        "admin_access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'APPROVED', 'REJECTED')",
            name=op.f("ck_admin_access_requests_status_known"),
        ),
        sa.CheckConstraint(
            "kind IN ('invite', 'reactivate')", name=op.f("ck_admin_access_requests_kind_known")
        ),
        sa.CheckConstraint(
            "kind <> 'invite' OR (email IS NOT NULL AND name IS NOT NULL)",
            name=op.f("ck_admin_access_requests_invite_whom"),
        ),
        sa.CheckConstraint(
            "kind <> 'reactivate' OR user_id IS NOT NULL",
            name=op.f("ck_admin_access_requests_reactivate_whom"),
        ),
        sa.CheckConstraint(
            "status <> 'APPROVED' OR decided_by_id <> requested_by_id",
            name=op.f("ck_admin_access_requests_second_admin"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_admin_access_requests_decided_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_admin_access_requests_requested_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_admin_access_requests_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_access_requests")),
    )
    op.create_index(
        op.f("ix_admin_access_requests_status"), "admin_access_requests", ["status"], unique=False
    )
    op.create_index(
        "uq_admin_access_requests_pending_email",
        "admin_access_requests",
        ["email"],
        unique=True,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.create_index(
        "uq_admin_access_requests_pending_user",
        "admin_access_requests",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade():
    op.drop_index("uq_admin_access_requests_pending_user", table_name="admin_access_requests")
    op.drop_index("uq_admin_access_requests_pending_email", table_name="admin_access_requests")
    op.drop_index(op.f("ix_admin_access_requests_status"), table_name="admin_access_requests")
    op.drop_table("admin_access_requests")
