"""slot claims: a live claim is refused for an inactive service or a provider not offering it

Revision ID: svcoffer0001
Revises: whmask000001
Create Date: 2026-12-09 10:00:00

PostgreSQL only: ``slot_claims_provider_present()`` (the function of the triggers
``tg_slot_claims_provider_present`` and ``…_again``) also refuses a provider's live claim
whose booking's service is inactive, or not offered by that provider (no
``provider_services`` row), with SQLSTATE 23P01 (a lost race). A service's deactivation,
and a provider taken from it (on the service's form or the provider's), take the advisory
lock of every provider offering it before reading its bookings ahead
(catalog.service_changes), so such a change and a hold at once never both win: a hold
checks the service and the link before it takes its locks, and only the trigger, after
them, sees a change committed in between (docs/booking.md, review finding). Existing rows
are not checked. SQLite serialises the change with the holds in Python: nothing to do.
"""

from alembic import op

revision = "svcoffer0001"
down_revision = "whmask000001"
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
    service_offered boolean;
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
    SELECT b.clinic_id, c.timezone, c.active, s.active AND EXISTS (
            SELECT 1 FROM provider_services ps
            WHERE ps.provider_id = pid AND ps.service_id = b.service_id
        )
    INTO claim_clinic, clinic_zone, clinic_open, service_offered
    FROM bookings b JOIN clinics c ON c.id = b.clinic_id JOIN services s ON s.id = b.service_id
    WHERE b.id = NEW.booking_id;
    -- The service active and still the provider's (its deactivation, or the provider taken
    -- from it, takes the lock of every provider offering it first).
    IF NOT service_offered THEN
        RAISE EXCEPTION 'service inactive or not offered by provider % then', pid
            USING ERRCODE = 'exclusion_violation';
    END IF;
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

# clinic0open1's function: the provider, their weekly hours and the clinic.
PREVIOUS = """
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


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _postgres():
        op.execute(FUNCTION)


def downgrade():
    if _postgres():
        op.execute(PREVIOUS)
