"""providers.pan: stored only as the PAN rule makes it (a check constraint)

Revision ID: panshape0001
Revises: feename00001
Create Date: 2026-12-12 10:00:00

The payouts key a payee by its PAN twice: in Python (``payouts.common.payee_key``, the
payee's lock: ``str.strip`` takes every whitespace) and in SQL (``PAYEE_KEY``, whose
payouts count together for TDS: ``trim`` takes only spaces, SQLite's ``upper`` only ASCII
letters). A PAN stored with a tab, a newline or a no-break space around it would be locked
as one payee and counted as another. Every writer stores ``domain.tax_ids.clean_pan``'s
value (nothing wrote the column before that rule), so the database now refuses any other:
five letters, four digits and a letter, ASCII upper case, or NULL (``ck_providers_pan_shape``,
``catalog.models.PAN_SHAPE``: a regular expression on PostgreSQL, a GLOB on SQLite).

A value written around the writers (a script, a console) is first normalised as the rule
does (trimmed of any whitespace, upper-cased; blank is none on file). One that is still no
PAN stops the upgrade, naming the providers: a PAN the TDS statement reports is not to be
guessed or dropped here; correct or clear it, then upgrade again. Downgrade drops the check
and keeps every value.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "panshape0001"
down_revision = "feename00001"
branch_labels = None
depends_on = None

# Frozen copies as of this revision (a migration keeps its own).
SHAPE = {
    "postgresql": "pan ~ '^[A-Z]{5}[0-9]{4}[A-Z]$'",
    "sqlite": "pan GLOB '" + "[A-Z]" * 5 + "[0-9]" * 4 + "[A-Z]'",
}
_PAN = re.compile(r"[A-Z]{5}[0-9]{4}[A-Z]")

providers = sa.table("providers", sa.column("id", sa.Integer), sa.column("pan", sa.String))


def _normal_pan(text):
    # portal.domain.tax_ids.normal_pan
    return (text or "").strip().upper() or None


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(providers.c.id, providers.c.pan).where(providers.c.pan.is_not(None)))
    changed, wrong = [], []
    for provider_id, pan in rows.all():
        normal = _normal_pan(pan)
        if normal is not None and not _PAN.fullmatch(normal):
            wrong.append(provider_id)
        elif normal != pan:
            changed.append({"row_id": provider_id, "normal": normal})
    if wrong:
        raise RuntimeError(
            f"providers {', '.join(map(str, sorted(wrong)))} have a PAN on file that is not one "
            "(five letters, four digits and a letter): correct or clear it, then upgrade again"
        )
    if changed:
        conn.execute(
            providers.update()
            .where(providers.c.id == sa.bindparam("row_id"))
            .values(pan=sa.bindparam("normal")),
            changed,
        )
    with op.batch_alter_table("providers") as batch:
        batch.create_check_constraint(op.f("ck_providers_pan_shape"), SHAPE[conn.dialect.name])


def downgrade():
    with op.batch_alter_table("providers") as batch:
        batch.drop_constraint(op.f("ck_providers_pan_shape"), type_="check")
