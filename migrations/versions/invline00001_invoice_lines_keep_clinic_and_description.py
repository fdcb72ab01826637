"""bookings: an invoice line keeps its clinic's name and its description as issued

Revision ID: invline00001
Revises: audmail00001
Create Date: 2026-12-11 10:00:00

Review r6. The receipt printed the clinic's name, the service's and the providers' of the
day it was read beside the GSTIN stored at issue, so renaming a clinic (or a service, or a
provider) rewrote invoices already issued, though docs/reports.md says they read stored
values. ``bookings.invoice_clinic_name`` and ``bookings.invoice_description``
("Consultation — Dr A, Dr B") are now written when the line is issued
(``booking.invoices.issue_lines``, with its GSTIN and split) and the receipt reads them.

Backfill: the names a line was issued with were never recorded, so the lines issued before
this revision (stamped: ``cgst`` set, as ``issue_lines`` marks them) take today's names,
the clinic's, the service's and the providers' (by display name, as the receipt listed
them), with a frozen copy of ``invoices.line_description``: a rename made before it still
shows on their invoices, as it did before. Read 500 lines at a time, by id, on both
SQLite and PostgreSQL. Downgrade drops the columns (the receipt reads today's names again).
"""

import sqlalchemy as sa
from alembic import op

revision = "invline00001"
down_revision = "audmail00001"
branch_labels = None
depends_on = None

BATCH = 500

bookings = sa.table(
    "bookings",
    sa.column("id", sa.Integer),
    sa.column("clinic_id", sa.Integer),
    sa.column("service_id", sa.Integer),
    sa.column("cgst", sa.BigInteger),
    sa.column("invoice_clinic_name", sa.String),
    sa.column("invoice_description", sa.Text),
)
clinics = sa.table("clinics", sa.column("id", sa.Integer), sa.column("name", sa.String))
services = sa.table("services", sa.column("id", sa.Integer), sa.column("name", sa.String))
providers = sa.table(
    "providers", sa.column("id", sa.Integer), sa.column("display_name", sa.String)
)
booking_providers = sa.table(
    "booking_providers", sa.column("booking_id", sa.Integer), sa.column("provider_id", sa.Integer)
)


def _description(service_name, provider_names):
    # Frozen copy of portal.booking.invoices.line_description on the day.
    return f"{service_name} — {', '.join(provider_names)}"


def upgrade():
    # Plain ADD COLUMN (nullable), no batch: SQLite need not rebuild bookings, which other
    # tables reference.
    op.add_column("bookings", sa.Column("invoice_clinic_name", sa.String(120), nullable=True))
    op.add_column("bookings", sa.Column("invoice_description", sa.Text(), nullable=True))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(bookings.c.id, clinics.c.name, services.c.name)
            .join(clinics, clinics.c.id == bookings.c.clinic_id)
            .join(services, services.c.id == bookings.c.service_id)
            .where(bookings.c.cgst.is_not(None), bookings.c.id > last)
            .order_by(bookings.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        names = {}
        for booking_id, name in conn.execute(
            sa.select(booking_providers.c.booking_id, providers.c.display_name)
            .join(providers, providers.c.id == booking_providers.c.provider_id)
            .where(booking_providers.c.booking_id.in_([r[0] for r in rows]))
            .order_by(booking_providers.c.booking_id, providers.c.display_name)
        ):
            names.setdefault(booking_id, []).append(name)
        conn.execute(
            sa.update(bookings)
            .where(bookings.c.id == sa.bindparam("b_id"))
            .values(
                invoice_clinic_name=sa.bindparam("b_clinic"),
                invoice_description=sa.bindparam("b_description"),
            ),
            [
                {
                    "b_id": booking_id,
                    "b_clinic": clinic_name,
                    "b_description": _description(service_name, names.get(booking_id, [])),
                }
                for booking_id, clinic_name, service_name in rows
            ],
        )
        last = rows[-1][0]


def downgrade():
    op.drop_column("bookings", "invoice_description")
    op.drop_column("bookings", "invoice_clinic_name")
