"""calendar_sequences: each booking's calendar files numbered one above the last

Revision ID: ics0seq00001
Revises: dlv0w1d0001
Create Date: 2026-12-05 16:50:00

A calendar file's SEQUENCE was the minutes since the epoch, so a move and a cancellation
told within the same minute carried the same one, and the CANCEL did not outrank the
PUBLISH it replaced (RFC 5546 3.2.5). Each booking's last SEQUENCE is now kept here and the
next file carries one more (never less than the minutes since the epoch, so it still
outranks the files sent before). No backfill: a booking without a row starts at that floor.
"""

import sqlalchemy as sa
from alembic import op

revision = "ics0seq00001"
down_revision = "dlv0w1d0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "calendar_sequences",
        sa.Column("booking_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_calendar_sequences_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_calendar_sequences")),
    )


def downgrade():
    op.drop_table("calendar_sequences")
