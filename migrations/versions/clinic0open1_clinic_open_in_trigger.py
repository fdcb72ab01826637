"""slot claims: a live claim is refused at an inactive clinic or outside its opening hours

Revision ID: clinic0open1
Revises: rff0a1e0001
Create Date: 2026-12-05 19:00:00

PostgreSQL only: ``slot_claims_provider_present()`` (the function of the triggers
``tg_slot_claims_provider_present`` and ``…_again``) also refuses a provider's live claim
at a booking's clinic that is inactive, or outside that clinic's opening hours on the
claim's local day in its zone, with SQLSTATE 23P01 (a lost race). A clinic's deactivation
or change of opening hours takes the advisory lock of every provider with weekly hours or
live bookings ahead there before reading the bookings in its way (catalog.clinics), so such
a change and a hold at once never both win: a hold checks the clinic before it takes its
locks, and only the trigger, after them, sees a change committed in between
(docs/booking.md). Existing rows are not checked. SQLite serialises the change with the
holds in Python: nothing to do.
"""

from alembic import op

revision = "clinic0open1"
down_revision = "rff0a1e0001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION slot_claims_provider_present() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pid bigint := substr(NEW.subject, 10)::bigint;
    claim_clinic bigint;
    clinic_zone text;
    clinic_open boolean;
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
    SELECT b.clinic_id, c.timezone, c.active INTO claim_clinic, clinic_zone, clinic_open
    FROM bookings b JOIN clinics c ON c.id = b.clinic_id
    WHERE b.id = NEW.booking_id;
    local_day := (NEW.start_at AT TIME ZONE clinic_zone)::date;
    -- The clinic active and open for the whole claim that day (a clinic's change takes the
    -- lock of every provider with hours or bookings there first).
    IF NOT clinic_open OR NOT EXISTS (
        SELECT 1 FROM clinic_hours h
        WHERE h.clinic_id = claim_clinic
            AND h.weekday = extract(isodow FROM local_day)::int - 1
            AND (local_day + h.opens) AT TIME ZONE clinic_zone <= NEW.start_at
            AND (local_day + h.closes) AT TIME ZONE clinic_zone >= NEW.end_at
    )
    THEN
        RAISE EXCEPTION 'clinic % is closed then', claim_clinic
            USING ERRCODE = 'exclusion_violation';
    END IF;
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

# wkhours00001's function: the provider's leave, deactivation and weekly hours.
PREVIOUS = """
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


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _postgres():
        op.execute(FUNCTION)


def downgrade():
    if _postgres():
        op.execute(PREVIOUS)
