"""audit log: a failed sign-in's text that is no address is not kept

Revision ID: audmail00001
Revises: deact0claim1
Create Date: 2026-12-10 10:00:00

Review rv_audit. A ``login_failed`` row recorded what was typed in the e-mail box
(``after.email``) even when it was no address, most often a password typed in the wrong
box or filled in by the browser, in clear in the append-only log every administrator
reads and exports. Sign-in now records ``{"email": null, "not_an_address": true}`` for
such text (``accounts.service._typed_address``). Here the rows stored before get the
same: each ``login_failed`` row whose ``after.email`` is not an address by the rule of
the day (a frozen copy of ``accounts.service.normalise_email``: NFKC, email_validator
without the DNS check, at most 254 characters, lower-cased, and the stored value is that
form) has it replaced, keeping every other value. A closure's ``"[erased]"`` stays. Only
before/after change, which PostgreSQL's append-only trigger allows (the redaction's
columns); SQLite has no trigger. Read 500 rows at a time, by id, on both. Downgrade
changes nothing: the text is gone.
"""

import unicodedata

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

revision = "audmail00001"
down_revision = "deact0claim1"
branch_labels = None
depends_on = None

BATCH = 500
ERASED = "[erased]"  # a closure's redaction (audit.service), left as it is
NOT_AN_ADDRESS = {"email": None, "not_an_address": True}

audit = sa.table(
    "audit_log",
    sa.column("id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("after", sa.JSON),
)


def _is_address(value):
    """Whether ``value`` is an address as sign-in stored one (a frozen copy of
    ``normalise_email`` on the day: a migration does not import the app)."""
    raw = unicodedata.normalize("NFKC", value.strip())
    try:
        email = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return False
    return len(email) <= 254 and email.lower() == value


def upgrade():
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(audit.c.id, audit.c.after)
            .where(audit.c.action == "login_failed", audit.c.id > last)
            .order_by(audit.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row_id, after in rows:
            if not isinstance(after, dict) or "email" not in after:
                continue  # a reason row (locked, inactive, …): no text was kept
            typed = after["email"]
            if typed is None or typed == ERASED or (isinstance(typed, str) and _is_address(typed)):
                continue
            conn.execute(
                sa.update(audit)
                .where(audit.c.id == row_id)
                .values(after={**after, **NOT_AN_ADDRESS})
            )
        last = rows[-1][0]


def downgrade():
    pass  # nothing to restore: the text is not kept
