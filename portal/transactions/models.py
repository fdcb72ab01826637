"""``money_movements``: a denormalised read table, one row per money movement (a payment, a
refund, a payout, a reschedule fee, a settlement, a ledger-only movement such as a provider
penalty or a wallet credit). It is never written by a use case directly: the projection
(``portal.transactions.projection``) rewrites a row from its source record whenever that
record changes, in the same transaction. Money is integer paise.

Why a table and not a UNION over payments, refunds, payouts …: the console filters and sums
1,000,000 rows under 100 ms (docs/transactions.md); that needs one table with composite
indexes ending in the list's order (occurred_at, id)."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.extensions import db

# Movement types (what the console's "type" filter offers).
PAYMENT_ONLINE = "payment_online"
PAYMENT_LINK = "payment_link"
PAYMENT_DESK = "payment_desk"
REFUND_GATEWAY = "refund_gateway"
REFUND_WALLET = "refund_wallet"
PAYOUT = "payout"
# A processed payout the bank sent back: a movement of its own (its source too, beside the
# payout's row: ``source_id`` is the payout's id), dated when the money came back, taking
# back the payout's net, fee and TDS in that period (docs/transactions.md).
PAYOUT_REVERSAL = "payout_reversal"
WALLET_CREDIT = "wallet_credit"
WALLET_DEBIT = "wallet_debit"
RESCHEDULE_FEE = "reschedule_fee"
PROVIDER_PENALTY = "provider_penalty"
SETTLEMENT = "settlement"
ADJUSTMENT = "adjustment"  # manual wallet adjustments (portal/wallet adds its projector)
# A wallet balance handed to the patient in cash at the desk (``portal.wallet.cash``): cash
# out of the business, as a desk payment is cash in.
CASH_PAYOUT = "cash_payout"
# A wallet balance sent to the patient's bank account by the clinic's bank
# (``portal.wallet.bank``): bank out, its reference the transfer's UTR.
BANK_PAYOUT = "bank_payout"
# A visit confirmed with nothing to pay (a 100 % coupon): no money moved, so no payment's
# row carries its invoice; its confirmation's row does, so its GST is in the GST column.
VISIT_UNPAID = "visit_unpaid"

TYPES = {
    PAYMENT_ONLINE: "Payment (online)",
    PAYMENT_LINK: "Payment (link)",
    PAYMENT_DESK: "Payment (desk)",
    REFUND_GATEWAY: "Refund (gateway)",
    REFUND_WALLET: "Refund (wallet)",
    PAYOUT: "Payout",
    PAYOUT_REVERSAL: "Payout reversed",
    WALLET_CREDIT: "Wallet credit",
    WALLET_DEBIT: "Wallet debit",
    RESCHEDULE_FEE: "Reschedule fee",
    PROVIDER_PENALTY: "Provider penalty",
    SETTLEMENT: "Settlement",
    ADJUSTMENT: "Manual adjustment",
    CASH_PAYOUT: "Cash paid out (desk)",
    BANK_PAYOUT: "Bank transfer paid out",
    VISIT_UNPAID: "Visit confirmed, nothing paid",
}

# The source of a reschedule fee payment recorded on its own (``booking.models.FeeCapture``).
FEE_CAPTURE = "fee_capture"

# What a final, successful movement counts as in the console's summary (None: moves no
# cash in or out of the business, e.g. a wallet credit or a settlement to our own bank).
# A payout's reversal is in the payouts bucket with negative figures: it takes back. Cash
# handed to a patient at the desk from their wallet is cash out of its own; a wallet
# balance the clinic's bank sent them, bank out of its own.
BUCKET_IN, BUCKET_REFUND, BUCKET_PAYOUT = "in", "refund", "payout"
BUCKET_CASH_OUT, BUCKET_BANK_OUT = "cash_out", "bank_out"
BUCKETS = (BUCKET_IN, BUCKET_REFUND, BUCKET_PAYOUT, BUCKET_CASH_OUT, BUCKET_BANK_OUT)


# What the summary sums, carried by the time and type indexes (index-only scans); ``tds``
# since migration mmtds0a10001 (the summary's TDS total).
SUMMED = ["bucket", "amount", "net", "gateway_fee", "tds"]


class MoneyMovement(db.Model):
    __tablename__ = "money_movements"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_id", name="uq_money_movements_source"),
        # Every filter's index ends in the list order (occurred_at, id), so a filtered page
        # is an index range read and the summary an index scan of the same range.
        # The time and type indexes carry the summed columns, so the summary of a window
        # is an index-only scan (PostgreSQL; docs/transactions.md has the figures).
        sa.Index(
            "ix_money_movements_time",
            "occurred_at",
            "id",
            postgresql_include=SUMMED,
        ),
        sa.Index(
            "ix_money_movements_type_time",
            "type",
            "occurred_at",
            "id",
            postgresql_include=SUMMED,
        ),
        sa.Index("ix_money_movements_status_time", "status", "occurred_at", "id"),
        sa.Index("ix_money_movements_failed_time", "failed", "occurred_at", "id"),
        sa.Index("ix_money_movements_patient_time", "patient_id", "occurred_at", "id"),
        sa.Index("ix_money_movements_provider_time", "provider_id", "occurred_at", "id"),
        sa.Index("ix_money_movements_visit", "visit_number"),
        sa.Index("ix_money_movements_reference", "reference"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    source: Mapped[str] = mapped_column(sa.String(24))  # the record's table: payment, refund …
    source_id: Mapped[int] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(24))
    status: Mapped[str] = mapped_column(sa.String(24))
    failed: Mapped[bool] = mapped_column(default=False)
    bucket: Mapped[str | None] = mapped_column(sa.String(8))
    occurred_at: Mapped[object] = mapped_column(UTCDateTime)
    patient_id: Mapped[int | None] = mapped_column(sa.Integer)
    provider_id: Mapped[int | None] = mapped_column(sa.Integer)
    party_name: Mapped[str | None] = mapped_column(sa.String(120))
    visit_id: Mapped[int | None] = mapped_column(sa.Integer)
    visit_number: Mapped[str | None] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    fee: Mapped[int | None] = mapped_column(sa.BigInteger)  # the care fee F
    platform_fee: Mapped[int | None] = mapped_column(sa.BigInteger)
    gst: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Less these, the breakup adds up to ``amount``: the coupon, and the wallet part when
    # another payment carries it (``booking.receipts.breakup_of``).
    discount: Mapped[int | None] = mapped_column(sa.BigInteger)
    wallet: Mapped[int | None] = mapped_column(sa.BigInteger)
    gateway_fee: Mapped[int | None] = mapped_column(sa.BigInteger)  # Razorpay's fee, tax included
    gateway_tax: Mapped[int | None] = mapped_column(sa.BigInteger)  # the GST part of it
    net: Mapped[int] = mapped_column(sa.BigInteger)
    # A payout's TDS withheld (its ``amount`` is the gross, ``net`` what reached the
    # provider: amount − tds); None on every other row.
    tds: Mapped[int | None] = mapped_column(sa.BigInteger)
    # pay_, rfnd_, pout_, setl_; a pay-out's desk receipt (64, as typed) or UTR
    reference: Mapped[str | None] = mapped_column(sa.String(64))
    utr: Mapped[str | None] = mapped_column(sa.String(40))
    settlement_reference: Mapped[str | None] = mapped_column(sa.String(40))
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped by every write of the row: a rebuild writes a row only if it still has the
    # version it saw before reading the record (``projection.rebuild``).
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")

    @property
    def type_label(self):
        return TYPES.get(self.type, self.type)

    @property
    def record_key(self):
        """(source, id) of the record the row describes: a payout's reversal is its payout's
        (its timeline, ledger postings and audit trail)."""
        if self.source == PAYOUT_REVERSAL:
            return PAYOUT, self.source_id
        return self.source, self.source_id

    @property
    def party_kind(self):
        return "provider" if self.provider_id and not self.patient_id else "patient"

    def owner_ids(self):
        return set()  # admins only
