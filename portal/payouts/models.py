"""Provider payouts: fund accounts (where the money goes), payout runs, payouts and
their attempts at RazorpayX. Money is integer paise. See docs/payouts.md.

Earnings are not a table: a completion posts ``complete:<booking id>`` to the ledger
and the provider's earnings are the credits on ``provider_payable:<provider id>``."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.bank_details import mask_account_number
from portal.domain.states import (
    FundAccountStatus,
    PayoutAttemptStatus,
    PayoutRunStatus,
    PayoutStatus,
)
from portal.extensions import db

# --- fund accounts -------------------------------------------------------------------------
BANK_ACCOUNT, VPA = "bank_account", "vpa"
FUND_ACCOUNT_KINDS = (BANK_ACCOUNT, VPA)

# --- payouts -------------------------------------------------------------------------------
# Statuses are the StrEnums of portal.domain.states (FundAccountStatus, PayoutStatus,
# PayoutAttemptStatus, PayoutRunStatus); their machines are the one place they change.
INSTANT_KIND, CYCLE_KIND, MANUAL_KIND = "INSTANT", "CYCLE", "MANUAL"
PAYOUT_KINDS = (INSTANT_KIND, CYCLE_KIND, MANUAL_KIND)
MODES = ("IMPS", "NEFT", "UPI")
# The ledger kinds of RazorpayX's fee and GST on a processed payout, and of their return on a
# reversal (``status._post_fees``, ``status._return_fees``): the console's payout row shows
# what they leave taken (``transactions.projectors``).
FEES_KIND, FEES_RETURNED_KIND = "payout_fees", "payout_fees_returned"
# The ledger kind of a payout reversed (``status._on_reversed``): its money back on the
# payable; when it had been processed, from the bank, so the console and the dashboard
# date the money's return by it.
REVERSED_KIND = "payout_reversed"
# ... and of a payout failed for good or stopped at RazorpayX (``status._on_failed``): its
# money back on the payable. Either is a return (``payouts.returned``).
FAILED_KIND = "payout_failed"
RETURNED_KINDS = (FAILED_KIND, REVERSED_KIND)
# ... and of a payout made: its gross taken off the payable (``create``).
INITIATED_KIND = "payout_initiated"


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class FundAccount(db.Model):
    """A provider's bank account or UPI id at RazorpayX. Only the masked details are
    kept. A provider has at most one *current* account; a change makes a new row (the old
    one stays for the history of payouts made to it)."""

    __tablename__ = "fund_accounts"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", FUND_ACCOUNT_KINDS), name="kind_known"),
        sa.CheckConstraint(_in("status", FundAccountStatus), name="status_known"),
        sa.Index("ix_fund_accounts_provider_current", "provider_id", "current"),
        # At most one current account per provider, whatever races the use cases lose.
        sa.Index(
            "uq_fund_accounts_one_current",
            "provider_id",
            unique=True,
            postgresql_where=sa.text("current"),
            sqlite_where=sa.text("current"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    holder_name: Mapped[str] = mapped_column(sa.String(120))
    ifsc: Mapped[str | None] = mapped_column(sa.String(11))
    account_last4: Mapped[str | None] = mapped_column(sa.String(4))
    vpa_masked: Mapped[str | None] = mapped_column(sa.String(120))
    razorpay_contact_id: Mapped[str | None] = mapped_column(sa.String(40))
    razorpay_fund_account_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    razorpay_validation_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    status: Mapped[str] = mapped_column(
        sa.String(12), default=FundAccountStatus.PENDING, index=True
    )
    status_reason: Mapped[str | None] = mapped_column(sa.String(255))
    registered_name: Mapped[str | None] = mapped_column(sa.String(120))
    current: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    validated_at: Mapped[object | None] = mapped_column(UTCDateTime)

    provider = relationship("Provider")

    @property
    def masked(self):
        """``HDFC0001234 ••••5678`` (the whole IFSC), or the masked UPI id: as the bank,
        earnings and admin pages show it."""
        if self.kind == VPA:
            return self.vpa_masked or ""
        return f"{self.ifsc} {mask_account_number(self.account_last4)}"

    @property
    def short_name(self):
        """``HDFC ••••5678`` (the IFSC's bank letters and the last four digits), or the
        masked UPI id: how the provider's money notices name it, enough to know which
        account and nothing more."""
        if self.kind == VPA:
            return self.vpa_masked or ""
        return f"{(self.ifsc or '')[:4]} {mask_account_number(self.account_last4 or '')}".strip()

    @property
    def can_pay(self):
        return self.status == FundAccountStatus.VALIDATED and bool(self.razorpay_fund_account_id)

    def owner_ids(self):
        return {self.provider.user_id} if self.provider else set()

    def __repr__(self):
        return f"<FundAccount {self.id} {self.kind} {self.status}>"


class PayoutRun(db.Model):
    """One WEEKLY or MONTHLY cycle (or an INSTANT sweep): which providers were paid, which
    carried forward. ``key`` (e.g. ``WEEKLY:2026-11-23``) makes a run happen once."""

    __tablename__ = "payout_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    schedule: Mapped[str] = mapped_column(sa.String(8))
    period_end: Mapped[object] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(8), default=PayoutRunStatus.OPEN)
    providers_considered: Mapped[int] = mapped_column(default=0)
    payouts_created: Mapped[int] = mapped_column(default=0)
    carried_forward: Mapped[int] = mapped_column(default=0)
    total_gross: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Providers not paid and why (carry-forward messages), at most a few hundred kept.
    skipped: Mapped[list | None] = mapped_column(sa.JSON, default=list)
    started_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The runner working through it now (``runs.run_cycle``), until when: one runner at a
    # time, so a second scheduler or tick does nothing; a claim left by a runner that
    # stopped runs out and the next tick takes the run over.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(32))
    claimed_until: Mapped[object | None] = mapped_column(UTCDateTime)
    # The provider whose turn was committed last (providers go in id order, each turn
    # commits this with the counts): a resumed run starts after it, counting none twice.
    last_provider_id: Mapped[int | None] = mapped_column()

    payouts = relationship("Payout", back_populates="run", order_by="Payout.id")


class Payout(db.Model):
    """Money owed to one provider, sent through RazorpayX.

    ``idempotency_key`` is the key of the current attempt (the X-Payout-Idempotency
    header); it is reused for every request of that attempt and replaced only after
    RazorpayX said the attempt FAILED. ``razorpay_payout_id`` is the current attempt's id.
    Every attempt is kept in :class:`PayoutAttempt`."""

    __tablename__ = "payouts"
    __table_args__ = (
        sa.CheckConstraint("gross > 0", name="gross_positive"),
        sa.CheckConstraint("tds >= 0", name="tds_non_negative"),
        sa.CheckConstraint("net > 0", name="net_positive"),
        sa.CheckConstraint("net = gross - tds", name="net_adds_up"),
        sa.CheckConstraint(_in("status", PayoutStatus), name="status_known"),
        sa.CheckConstraint(_in("kind", PAYOUT_KINDS), name="kind_known"),
        sa.CheckConstraint(_in("mode", MODES), name="mode_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        sa.CheckConstraint(
            "tds_rate_bps BETWEEN 0 AND 10000 AND tds_threshold >= 0", name="tds_rule_valid"
        ),
        sa.CheckConstraint(
            "tds_higher_section IS NULL OR tds_higher_section = '206AA'",
            name="tds_higher_section_known",
        ),
        sa.Index("ix_payouts_provider_status", "provider_id", "status"),
        sa.Index("ix_payouts_retry", "status", "next_retry_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    fund_account_id: Mapped[int] = mapped_column(sa.ForeignKey("fund_accounts.id"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payout_runs.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"))
    kind: Mapped[str] = mapped_column(sa.String(8))
    financial_year: Mapped[str] = mapped_column(sa.String(7), index=True)
    gross: Mapped[int] = mapped_column(sa.BigInteger)
    tds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    net: Mapped[int] = mapped_column(sa.BigInteger)
    tds_section: Mapped[str | None] = mapped_column(sa.String(8))
    # The TDS rule the payout was deducted under (the policy's rule for its year on the day
    # it was made, ``create.tds_for_next``): the year's later payouts replay it under its
    # own rule, and its TDS note states it, whatever the policy says since (migration
    # tdsrule00001 filled the rows made before).
    tds_rate_bps: Mapped[int] = mapped_column()
    tds_threshold: Mapped[int] = mapped_column(sa.BigInteger)
    # Why ``tds_rate_bps`` is above the rule's rate: "206AA", no PAN on file when the
    # payout was made (section 206AA's higher rate); None: the rule's own rate
    # (``domain.payouts.rate_for_payee``; migration tds206aa0001).
    tds_higher_section: Mapped[str | None] = mapped_column(sa.String(8))
    mode: Mapped[str] = mapped_column(sa.String(4))
    idempotency_key: Mapped[str] = mapped_column(sa.String(36), unique=True)
    razorpay_payout_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    utr: Mapped[str | None] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(12), default=PayoutStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_retry_at: Mapped[object | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(255))
    last_error: Mapped[str | None] = mapped_column(sa.String(255))
    held: Mapped[bool] = mapped_column(default=False)
    # As long as the hold form allows (``payouts.admin.MAX_REASON``; migration holdrsn00001).
    hold_reason: Mapped[str | None] = mapped_column(sa.String(2000))
    alerted: Mapped[bool] = mapped_column(default=False)
    # Set once the money went back to the payable (final failure or reversal).
    returned: Mapped[bool] = mapped_column(default=False)
    # The MANUAL payout an admin's retry made of this returned one (``admin.retry_payout_now``,
    # set under the payout's lock): a returned payout is retried once. Unique: a payout
    # replaces at most one.
    retried_by_payout_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("payouts.id"), unique=True
    )
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    processed_at: Mapped[object | None] = mapped_column(UTCDateTime, index=True)  # dashboard

    provider = relationship("Provider")
    fund_account = relationship("FundAccount")
    run = relationship("PayoutRun", back_populates="payouts")
    attempt_rows = relationship(
        "PayoutAttempt", back_populates="payout", order_by="PayoutAttempt.number", lazy="selectin"
    )

    @property
    def counts_for_tds(self):
        """Part of the financial year's gross paid (not returned to the payable)."""
        return not self.returned

    def owner_ids(self):
        return {self.provider.user_id} if self.provider else set()

    def __repr__(self):
        return f"<Payout {self.id} {self.status} {self.gross}>"


class PayoutAttempt(db.Model):
    """One payout created at RazorpayX (one idempotency key). A retry after a FAILED
    attempt is a new attempt with a new key; while an attempt may still be processing its
    key is reused for every request."""

    __tablename__ = "payout_attempts"
    __table_args__ = (
        sa.UniqueConstraint("payout_id", "number", name="uq_payout_attempts_payout_number"),
        sa.CheckConstraint(_in("status", PayoutAttemptStatus), name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(sa.ForeignKey("payouts.id"), index=True)
    number: Mapped[int] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(sa.String(36), unique=True)
    razorpay_payout_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    status: Mapped[str] = mapped_column(sa.String(12), default=PayoutAttemptStatus.SENDING)
    requests: Mapped[int] = mapped_column(default=0)
    # When its first request went to RazorpayX (None until sent): an admin may mark an
    # attempt never answered as failed only a day after it (admin.mark_failed_refusal).
    first_request_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # When its latest request went (a resend under the same key may still be creating the
    # payout at RazorpayX for a while after it: admin.mark_failed_refusal waits).
    # Reconciliation dates the payout by these two (indexed: a run reads a window).
    last_request_at: Mapped[object | None] = mapped_column(UTCDateTime, index=True)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(255))
    # indexed: reconciliation reads a window of attempts (never sent ones by this)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    payout = relationship("Payout", back_populates="attempt_rows")
