"""Policy versions and the one-row change stamp.

A version holds every value of the policy as JSON (``portal.domain.policy_data``), so a
booking that points at it is refunded and re-priced by exactly the numbers it was sold
under. Approved versions are never edited; a change is a new row. The version in force at a
time is the approved one with the latest ``effective_from`` at or before it (ties: the
higher id).

``policy_stamp`` has one row whose ``token`` changes (a fresh random value) with every
write to ``policy_versions``: each process keeps the versions in memory and compares its
token with the stored one once per request or job (a primary-key read), so a change made
by any process is seen by all of them at their next request. A random token rather than a
counter: a rolled-back change or an emptied table never leaves an old token current.

Database guarantee: a change that needed approval was approved by someone other than its
author (a change that needs none is approved by its author in the same transaction; an
author may withdraw, i.e. reject, their own)."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.domain.states import PolicyStatus
from portal.extensions import db

STATUSES = tuple(PolicyStatus)


class PolicyVersion(db.Model):
    __tablename__ = "policy_versions"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status_known"
        ),
        sa.CheckConstraint(
            "status <> 'APPROVED' OR NOT needs_approval OR decided_by_id <> created_by_id",
            name="second_admin",
        ),
        sa.Index("ix_policy_versions_status_effective", "status", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    values: Mapped[dict] = mapped_column(sa.JSON)
    effective_from: Mapped[object] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(12), default=PolicyStatus.PENDING)
    needs_approval: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[object | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(sa.String(500), default="")

    created_by = db.relationship("User", foreign_keys=[created_by_id], lazy="joined")
    decided_by = db.relationship("User", foreign_keys=[decided_by_id], lazy="joined")


class PolicyStamp(db.Model):
    __tablename__ = "policy_stamp"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(32))
    changed_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
