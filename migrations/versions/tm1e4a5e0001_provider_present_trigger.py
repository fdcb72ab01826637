"""slot claims: a provider's live claim is refused over their leave or once inactive

Revision ID: tm1e4a5e0001
Revises: inv0b111ed001
Create Date: 2026-12-05 11:00:00

PostgreSQL only: the trigger ``tg_slot_claims_provider_present`` (and ``…_again`` for a
claim made live again or moved) takes the provider's advisory lock, then refuses a live
claim of a provider on leave then, or inactive, with SQLSTATE 23P01 (a lost race). A
leave and a deactivation take the same lock before reading the bookings in their way, so
a leave (or a deactivation) and a hold at once never both win (docs/booking.md). Existing
rows are not checked: the trigger judges writes from now on, and a claim already live
over a leave (both sides of a race won before this) stays as it is. SQLite (the embedded mode, one
process) serialises the leave with the holds in Python instead: nothing to do.
"""

from alembic import op

revision = "tm1e4a5e0001"
down_revision = "inv0b111ed001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION slot_claims_provider_present() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pid bigint := substr(NEW.subject, 10)::bigint;
BEGIN
    -- Re-entrant (a hold took it already); its wait makes the reads below see a leave or
    -- a deactivation that committed meanwhile (a fresh snapshot per statement).
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.subject, 0));
    IF EXISTS (SELECT 1 FROM providers WHERE id = pid AND NOT active)
        OR EXISTS (
            SELECT 1 FROM leaves
            WHERE provider_id = pid AND starts_at < NEW.end_at AND ends_at > NEW.start_at
        )
    THEN
        RAISE EXCEPTION 'provider % is on leave or inactive then', pid
            USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END
$$
"""

ON_INSERT = """
CREATE TRIGGER tg_slot_claims_provider_present BEFORE INSERT ON slot_claims
FOR EACH ROW WHEN (NEW.live AND NEW.subject LIKE 'provider:%')
EXECUTE FUNCTION slot_claims_provider_present()
"""

ON_UPDATE = """
CREATE TRIGGER tg_slot_claims_provider_present_again
BEFORE UPDATE OF live, subject, start_at, end_at ON slot_claims
FOR EACH ROW WHEN (
    NEW.live AND NEW.subject LIKE 'provider:%' AND (
        NOT OLD.live OR NEW.subject <> OLD.subject
        OR NEW.start_at <> OLD.start_at OR NEW.end_at <> OLD.end_at
    )
)
EXECUTE FUNCTION slot_claims_provider_present()
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
    op.execute("DROP TRIGGER IF EXISTS tg_slot_claims_provider_present_again ON slot_claims")
    op.execute("DROP TRIGGER IF EXISTS tg_slot_claims_provider_present ON slot_claims")
    op.execute("DROP FUNCTION IF EXISTS slot_claims_provider_present()")
