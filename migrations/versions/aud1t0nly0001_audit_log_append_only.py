"""audit log: PostgreSQL refuses a DELETE, a TRUNCATE and any UPDATE but the redaction's

Revision ID: aud1t0nly0001
Revises: bankout00001
Create Date: 2026-12-07 10:00:00

Review finding: the audit log was append-only through the ORM's flush alone; a bulk
UPDATE or DELETE, or plain SQL, rewrote or removed entries. PostgreSQL only: the function
``audit_log_append_only()`` and its triggers ``tg_audit_log_append_only`` (each row's
UPDATE or DELETE: an UPDATE passes when all it changes is ``before``/``after``, the
privacy redaction's columns) and ``tg_audit_log_not_truncated`` (TRUNCATE, which row
triggers do not see). Existing rows are not touched. SQLite: the session's guard
(``portal.audit.models``) alone, as on PostgreSQL before (docs/decisions.md).
"""

from alembic import op

revision = "aud1t0nly0001"
down_revision = "bankout00001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The tests' reset alone (tests/plugin.py: empty_tables) sets this, in its transaction.
    IF TG_OP IN ('DELETE', 'TRUNCATE')
        AND current_setting('portal.emptying_tables', true) = 'on'
    THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF to_jsonb(NEW) - 'before' - 'after' = to_jsonb(OLD) - 'before' - 'after' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING HINT = 'Only the privacy redaction may rewrite an entry''s before/after.';
END
$$
"""

ON_ROWS = """
CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""

ON_TRUNCATE = """
CREATE TRIGGER tg_audit_log_not_truncated BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()
"""


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if not _postgres():
        return
    op.execute(FUNCTION)
    op.execute(ON_ROWS)
    op.execute(ON_TRUNCATE)


def downgrade():
    if not _postgres():
        return
    op.execute("DROP TRIGGER IF EXISTS tg_audit_log_not_truncated ON audit_log")
    op.execute("DROP TRIGGER IF EXISTS tg_audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
