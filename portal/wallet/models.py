"""A manual wallet adjustment: an administrator's credit or debit of a patient's wallet,
applied at once or after a second administrator's approval, with the balances around it.
A cash pay-out at the desk (``portal.wallet.cash``) is one of its kinds: a debit whose
money left the desk's cash, with the desk receipt's number; a pay-out by bank transfer
(``portal.wallet.bank``) another: a debit whose money left the clinic's bank, with the
bank's transfer reference (UTR) in the same column."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.states import AdjustmentStatus
from portal.extensions import db

STATUSES = ", ".join(f"'{s}'" for s in AdjustmentStatus)

# What the adjustment is: a manual credit or debit (against the wallet-credit expense), the
# wallet's money handed to the patient in cash at the desk (out of ``cash_desk``), or sent
# to their bank account by the clinic's bank (out of ``bank``).
MANUAL, CASH_PAYOUT, BANK_PAYOUT = "manual", "cash_payout", "bank_payout"
KINDS = (MANUAL, CASH_PAYOUT, BANK_PAYOUT)
PAYOUTS = (CASH_PAYOUT, BANK_PAYOUT)  # the wallet's money paid out to the patient
# What the admins call each kind ("credit" and "debit" for a manual one, by its sign).
WHAT = {CASH_PAYOUT: "cash pay-out", BANK_PAYOUT: "bank transfer"}
# What ``receipt_no`` holds for each pay-out.
REFERENCE_NAMES = {CASH_PAYOUT: "desk receipt", BANK_PAYOUT: "UTR"}
# The bank pay-outs whose UTR is taken: applied or waiting (a rejected one frees it).
BANK_UTR_COUNTED = (
    f"kind = '{BANK_PAYOUT}' AND status IN "
    f"('{AdjustmentStatus.APPLIED}', '{AdjustmentStatus.PENDING_APPROVAL}')"
)


class WalletAdjustment(db.Model):
    __tablename__ = "wallet_adjustments"
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({STATUSES})", name="status_known"),
        sa.CheckConstraint("amount <> 0", name="amount_nonzero"),
        sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="kind_known"),
        # Cash only leaves the wallet, and only against a desk receipt.
        sa.CheckConstraint(
            f"kind <> '{CASH_PAYOUT}' OR (amount < 0 AND receipt_no IS NOT NULL)",
            name="cash_payout_receipt",
        ),
        # A bank transfer only leaves the wallet, and only with the bank's reference.
        sa.CheckConstraint(
            f"kind <> '{BANK_PAYOUT}' OR (amount < 0 AND receipt_no IS NOT NULL)",
            name="bank_payout_utr",
        ),
        sa.CheckConstraint(
            "decided_by_id IS NULL OR decided_by_id <> created_by_id", name="second_admin"
        ),
        # The 24-hour window: one admin's adjustments to one wallet, by time.
        sa.Index("ix_wallet_adjustments_window", "patient_id", "created_by_id", "created_at"),
        # The dashboard's daily pay-outs (at the desk, by bank): by kind, then when applied.
        sa.Index("ix_wallet_adjustments_kind_applied", "kind", "applied_at"),
        # One bank transfer, one pay-out: the UTR of every applied or waiting bank pay-out
        # once, whatever the wallet (``wallet.bank``; migration bankutr00001).
        sa.Index(
            "uq_wallet_adjustments_bank_utr",
            "receipt_no",
            unique=True,
            postgresql_where=sa.text(BANK_UTR_COUNTED),
            sqlite_where=sa.text(BANK_UTR_COUNTED),
        ),
        # A form sent twice (double click, a retried request) makes one adjustment.
        sa.UniqueConstraint("created_by_id", "request_token", name="uq_wallet_adjustments_token"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))  # window index leads
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(sa.String(16), default=MANUAL, server_default=MANUAL)
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # paise; credit > 0, debit < 0
    # A pay-out's reference: a cash pay-out's desk receipt, a bank transfer's UTR.
    receipt_no: Mapped[str | None] = mapped_column(sa.String(64))
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

    @property
    def is_cash_payout(self):
        return self.kind == CASH_PAYOUT

    @property
    def is_bank_payout(self):
        return self.kind == BANK_PAYOUT

    @property
    def is_payout(self):
        return self.kind in PAYOUTS

    @property
    def reference_name(self):
        """What ``receipt_no`` is ("desk receipt", "UTR"); None for a manual one."""
        return REFERENCE_NAMES.get(self.kind)

    @property
    def what(self):
        """What it is, in the admins' words: "credit", "debit", "cash pay-out" or "bank
        transfer"."""
        return WHAT.get(self.kind) or ("credit" if self.is_credit else "debit")

    def __repr__(self):
        return f"<WalletAdjustment {self.id} {self.amount} {self.status}>"
