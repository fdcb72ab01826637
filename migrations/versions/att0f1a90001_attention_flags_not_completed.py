"""attention_flags: a second kind, NOT_COMPLETED (started, never completed by end + 2 h)

Revision ID: att0f1a90001
Revises: prc2u7r5c001
Create Date: 2026-12-06 10:00:00

A booking marked STARTED and never COMPLETED stayed so for ever, unflagged: its fee was
never earned and its visit never closed. ``notify.flag_not_completed`` now flags it as a
no-show is flagged (docs/operations.md "Needs attention"); the kind check allows it.
"""

from alembic import op

revision = "att0f1a90001"
down_revision = "prc2u7r5c001"
branch_labels = None
depends_on = None

KIND_OLD = "kind IN ('NO_SHOW')"
KIND_NEW = "kind IN ('NO_SHOW', 'NOT_COMPLETED')"


def upgrade():
    with op.batch_alter_table("attention_flags") as batch:
        batch.drop_constraint(op.f("ck_attention_flags_kind_known"), type_="check")
        batch.create_check_constraint(op.f("ck_attention_flags_kind_known"), KIND_NEW)


def downgrade():
    # The old schema has no such flag (each resolution stays in the audit log); a booking
    # still STARTED is flagged again after the next upgrade.
    op.execute("DELETE FROM attention_flags WHERE kind = 'NOT_COMPLETED'")
    with op.batch_alter_table("attention_flags") as batch:
        batch.drop_constraint(op.f("ck_attention_flags_kind_known"), type_="check")
        batch.create_check_constraint(op.f("ck_attention_flags_kind_known"), KIND_OLD)
