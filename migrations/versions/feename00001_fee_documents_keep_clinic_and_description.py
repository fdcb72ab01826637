"""reschedules: a fee's tax document keeps its clinic's name and its description as issued

Revision ID: feename00001
Revises: invline00001
Create Date: 2026-12-12 10:00:00

A reschedule fee is a tax invoice of its own (``RF/…``), but its document printed the
clinic's and the service's name of the day it was read beside the GSTIN stored at issue:
renaming either after the move rewrote the fee's document, its GST report row and its row
in the data download. ``reschedules.invoice_clinic_name`` and
``reschedules.invoice_description`` (its booking's line, "Consultation — Dr A, Dr B") are
now written with its number (``booking.invoices.issue_fee``, by the line's own read,
``_as_issued``) and read wherever the fee's document is shown.

Backfill, as invline00001 did for the lines: the names a fee was issued with were never
recorded, so the fees issued before this revision (stamped: ``cgst`` set, as ``issue_fee``
marks them) take today's names, by invline00001's own tables and description (loaded from
its file: the rule is written once), 500 fees at a time, by id. Downgrade drops the columns
(the fee's document reads today's names again).
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "feename00001"
down_revision = "invline00001"
branch_labels = None
depends_on = None

reschedules = sa.table(
    "reschedules",
    sa.column("id", sa.Integer),
    sa.column("booking_id", sa.Integer),
    sa.column("cgst", sa.BigInteger),
    sa.column("invoice_clinic_name", sa.String),
    sa.column("invoice_description", sa.Text),
)


def _lines_revision():
    """invline00001's module: its tables, its batch and its frozen line description."""
    path = Path(__file__).with_name("invline00001_invoice_lines_keep_clinic_and_description.py")
    spec = importlib.util.spec_from_file_location("invline00001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade():
    # Plain ADD COLUMN (nullable), no batch: SQLite need not rebuild reschedules, which
    # other tables reference.
    op.add_column("reschedules", sa.Column("invoice_clinic_name", sa.String(120), nullable=True))
    op.add_column("reschedules", sa.Column("invoice_description", sa.Text(), nullable=True))
    lines = _lines_revision()
    bookings, clinics, services = lines.bookings, lines.clinics, lines.services
    providers, booking_providers = lines.providers, lines.booking_providers
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(reschedules.c.id, reschedules.c.booking_id, clinics.c.name, services.c.name)
            .join(bookings, bookings.c.id == reschedules.c.booking_id)
            .join(clinics, clinics.c.id == bookings.c.clinic_id)
            .join(services, services.c.id == bookings.c.service_id)
            .where(reschedules.c.cgst.is_not(None), reschedules.c.id > last)
            .order_by(reschedules.c.id)
            .limit(lines.BATCH)
        ).all()
        if not rows:
            break
        names = {}
        for booking_id, name in conn.execute(
            sa.select(booking_providers.c.booking_id, providers.c.display_name)
            .join(providers, providers.c.id == booking_providers.c.provider_id)
            .where(booking_providers.c.booking_id.in_(sorted({r[1] for r in rows})))
            .order_by(booking_providers.c.booking_id, providers.c.display_name)
        ):
            names.setdefault(booking_id, []).append(name)
        conn.execute(
            sa.update(reschedules)
            .where(reschedules.c.id == sa.bindparam("r_id"))
            .values(
                invoice_clinic_name=sa.bindparam("r_clinic"),
                invoice_description=sa.bindparam("r_description"),
            ),
            [
                {
                    "r_id": fee_id,
                    "r_clinic": clinic_name,
                    "r_description": lines._description(service_name, names.get(booking_id, [])),
                }
                for fee_id, booking_id, clinic_name, service_name in rows
            ],
        )
        last = rows[-1][0]


def downgrade():
    op.drop_column("reschedules", "invoice_description")
    op.drop_column("reschedules", "invoice_clinic_name")
