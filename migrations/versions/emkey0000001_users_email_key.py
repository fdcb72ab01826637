"""users: the address folded (NFKC, lower-cased), one account per folded address

Revision ID: emkey0000001
Revises: ver0e1d17002
Create Date: 2026-12-06 23:00:00

email_validator applies NFC only, so a full-width ``ｐriya@example.com`` (U+FF50)
registered a second account beside ``priya@example.com``. ``normalise_email`` now folds
NFKC first; ``users.email_key`` holds each stored address folded
(``accounts.models.email_key``), UNIQUE, so a compatibility form of an address with an
account is refused at the database too, and an address stored before the rule under a
compatibility form is found by either form. Nothing stored in ``email`` changes (its owner
is mailed at the address they registered). Twins stored before the rule (both forms, two
accounts): the key goes to the one stored folded already (else the oldest); the others
keep no key and sign in by their address as stored (docs/decisions.md).
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "emkey0000001"
down_revision = "ver0e1d17002"
branch_labels = None
depends_on = None


def _key(address):
    # accounts.models.email_key, as of this revision (a migration does not import the app).
    return unicodedata.normalize("NFKC", address).lower()


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_key", sa.String(length=254), nullable=True))
    conn = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("email"), sa.column("email_key"))
    holders = {}
    for user_id, email in conn.execute(sa.select(users.c.id, users.c.email).order_by(users.c.id)):
        key = _key(email)
        held = holders.get(key)
        # The one stored folded already wins the key, else the oldest.
        if held is None or (held[1].lower() != key and email.lower() == key):
            holders[key] = (user_id, email)
    for key, (user_id, _email) in holders.items():
        conn.execute(sa.update(users).where(users.c.id == user_id).values(email_key=key))
    with op.batch_alter_table("users") as batch:
        batch.create_unique_constraint(op.f("uq_users_email_key"), ["email_key"])


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_email_key"), type_="unique")
        batch.drop_column("email_key")
