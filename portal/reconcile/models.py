"""A reconciliation run is a record of one pass over a window; a case is one record (a
payment, refund, payout or settlement) compared on both sides, keyed by its reference so a
re-run of the same window updates cases instead of adding them."""

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.states import ReconCaseStatus as CaseStatus
from portal.domain.states import ReconRunStatus as RunStatus
from portal.extensions import db
from portal.reconcile import matching

# A case still waiting for something (the next run, or an admin): the one list of them.
OPEN_CASE = (CaseStatus.DISCREPANCY, CaseStatus.PENDING)


class CaseKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"
    SETTLEMENT = "settlement"


class Reason(StrEnum):
    STATUS_DIFFERS = "status_differs"
    AMOUNT_DIFFERS = "amount_differs"
    MISSING_OURS = "missing_ours"  # at the gateway, not in our records
    MISSING_GATEWAY = "missing_gateway"  # in our records, not at the gateway
    TIME_DIFFERS = "time_differs"  # timestamps further apart than the tolerance
    DUPLICATE = "duplicate"
    NOT_SETTLED = "not_settled"  # captured, not settled by T+2 working days


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class ReconRun(db.Model):
    __tablename__ = "recon_runs"
    __table_args__ = (sa.CheckConstraint(_in("status", RunStatus), name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    window_start: Mapped[object] = mapped_column(UTCDateTime)
    window_end: Mapped[object] = mapped_column(UTCDateTime)
    trigger: Mapped[str] = mapped_column(sa.String(16))  # "schedule" or "admin"
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(sa.String(16), default=RunStatus.RUNNING)
    started_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    gateway_records: Mapped[int] = mapped_column(sa.Integer, default=0)
    our_records: Mapped[int] = mapped_column(sa.Integer, default=0)
    matched: Mapped[int] = mapped_column(sa.Integer, default=0)
    pending: Mapped[int] = mapped_column(sa.Integer, default=0)
    discrepancies: Mapped[int] = mapped_column(sa.Integer, default=0)
    new_discrepancies: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)

    started_by = relationship("User")


class ReconCase(db.Model):
    """One record compared on both sides. ``reference`` is the gateway id (pay_, rfnd_,
    pout_, setl_) or, for a record of ours the gateway never gave an id, ``<kind>:<our id>``."""

    __tablename__ = "recon_cases"
    __table_args__ = (
        sa.UniqueConstraint("kind", "reference", name="uq_recon_cases_kind_reference"),
        sa.CheckConstraint(_in("kind", CaseKind), name="kind_known"),
        sa.CheckConstraint(_in("status", CaseStatus), name="status_known"),
        sa.Index("ix_recon_cases_status_reason", "status", "reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    reference: Mapped[str] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(24))
    visit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visits.id"), index=True)
    our_type: Mapped[str | None] = mapped_column(sa.String(32))  # e.g. "payment", "refund"
    our_id: Mapped[int | None] = mapped_column(sa.Integer)
    our_amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # paise
    gateway_amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # paise
    our_status: Mapped[str | None] = mapped_column(sa.String(24))
    gateway_status: Mapped[str | None] = mapped_column(sa.String(24))
    ours: Mapped[dict | None] = mapped_column(sa.JSON)  # our side as compared
    theirs: Mapped[dict | None] = mapped_column(sa.JSON)  # the gateway's record as fetched
    # The sides in short (matching.Side.key): what a run compares to write only changes.
    ours_key: Mapped[str | None] = mapped_column(sa.String(96))
    theirs_key: Mapped[str | None] = mapped_column(sa.String(96))
    first_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("recon_runs.id"))
    last_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("recon_runs.id"))
    first_seen_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[object | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(sa.String(16))  # "synced" or "accepted"
    note: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def gateway_time_label(self):
        """How the case page names the gateway's time (``matching.gateway_time_label``)."""
        return matching.gateway_time_label(self.kind)

    def owner_ids(self):
        return set()  # admins only
