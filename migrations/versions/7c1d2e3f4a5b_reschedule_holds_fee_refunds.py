"""reschedule holds, desk-paid reschedule fees, reschedule fee refunds, further refunds

Revision ID: 7c1d2e3f4a5b
Revises: 281fdd365a97
Create Date: 2026-12-02 11:10:00

* ``slot_claims.reschedule_id``: a claim holding the new time of a move whose fee is being
  paid online; the exclusion constraint no longer compares one booking's claims with each
  other (its old time and its held new time may overlap).
* ``reschedules.receipt_no`` and ``pay_with = 'DESK'``: an admin takes the fee at the desk.
* ``refunds.reschedule_id``: a reschedule fee given back (provider or clinic cancels).
* ``refund_approvals.prefer_wallet``: where a further refund asked for later goes.
"""
from alembic import op
import sqlalchemy as sa

revision = '7c1d2e3f4a5b'
down_revision = '281fdd365a97'
branch_labels = None
depends_on = None

OLD_EXCLUSION = ("ALTER TABLE slot_claims ADD CONSTRAINT ex_slot_claims_no_overlap "
                 "EXCLUDE USING gist (subject WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
                 "WHERE (live)")
NEW_EXCLUSION = ("ALTER TABLE slot_claims ADD CONSTRAINT ex_slot_claims_no_overlap "
                 "EXCLUDE USING gist (subject WITH =, booking_id WITH <>, "
                 "tstzrange(start_at, end_at, '[)') WITH &&) WHERE (live)")
PAY_WITH_OLD = "pay_with IN ('NONE', 'WALLET', 'GATEWAY')"
PAY_WITH_NEW = "pay_with IN ('NONE', 'WALLET', 'GATEWAY', 'DESK')"


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    with op.batch_alter_table('reschedules') as batch_op:
        batch_op.add_column(sa.Column('receipt_no', sa.String(length=64), nullable=True))
        batch_op.drop_constraint(op.f('ck_reschedules_pay_with_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_reschedules_pay_with_known'), PAY_WITH_NEW)

    with op.batch_alter_table('slot_claims') as batch_op:
        batch_op.add_column(sa.Column('reschedule_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_slot_claims_reschedule_id'), ['reschedule_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_slot_claims_reschedule_id_reschedules'),
                                    'reschedules', ['reschedule_id'], ['id'],
                                    ondelete='CASCADE')
    if _postgres():
        op.execute("ALTER TABLE slot_claims DROP CONSTRAINT ex_slot_claims_no_overlap")
        op.execute(NEW_EXCLUSION)

    with op.batch_alter_table('refunds') as batch_op:
        batch_op.add_column(sa.Column('reschedule_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_refunds_reschedule_id'), ['reschedule_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_refunds_reschedule_id_reschedules'),
                                    'reschedules', ['reschedule_id'], ['id'],
                                    ondelete='CASCADE')

    with op.batch_alter_table('refund_approvals') as batch_op:
        batch_op.add_column(sa.Column('prefer_wallet', sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table('refund_approvals') as batch_op:
        batch_op.drop_column('prefer_wallet')

    with op.batch_alter_table('refunds') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_refunds_reschedule_id_reschedules'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_refunds_reschedule_id'))
        batch_op.drop_column('reschedule_id')

    if _postgres():
        op.execute("ALTER TABLE slot_claims DROP CONSTRAINT ex_slot_claims_no_overlap")
        op.execute(OLD_EXCLUSION)
    with op.batch_alter_table('slot_claims') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_slot_claims_reschedule_id_reschedules'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_slot_claims_reschedule_id'))
        batch_op.drop_column('reschedule_id')

    with op.batch_alter_table('reschedules') as batch_op:
        batch_op.drop_constraint(op.f('ck_reschedules_pay_with_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_reschedules_pay_with_known'), PAY_WITH_OLD)
        batch_op.drop_column('receipt_no')
