"""webhook_event: an index on event_id

Revision ID: wh0e1d0c0001
Revises: po11c1e50001
Create Date: 2026-12-04 13:00:00

An event is known by its id across both webhook endpoints, so every webhook looks it up by
event_id alone; the unique (source, event_id) cannot serve that look-up and PostgreSQL
scanned the whole table (issue #17, docs/performance.md).
"""

from alembic import op

revision = "wh0e1d0c0001"
down_revision = "po11c1e50001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_webhook_event_event_id", "webhook_event", ["event_id"])


def downgrade():
    op.drop_index("ix_webhook_event_event_id", table_name="webhook_event")
