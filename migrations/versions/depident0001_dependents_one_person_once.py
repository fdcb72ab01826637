"""dependents.name_key and the unique indexes: one person on an account once

Revision ID: depident0001
Revises: holdrsn00001
Create Date: 2026-12-06 07:40:00

A double click on "Add dependent" made two identical children, whom the no-overlap rule
(per dependent) then let be booked at two clinics at one moment. A dependent now has a
``name_key`` (its name NFKC-normalised, case-folded, spaces collapsed:
``portal.domain.names.name_key``) and the guardian, key and date of birth are unique (the
key alone when there is no date of birth), docs/decisions.md.

Rows already duplicated in a deployed database are left as they are, not merged: their
visits, invoices and refunds name them, and which one a family means is theirs to say.
The first (lowest id) of each such group gets its key; the later ones keep none, so the
indexes pass over them. The service's look-up compares them on every save: saved again
under the same name one is refused, renamed it gets its key. Downgrade drops both indexes
and the key, keeping every row (tests/test_migrations.py).
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "depident0001"
down_revision = "holdrsn00001"
branch_labels = None
depends_on = None


def _key(name):
    # portal.domain.names.name_key as of this revision (a migration keeps its own copy).
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split()) if name else None


def upgrade():
    with op.batch_alter_table("dependents") as batch:
        batch.add_column(sa.Column("name_key", sa.Text(), nullable=True))
    conn = op.get_bind()
    seen = set()
    rows = conn.execute(
        sa.text("SELECT id, guardian_id, name, date_of_birth FROM dependents ORDER BY id")
    )
    keyed = []
    for row_id, guardian_id, name, born in rows:
        key = _key(name)
        person = (guardian_id, key, str(born) if born is not None else None)
        if person in seen:
            continue  # a duplicate from before the rule: left unkeyed (see above)
        seen.add(person)
        keyed.append({"id": row_id, "key": key})
    if keyed:
        conn.execute(sa.text("UPDATE dependents SET name_key = :key WHERE id = :id"), keyed)
    op.create_index(
        "uq_dependents_person",
        "dependents",
        ["guardian_id", "name_key", "date_of_birth"],
        unique=True,
    )
    op.create_index(
        "uq_dependents_person_undated",
        "dependents",
        ["guardian_id", "name_key"],
        unique=True,
        postgresql_where=sa.text("date_of_birth IS NULL"),
        sqlite_where=sa.text("date_of_birth IS NULL"),
    )


def downgrade():
    op.drop_index("uq_dependents_person_undated", table_name="dependents")
    op.drop_index("uq_dependents_person", table_name="dependents")
    with op.batch_alter_table("dependents") as batch:
        batch.drop_column("name_key")
