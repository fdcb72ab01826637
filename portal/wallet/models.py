"""A manual wallet adjustment: an administrator's credit or debit of a patient's wallet,
applied at once or after a second administrator's approval, with the balances around it."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.states import AdjustmentStatus
from portal.extensions import db

STATUSES = ", ".join(f"'{s}'" for s in AdjustmentStatus)


class WalletAdjustment(db.Model):
    __tablename__ = "wallet_adjustments"
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({STATUSES})", name="status_known"),
        sa.CheckConstraint("amount <> 0", name="amount_nonzero"),
        sa.CheckConstraint(
            "decided_by_id IS NULL OR decided_by_id <> created_by_id", name="second_admin"
        ),
        # The 24-hour window: one admin's adjustments to one wallet, by time.
        sa.Index("ix_wallet_adjustments_window", "patient_id", "created_by_id", "created_at"),
        # A form sent twice (double click, a retried request) makes one adjustment.
        sa.UniqueConstraint("created_by_id", "request_token", name="uq_wallet_adjustments_token"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))  # window index leads
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # paise; credit > 0, debit < 0
    note: Mapped[str] = mapped_column(sa.Text)  # internal, for the audit trail
    public_reason: Mapped[str] = mapped_column(sa.String(200))  # the patient sees it
    status: Mapped[str] = mapped_column(
        sa.String(20), default=AdjustmentStatus.PENDING_APPROVAL, index=True
    )
    # |amounts| by this admin to this wallet in the 24 h up to this one, itself included.
    window_total: Mapped[int] = mapped_column(sa.BigInteger)
    needs_approval: Mapped[bool] = mapped_column(default=False)
    request_token: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[object | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    applied_at: Mapped[object | None] = mapped_column(UTCDateTime)
    balance_before: Mapped[int | None] = mapped_column(sa.BigInteger)
    balance_after: Mapped[int | None] = mapped_column(sa.BigInteger)
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_transactions.id")
    )

    patient = relationship("User", foreign_keys=[patient_id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])

    @property
    def is_credit(self):
        return self.amount > 0

    @property
    def magnitude(self):
        return abs(self.amount)

    def __repr__(self):
        return f"<WalletAdjustment {self.id} {self.amount} {self.status}>"
