"""slot claims: the person's live claim is refused for a closed account

Revision ID: acc10sed0002
Revises: acc10sed0001
Create Date: 2026-12-05 22:00:00

PostgreSQL only: the function ``slot_claims_account_open()`` and its triggers
``tg_slot_claims_account_open`` (a live claim of the person seen, inserted: one per hold)
and ``…_again`` (such a claim made live again: a late payment's revival) read the visit's
account row ``FOR KEY SHARE`` and refuse the claim when the account is closed, as the
check ``slot_claims_account_open`` (SQLSTATE 23514). A closure takes that row ``FOR
UPDATE`` before it reads what is still booked, so a closure and a hold at once never both
win (docs/privacy.md). Existing rows are not checked (a closed account has no live claim:
its closure was refused over one). SQLite serialises the closure with the holds in Python:
nothing to do.
"""

from alembic import op

revision = "acc10sed0002"
down_revision = "acc10sed0001"
branch_labels = None
depends_on = None

FUNCTION = """
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

ON_INSERT = """
CREATE TRIGGER tg_slot_claims_account_open BEFORE INSERT ON slot_claims
FOR EACH ROW WHEN (NEW.live AND NEW.subject NOT LIKE 'provider:%')
EXECUTE FUNCTION slot_claims_account_open()
"""

ON_UPDATE = """
CREATE TRIGGER tg_slot_claims_account_open_again BEFORE UPDATE OF live ON slot_claims
FOR EACH ROW WHEN (NEW.live AND NOT OLD.live AND NEW.subject NOT LIKE 'provider:%')
EXECUTE FUNCTION slot_claims_account_open()
"""


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if not _postgres():
        return
    op.execute(FUNCTION)
    op.execute(ON_INSERT)
    op.execute(ON_UPDATE)


def downgrade():
    if not _postgres():
        return
    op.execute("DROP TRIGGER IF EXISTS tg_slot_claims_account_open_again ON slot_claims")
    op.execute("DROP TRIGGER IF EXISTS tg_slot_claims_account_open ON slot_claims")
    op.execute("DROP FUNCTION IF EXISTS slot_claims_account_open()")
