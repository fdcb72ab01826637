"""slot claims: a provider's live claim is refused outside their weekly hours too

Revision ID: wkhours00001
Revises: setl0c0d1b0002
Create Date: 2026-12-06 10:00:00

PostgreSQL only: ``slot_claims_provider_present()`` (the function of the triggers
``tg_slot_claims_provider_present`` and ``…_again``, tm1e4a5e0001) also refuses a
provider's live claim outside their weekly hours at the booking's clinic (the claim inside
the windows, touching ones joined, of its start's local day in the clinic's zone), with
SQLSTATE 23P01 (a lost race). A change of weekly hours takes the provider's advisory lock
before reading the bookings in the hours it removes (catalog.availability), as a leave
does, so a change of hours and a hold at once never both win (docs/booking.md). Existing
rows are not checked. SQLite serialises the change with the holds in Python: nothing to do.
"""

from alembic import op

revision = "wkhours00001"
down_revision = "setl0c0d1b0002"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION slot_claims_provider_present() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pid bigint := substr(NEW.subject, 10)::bigint;
    claim_clinic bigint;
    clinic_zone text;
    local_day date;
    reached timestamptz := NEW.start_at;
    window_end timestamptz;
BEGIN
    -- Re-entrant (a hold took it already); its wait makes the reads below see a leave, a
    -- deactivation or a change of hours that committed meanwhile (a fresh snapshot per
    -- statement).
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
    SELECT b.clinic_id, c.timezone INTO claim_clinic, clinic_zone
    FROM bookings b JOIN clinics c ON c.id = b.clinic_id
    WHERE b.id = NEW.booking_id;
    local_day := (NEW.start_at AT TIME ZONE clinic_zone)::date;
    -- From the claim's start, window after touching window, until its end is reached.
    LOOP
        SELECT max((local_day + a.end_time) AT TIME ZONE clinic_zone) INTO window_end
        FROM availability a
        WHERE a.provider_id = pid AND a.clinic_id = claim_clinic
            AND a.weekday = extract(isodow FROM local_day)::int - 1
            AND (local_day + a.start_time) AT TIME ZONE clinic_zone <= reached
            AND (local_day + a.end_time) AT TIME ZONE clinic_zone > reached;
        EXIT WHEN window_end IS NULL OR window_end >= NEW.end_at;
        reached := window_end;
    END LOOP;
    IF window_end IS NULL THEN
        RAISE EXCEPTION 'provider % does not work then', pid
            USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END
$$

"""

# tm1e4a5e0001's function: the leave and the deactivation only.
PREVIOUS = """
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


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _postgres():
        op.execute(FUNCTION)


def downgrade():
    if _postgres():
        op.execute(PREVIOUS)
