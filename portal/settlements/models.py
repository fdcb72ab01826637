"""Settlements read from Razorpay (``/settlements``) and their recon rows
(``/settlements/recon/combined``): one row per settlement, one per payment, refund,
transfer or adjustment it covers. Money is integer paise. A settlement is stored once (its
Razorpay id is unique) and posted to the ledger once (key ``settlement:<id>``; its
transfers and adjustments once its rows are complete, key ``settlement:<id>:adjustments``)."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.extensions import db

from . import checks


class Settlement(db.Model):
    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    razorpay_settlement_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16))  # the gateway's word, e.g. processed
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # paid into the bank
    fees: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # Razorpay's fees, tax included
    tax: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # the GST part of the fees
    utr: Mapped[str | None] = mapped_column(sa.String(40))
    settled_at: Mapped[object] = mapped_column(UTCDateTime, index=True)  # at the gateway
    ingested_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_transactions.id")
    )
    # Its recon rows reach its gross (``checks.is_complete``): set in the unit of work that
    # writes its rows, so an ingest and the lookback's check read no rows to know it.
    rows_complete: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    # When the daily job flagged it as leaving the lookback with its rows incomplete (no
    # fetch reads it after that); None otherwise.
    left_incomplete_at: Mapped[object | None] = mapped_column(UTCDateTime)

    items = relationship(
        "SettlementItem",
        back_populates="settlement",
        order_by="SettlementItem.id",
        cascade="all, delete-orphan",
    )

    @property
    def gross(self):
        """What left gateway clearing: the amount paid out plus the fees kept."""
        return self.amount + self.fees

    def rows_note(self, items=None):
        """What does not add up between this header and its recon rows (``items``, or
        its own), for its page; None when they agree (see ``checks``)."""
        items = self.items if items is None else items
        totals = checks.totals_of((i.signed_amount, i.fee, i.tax) for i in items)
        return checks.describe(checks.differences(self.amount, self.fees, self.tax, totals))

    def adjusted(self, items=None):
        """Its transfers and adjustments' signed total (``checks.adjusted``): what its
        posting to ``gateway_adjustments`` moves once its rows are complete."""
        items = self.items if items is None else items
        return checks.adjusted((i.entity_type, i.signed_amount) for i in items)

    @property
    def given_up(self):
        """Left the lookback with its rows incomplete: no fetch reads its day again."""
        return self.left_incomplete_at is not None and not self.rows_complete

    def owner_ids(self):
        return set()  # admins only


class SettlementItem(db.Model):
    """One payment, refund, transfer or adjustment a settlement covers (a recon row).
    ``entity_id`` is unique: Razorpay settles each once."""

    __tablename__ = "settlement_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(
        sa.ForeignKey("settlements.id", ondelete="CASCADE"), index=True
    )
    entity_id: Mapped[str] = mapped_column(sa.String(40), unique=True)  # pay_…, rfnd_…, adj_…
    entity_type: Mapped[str] = mapped_column(sa.String(16))  # payment | refund | adjustment …
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    # Razorpay's own: what the row credits to the settlement (a payment: its amount less
    # its fee) or debits from it. None on rows stored before they were kept.
    credit: Mapped[int | None] = mapped_column(sa.BigInteger)
    debit: Mapped[int | None] = mapped_column(sa.BigInteger)
    fee: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tax: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    payment_entity_id: Mapped[str | None] = mapped_column(sa.String(40))  # a refund's payment
    order_id: Mapped[str | None] = mapped_column(sa.String(40))
    method: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[object | None] = mapped_column(UTCDateTime)  # the payment's capture

    settlement = relationship("Settlement", back_populates="items")

    @property
    def signed_amount(self):
        """Its amount as the settlement's gross counts it (negative for a debit)."""
        return checks.signed_amount(self.entity_type, self.amount, self.credit, self.debit)
