"""policy as versioned data: policy_versions, policy_stamp, bookings.policy_version_id;
the dashboard's indexes

Revision ID: po11c1e50001
Revises: ledgerx00001
Create Date: 2026-12-02 21:30:00

Issue #14, item 7: POLICY.md's numbers live in versioned rows with an effective-from time;
each individual booking keeps the version it was priced under. Version 1 is written from
the code's defaults at the first edit (or ``flask demo load``), not here, so this
migration holds no copy of the numbers.
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)

revision = "po11c1e50001"
down_revision = "perf0c47a109"
branch_labels = None
depends_on = None

DASHBOARD_INDEXES = (
    ("ix_bookings_confirmed_at", "bookings", ["confirmed_at"]),
    ("ix_refunds_processed_at", "refunds", ["processed_at"]),
    ("ix_payouts_processed_at", "payouts", ["processed_at"]),
    ("ix_payment_attempts_status_at", "payment_attempts", ["status", "at"]),
    ("ix_recon_cases_first_seen_at", "recon_cases", ["first_seen_at"]),
)


def upgrade():
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("effective_from", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("needs_approval", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", portal.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'APPROVED', 'REJECTED')",
            name=op.f("ck_policy_versions_status_known"),
        ),
        sa.CheckConstraint(
            "status <> 'APPROVED' OR NOT needs_approval OR decided_by_id <> created_by_id",
            name=op.f("ck_policy_versions_second_admin"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_policy_versions_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_policy_versions_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
    )
    op.create_index(
        "ix_policy_versions_status_effective",
        "policy_versions",
        ["status", "effective_from"],
        unique=False,
    )
    op.create_table(
        "policy_stamp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("changed_at", portal.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_stamp")),
    )
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("policy_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_bookings_policy_version_id_policy_versions"),
            "policy_versions",
            ["policy_version_id"],
            ["id"],
        )
    # The dashboard's aggregate queries (portal/dashboard/queries.py).
    for name, table, columns in DASHBOARD_INDEXES:
        op.create_index(name, table, columns, unique=False)
    # reconciliation's plain index (rec0a1b2c3d4) becomes the covering one
    op.drop_index("ix_payments_paid_at", table_name="payments")
    op.create_index(
        "ix_payments_paid_at",
        "payments",
        ["paid_at"],
        unique=False,
        postgresql_include=["status", "kind", "amount", "captured_amount"],
    )


def downgrade():
    op.drop_index("ix_payments_paid_at", table_name="payments")
    op.create_index("ix_payments_paid_at", "payments", ["paid_at"])
    for name, table, _ in DASHBOARD_INDEXES:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("bookings") as batch:
        batch.drop_constraint(
            batch.f("fk_bookings_policy_version_id_policy_versions"), type_="foreignkey"
        )
        batch.drop_column("policy_version_id")
    op.drop_table("policy_stamp")
    op.drop_index("ix_policy_versions_status_effective", table_name="policy_versions")
    op.drop_table("policy_versions")
