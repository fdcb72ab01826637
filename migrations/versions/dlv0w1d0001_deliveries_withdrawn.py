"""deliveries: a reminder's mail or text can be withdrawn before it leaves (status withdrawn)

Revision ID: dlv0w1d0001
Revises: ver0e1d17001
Create Date: 2026-12-05 16:40:00

A reminder's mail or SMS that met an outage was retried with the outbox's backoff (up to
about 8.5 hours) and delivered whatever happened meanwhile: "Reminder: Consultation
tomorrow" for a booking cancelled since, "in 1 hour" after the start. Before each attempt
the send job now re-checks the reminder (booking confirmed, start unchanged and ahead) and
otherwise marks the delivery ``withdrawn`` (and its mail, whose status has no constraint).
"""

from alembic import op

revision = "dlv0w1d0001"
down_revision = "ver0e1d17001"
branch_labels = None
depends_on = None

STATUS_OLD = "status IN ('queued', 'sent', 'retrying', 'failed')"
STATUS_NEW = "status IN ('queued', 'sent', 'retrying', 'failed', 'withdrawn')"


def upgrade():
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(op.f("ck_deliveries_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_deliveries_status_known"), STATUS_NEW)


def downgrade():
    # A withdrawn delivery was never sent and never will be: as a failed one, not retried
    # unless an admin asks.
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'withdrawn'")
    op.execute("UPDATE mail_messages SET status = 'failed' WHERE status = 'withdrawn'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(op.f("ck_deliveries_status_known"), type_="check")
        batch.create_check_constraint(op.f("ck_deliveries_status_known"), STATUS_OLD)
