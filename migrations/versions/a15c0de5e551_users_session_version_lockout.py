"""users: session version (sessions end at logout/password change) and sign-in lockout

Revision ID: a15c0de5e551
Revises: 7c1d2e3f4a5b
Create Date: 2026-12-02 15:35:00

Issue #15, findings 2 and 7:

* ``users.session_version``: carried by every session and remember-me cookie; bumping it
  (logout, password change or reset, deactivation) ends them all.
* ``users.failed_logins`` / ``users.locked_until``: per-account lockout with backoff.
"""

from alembic import op
import sqlalchemy as sa

import portal.db  # custom column types (UTCDateTime)

revision = "a15c0de5e551"
down_revision = "7c1d2e3f4a5b"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("locked_until", portal.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
        batch.drop_column("session_version")
