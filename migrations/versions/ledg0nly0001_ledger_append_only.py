"""ledger: PostgreSQL refuses an UPDATE, a DELETE and a TRUNCATE of its transactions and entries

Revision ID: ledg0nly0001
Revises: aud1t0nly0001
Create Date: 2026-12-08 10:00:00

Review finding: the ledger was append-only through the ORM's flush alone; a bulk UPDATE or
DELETE, or plain SQL, rewrote or removed money history. PostgreSQL only: one trigger
function for every append-only table, ``append_only()`` (its arguments: the columns an
UPDATE may change; none for the ledger), replaces the audit log's own
``audit_log_append_only()``; ``ledger_transactions`` and ``ledger_entries`` get the
triggers ``tg_<table>_append_only`` (each row's UPDATE or DELETE) and
``tg_<table>_not_truncated``, as ``audit_log`` has. Existing rows are not touched. SQLite:
the session's guard (``portal.append_only``) alone (docs/decisions.md). Downgrade: the
ledger's triggers go and the audit log's function of aud1t0nly0001 comes back.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "ledg0nly0001"
down_revision = "aud1t0nly0001"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The tests' reset alone (tests/plugin.py: empty_tables) sets this, in its transaction.
    IF TG_OP IN ('DELETE', 'TRUNCATE')
        AND current_setting('portal.emptying_tables', true) = 'on'
    THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_NARGS > 0 THEN
        IF to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING HINT = 'A correction is a new row (docs/security.md: append-only history).';
END
$$
"""

# The table and the columns an UPDATE of it may change (the audit redaction's).
TABLES = {
    "audit_log": ("before", "after"),
    "ledger_transactions": (),
    "ledger_entries": (),
}


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def _drop_triggers(table):
    op.execute(f"DROP TRIGGER IF EXISTS tg_{table}_not_truncated ON {table}")
    op.execute(f"DROP TRIGGER IF EXISTS tg_{table}_append_only ON {table}")


def upgrade():
    if not _postgres():
        return
    op.execute(FUNCTION)
    _drop_triggers("audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table, columns in TABLES.items():
        arguments = ", ".join(f"'{column}'" for column in columns)
        op.execute(
            f"CREATE TRIGGER tg_{table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION append_only({arguments})"
        )
        op.execute(
            f"CREATE TRIGGER tg_{table}_not_truncated BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION append_only()"
        )


def _audit_revision():
    path = Path(__file__).with_name("aud1t0nly0001_audit_log_append_only.py")
    spec = importlib.util.spec_from_file_location("aud1t0nly0001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade():
    if not _postgres():
        return
    for table in TABLES:
        _drop_triggers(table)
    op.execute("DROP FUNCTION IF EXISTS append_only()")
    _audit_revision().upgrade()  # the audit log's own function and triggers again
