"""Ledger tables. Entries carry a signed amount in paise: debit positive, credit
negative (never zero). A transaction's entries sum to zero; entries are append-only
(a correction is a new, reversing transaction)."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.append_only import append_only
from portal.db import UTCDateTime, utcnow
from portal.extensions import db

from .accounts import KINDS


class LedgerAccount(db.Model):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")", name="kind_known"
        ),
        sa.Index("ix_ledger_accounts_owner", "owner_type", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(80), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    owner_type: Mapped[str | None] = mapped_column(sa.String(32))
    owner_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self):
        return f"<LedgerAccount {self.code} {self.kind}>"


class LedgerTransaction(db.Model):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        sa.Index("ix_ledger_transactions_reference", "reference_type", "reference_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40), index=True)
    reference_type: Mapped[str | None] = mapped_column(sa.String(40))
    reference_id: Mapped[str | None] = mapped_column(sa.String(64))
    # A posting with a key can never happen twice (the database enforces it).
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    memo: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    entries = relationship(
        "LedgerEntry", back_populates="transaction", order_by="LedgerEntry.id", lazy="selectin"
    )

    def __repr__(self):
        return (
            f"<LedgerTransaction {self.id} {self.kind} {self.reference_type}:{self.reference_id}>"
        )


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (sa.CheckConstraint("amount <> 0", name="amount_nonzero"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # paise; debit > 0, credit < 0

    transaction = relationship("LedgerTransaction", back_populates="entries")
    account = relationship("LedgerAccount", lazy="joined")

    @property
    def debit(self) -> int:
        return self.amount if self.amount > 0 else 0

    @property
    def credit(self) -> int:
        return -self.amount if self.amount < 0 else 0


# Money history: a correction is a reversing transaction (POLICY.md), so no column of
# either table may change once posted, nor a row go (portal/append_only.py).
for _model in (LedgerTransaction, LedgerEntry):
    append_only(_model, "ledger", instead="; post a reversing transaction instead")
