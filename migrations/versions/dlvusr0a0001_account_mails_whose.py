"""deliveries: the account mails sent before they recorded whom they were for

Revision ID: dlvusr0a0001
Revises: mmtds0a10001
Create Date: 2026-12-08 10:00:00

The account mails (password reset, "You already have a Clinic Portal account", welcome,
invitation) and the patient's "About your payment" mail were queued by address only:
their delivery rows have no ``user_id``, so a patient's data download, which reads what
was sent to them by their id (``notify.queries.sent_to``), left them out (review
finding). They record it from now on (``portal.notify.account_mail``); this fills it in
for the ones already sent, from the user whose address the mail went to. That match is
sound for these rows because an address belongs to one account for good: it never
changes but at closure, and closing rewrites the closed account's mails to the
placeholder address the account then carries (``notify.closure``). Their ``kind`` stays
``mail`` (which one each was is not recorded; the subject, in the user's language, says
it). A mail to an address no account has keeps no user. Downgrade leaves the ids: they
are right either way.

Locks (PostgreSQL): one UPDATE, row locks on the deliveries without a user that have a
mail (each mail found by its key, its user by the unique ``email``, compared as stored:
addresses are stored lower-cased); sending and the rest of the portal go on.
"""

from alembic import op

revision = "dlvusr0a0001"
down_revision = "mmtds0a10001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "UPDATE deliveries SET user_id = ("
        " SELECT users.id FROM users JOIN mail_messages ON mail_messages.\"to\" = users.email"
        " WHERE mail_messages.id = deliveries.mail_id)"
        " WHERE user_id IS NULL AND mail_id IS NOT NULL AND channel = 'email'"
    )


def downgrade():
    pass
