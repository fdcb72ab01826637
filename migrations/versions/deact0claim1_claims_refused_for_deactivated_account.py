"""slot claims: the person's live claim is refused for a deactivated account too

Revision ID: deact0claim1
Revises: admacc000001
Create Date: 2026-12-09 12:00:00

PostgreSQL only: the function ``slot_claims_account_open()`` (its triggers, acc10sed0002,
stay as they are: a hold's person claim inserted, a late payment's revival) also refuses
the claim when the account is deactivated, as the check ``slot_claims_account_active``
(SQLSTATE 23514). An administrator's deactivation of a patient takes the account's row
``FOR UPDATE`` before it reads what is still booked (``booking.deactivation``), so a
deactivation and the desk's hold at once never both win (docs/privacy.md). Existing rows
are not checked. SQLite serialises the two in Python: nothing to do.
"""

from alembic import op

revision = "deact0claim1"
down_revision = "admacc000001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION slot_claims_account_open() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    account bigint;
    closed timestamptz;
    is_active boolean;
BEGIN
    SELECT v.patient_id INTO account
    FROM bookings b JOIN visits v ON v.id = b.master_id
    WHERE b.id = NEW.booking_id;
    -- Waits for a closure or a deactivation that has the row; then reads its commit.
    SELECT u.closed_at, u.active INTO closed, is_active
    FROM users u WHERE u.id = account FOR KEY SHARE;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'account % is closed', account
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slot_claims_account_open';
    END IF;
    IF NOT is_active THEN
        RAISE EXCEPTION 'account % is deactivated', account
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slot_claims_account_active';
    END IF;
    RETURN NEW;
END
$$
"""

# acc10sed0002's, as it was.
PREVIOUS = """
CREATE OR REPLACE FUNCTION slot_claims_account_open() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    account bigint;
    closed timestamptz;
BEGIN
    SELECT v.patient_id INTO account
    FROM bookings b JOIN visits v ON v.id = b.master_id
    WHERE b.id = NEW.booking_id;
    -- Waits for a closure that has the row; then reads its commit.
    SELECT u.closed_at INTO closed FROM users u WHERE u.id = account FOR KEY SHARE;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'account % is closed', account
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slot_claims_account_open';
    END IF;
    RETURN NEW;
END
$$
"""


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _postgres():
        op.execute(FUNCTION)


def downgrade():
    if _postgres():
        op.execute(PREVIOUS)
