"""fund accounts: at most one current account per provider

Revision ID: pay0a77e3f003
Revises: pay0a77e3f002
Create Date: 2026-12-05 11:00:00

A unique partial index on ``fund_accounts (provider_id) WHERE current``: two saves of the
bank form at once could leave two current accounts (docs/payouts.md). Rows a race left
behind are cleaned first: each provider keeps its newest current account (the one the
payouts already used: ``current_fund_account`` reads the highest id), the older ones stop
being current (they stay for the history of payouts made to them).
"""

from alembic import op
import sqlalchemy as sa

revision = "pay0a77e3f003"
down_revision = "pay0a77e3f002"
branch_labels = None
depends_on = None

fund_accounts = sa.table(
    "fund_accounts",
    sa.column("id", sa.Integer),
    sa.column("provider_id", sa.Integer),
    sa.column("current", sa.Boolean),
)


def _newest_current():
    other = fund_accounts.alias("newest")
    return (
        sa.select(sa.func.max(other.c.id))
        .where(other.c.current.is_(True))
        .group_by(other.c.provider_id)
    )


def upgrade():
    op.execute(
        fund_accounts.update()
        .where(fund_accounts.c.current.is_(True), fund_accounts.c.id.not_in(_newest_current()))
        .values(current=False)
    )
    # No batch: SQLite creates a partial index in place, no table rebuild.
    op.create_index(
        "uq_fund_accounts_one_current",
        "fund_accounts",
        ["provider_id"],
        unique=True,
        postgresql_where=sa.text("current"),
        sqlite_where=sa.text("current"),
    )


def downgrade():
    op.drop_index("uq_fund_accounts_one_current", table_name="fund_accounts")
