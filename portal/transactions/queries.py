"""What the transactions console lists, sums and shows. Every read is one query on
``money_movements`` (plus, for a page, the names of what the rows link to)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking.models import FeeCapture
from portal.booking.reschedule_payment import unapplied_key
from portal.catalog.models import Provider
from portal.db import contains_text
from portal.domain.states import RefundStatus
from portal.extensions import db
from portal.ledger.models import LedgerTransaction
from portal.pagination import Order, keyset_page
from portal.payouts.models import Payout

from . import references
from .filters import MovementFilter, utc_bounds
from .models import (
    BUCKET_BANK_OUT,
    BUCKET_CASH_OUT,
    BUCKET_IN,
    BUCKET_PAYOUT,
    BUCKET_REFUND,
    FEE_CAPTURE,
    PAYOUT,
    PAYOUT_REVERSAL,
    REFUND_WALLET,
    SETTLEMENT,
    MoneyMovement,
)

M = MoneyMovement
ORDERS = (Order(M.occurred_at, descending=True), Order(M.id, descending=True))
PARTY_LIST_MAX = 1000  # people a party filter binds as a list; more: subqueries

# reference column -> SQL clause choosing the rows whose reconciliation status matches
ReconClause = Callable[[sa.ColumnElement], sa.ColumnElement]


def _listed(ids):
    """The ids the SELECT ``ids`` finds, or None when there are more than
    ``PARTY_LIST_MAX``."""
    found = list(db.session.scalars(ids.limit(PARTY_LIST_MAX + 1)))
    return None if len(found) > PARTY_LIST_MAX else found


def _one_of(column, ids):
    if not ids:
        return sa.false()
    if db.session.get_bind().dialect.name == "postgresql":
        # one array parameter, not one per id (as the reconciliation filter's references)
        return column == sa.any_(sa.bindparam("party", ids, type_=ARRAY(sa.Integer), unique=True))
    return column.in_(ids)


def _party_clause(text):
    """Movements of every patient whose name or e-mail, and of every provider whose name,
    contains ``text`` (``%`` and ``_`` meaning themselves), however many they are (the
    ids were once cut at 50, in no order, and the others' movements silently left out).

    Up to ``PARTY_LIST_MAX`` of each are read first and bound as lists, so the planner
    sees how many: a few people, their (id, time) indexes; many, the time index, stopping
    at a page. More than that, both are subqueries under one OR, which PostgreSQL cannot
    turn into a join: it hashes them and probes the rows while walking the time index,
    stopping at a page. (A subquery for a few people walked the whole window: one patient
    in a year of 200,000 rows, 42 ms against 11; alone, it became a join, its LIKE
    estimated at a few users: every patient's rows read and sorted for a page, 844 ms.)"""
    users = sa.select(User.id).where(
        sa.or_(contains_text(User.name, text), contains_text(User.email, text))
    )
    providers = sa.select(Provider.id).where(contains_text(Provider.display_name, text))
    user_ids, provider_ids = _listed(users), _listed(providers)
    if user_ids is None or provider_ids is None:
        return sa.or_(M.patient_id.in_(users), M.provider_id.in_(providers))
    return sa.or_(_one_of(M.patient_id, user_ids), _one_of(M.provider_id, provider_ids))


def conditions(f: MovementFilter, recon_clause: ReconClause | None = None):
    where = []
    if not f.every_date:  # every date: a reference's rows, read by index (filters.window_for)
        start, end = utc_bounds(f.start, f.end)
        where += [M.occurred_at >= start, M.occurred_at < end]
    if f.type:
        where.append(M.type == f.type)
    if f.status:
        where.append(M.status == f.status)
    if f.visit_number:
        where.append(M.visit_number == f.visit_number)
    if f.reference:
        # resolved first (one statement), so the rows are read by index, not filtered
        found = references.find(f.reference)
        where.append(references.movement_clause(found) if found else sa.false())
    if f.min_amount is not None:
        where.append(M.amount >= f.min_amount)
    if f.max_amount is not None:
        where.append(M.amount <= f.max_amount)
    if f.party:
        where.append(_party_clause(f.party))
    if f.recon and recon_clause is not None:
        where.append(recon_clause(M.reference))
    return where


def movements_page(f: MovementFilter, *, recon_clause=None, after=None, before=None, per_page=50):
    query = sa.select(M).where(*conditions(f, recon_clause))
    return keyset_page(query, ORDERS, after=after, before=before, per_page=per_page)


@dataclass(frozen=True)
class Summary:
    count: int
    money_in: int
    refunds: int
    payouts: int  # less the payouts reversed (their reversal's rows: negative)
    gateway_fees: int  # Razorpay's on money in, RazorpayX's (GST included) on payouts
    # money in − refunds − payouts − gateway fees − cash paid out at the desk − bank
    # transfers paid out
    net: int
    # What the rows show besides the cash above, so the sums agree with them (a filter to
    # wallet refunds showed "Refunds ₹0" above ₹400 of rows): refunds put in a wallet
    # (done, no cash left); settlements, our money from Razorpay to our bank, signed (what
    # reached it); and every other row that moves no cash (wallet credits and debits,
    # adjustments, penalties, pending or failed rows), counted only: their amounts are of
    # different kinds and signs, and their sum meant nothing (review finding 2).
    wallet_refunds: int = 0
    settled_count: int = 0
    settled: int = 0
    not_cash_count: int = 0
    # The TDS withheld from the payouts counted above (their gross less what reached the
    # providers), less that of the payouts reversed: held for the government, so still in
    # the net. Dated as they are: not the TDS report's figure for a period
    # (docs/transactions.md).
    tds: int = 0
    # Wallet balances handed to patients in cash at the desk (``portal.wallet.cash``): cash
    # out, as a desk payment is cash in (review finding: booked as an adjustment, the net
    # kept it).
    cash_out: int = 0
    # Wallet balances the clinic's bank sent to patients (``portal.wallet.bank``): bank out.
    bank_out: int = 0

    @classmethod
    def of(cls, count, sums) -> Summary:
        """From the row count and the ``summary_terms`` sums (in ``TERMS`` order); the net
        is worked out from them here, for the console and the CSV alike."""
        figures = dict(zip(TERMS, map(int, sums), strict=True))
        net = (
            figures["money_in"]
            - figures["refunds"]
            - figures["payouts"]
            - figures["gateway_fees"]
            - figures["cash_out"]
            - figures["bank_out"]
        )
        return cls(count=int(count), net=net, **figures)

    def lines(self) -> list[SummaryLine]:
        """The labelled figures, in order, as the console shows them and the CSV's summary
        rows name them (they were written out in both and read differently)."""
        return [
            SummaryLine("Money in", "money_in", self.money_in),
            SummaryLine("Refunds", "refunds", self.refunds, "to the original payment"),
            SummaryLine(
                "Payouts", "payouts", self.payouts, "processed, less those the bank sent back"
            ),
            SummaryLine("Gateway fees", "gateway_fees", self.gateway_fees),
            SummaryLine(
                "Cash paid out at the desk",
                "cash_out",
                self.cash_out,
                "wallet balances handed to patients in cash",
            ),
            SummaryLine(
                "Bank transfers paid out",
                "bank_out",
                self.bank_out,
                "wallet balances the clinic's bank sent to patients (NEFT, IMPS, UPI)",
            ),
            # Cash in less cash out: not revenue (TDS held for the government is in it).
            SummaryLine("Net cash received", "net", self.net, total=True),
            # Not a term of the net (re-read: it sat among them, and one adding the cash
            # lines counted it): the payouts' TDS, held out of their gross, so in the net.
            SummaryLine(
                "TDS withheld from payouts",
                "tds",
                self.tds,
                "besides the payouts above (their gross less what reached the providers),"
                " held for the government: in the net, not taken from it",
                group=BESIDE,
            ),
            SummaryLine(
                "Refunds to wallets (not cash)",
                "wallet_refunds",
                self.wallet_refunds,
                "not in the net",
                group=NO_CASH,
            ),
            SummaryLine(
                "Settlements to our bank",
                "settled",
                self.settled,
                f"{self.settled_count}: our own money, from Razorpay to our bank (negative when"
                " refunds and adjustments exceeded the payments settled); not in the net,"
                " whose money in counted those payments when captured",
                group=NO_CASH,
            ),
            SummaryLine(
                "Other rows moving no cash",
                "not_cash",
                None,
                "wallet credits and debits, adjustments, provider penalties, visits confirmed"
                " with nothing paid, pending or failed: counted, not added up (amounts of"
                " different kinds)",
                group=NO_CASH,
                count=self.not_cash_count,
            ),
        ]


# A summary line's group, each a table of the console's: the cash lines, which make the
# net (money in − refunds − payouts − gateway fees − cash paid out at the desk − bank
# transfers paid out) and the net; a figure beside them that is no term of it (the
# payouts' TDS); and what moved no cash.
CASH, BESIDE, NO_CASH = "cash", "beside", "no_cash"
GROUPS = (CASH, BESIDE, NO_CASH)


@dataclass(frozen=True)
class SummaryLine:
    label: str
    key: str  # the Summary field; the console's data-sum
    paise: int | None  # None: a count only (``count``)
    # The console's explanation beside the label; the CSV's summary row has the label
    # alone.
    note: str = ""
    group: str = CASH  # which of the console's tables (GROUPS)
    total: bool = False
    count: int | None = None


def summary_terms() -> dict[str, sa.ColumnElement]:
    """What each summary figure takes of one movement, as SQL (paise; 1 or 0 for a row it
    counts), by ``Summary`` field. ``summary`` sums them over the filtered set; the CSV
    reads them beside each row it writes and adds them up (``Tally``), so its summary is
    its own rows' by the same rule (docs/transactions.md "The CSV"). A payout counts in
    the period it was processed and its reversal, a row of its own with negative figures,
    in the period the money came back (``projectors.project_payout``): the payouts bucket
    sums both, so a period's figures never change once it is over."""
    wallet_refund = sa.and_(
        M.bucket.is_(None),
        M.type == REFUND_WALLET,
        M.failed.is_(False),
        M.status == RefundStatus.PROCESSED,
    )
    settlement = sa.and_(M.bucket.is_(None), M.type == SETTLEMENT)
    not_cash = sa.and_(M.bucket.is_(None), sa.not_(wallet_refund), sa.not_(settlement))

    def of(condition, value):
        return sa.case((condition, value), else_=0)

    return {
        "money_in": of(M.bucket == BUCKET_IN, M.amount),
        "refunds": of(M.bucket == BUCKET_REFUND, M.amount),
        "payouts": of(M.bucket == BUCKET_PAYOUT, M.net),
        # Razorpay's fees on money in and RazorpayX's on payouts: both left the bank (a
        # reversal's row gives its payout's back)
        "gateway_fees": of(
            M.bucket.in_((BUCKET_IN, BUCKET_PAYOUT)), sa.func.coalesce(M.gateway_fee, 0)
        ),
        "cash_out": of(M.bucket == BUCKET_CASH_OUT, M.amount),
        "bank_out": of(M.bucket == BUCKET_BANK_OUT, M.amount),
        "wallet_refunds": of(wallet_refund, M.amount),
        "settled_count": of(settlement, 1),
        # what reached the bank: the settlement's amount (its row's net)
        "settled": of(settlement, M.net),
        "not_cash_count": of(not_cash, 1),
        "tds": of(M.bucket == BUCKET_PAYOUT, sa.func.coalesce(M.tds, 0)),
    }


TERMS = tuple(summary_terms())  # the figures' names, in the order the terms are read


def summary(f: MovementFilter, *, recon_clause=None) -> Summary:
    """Sums of the filtered set, in one SQL query (paise): the console's."""
    terms = summary_terms()
    row = db.session.execute(
        sa.select(
            sa.func.count().label("count"),
            *(sa.func.coalesce(sa.func.sum(term), 0).label(name) for name, term in terms.items()),
        ).where(*conditions(f, recon_clause))
    ).one()
    return Summary.of(row.count, [row._mapping[name] for name in TERMS])


class Tally:
    """A summary added up from rows as they are read (the CSV's, as it writes them): each
    row gives its ``summary_terms`` values, in ``TERMS`` order. Integer paise. Summed a
    few thousand rows at a time, column by column (``sum`` over ``zip``, in C), not row by
    row in Python: on the hot path of a million-row export."""

    FOLD_EVERY = 2000

    def __init__(self):
        self.count = 0
        self.sums = [0] * len(TERMS)
        self._pending = []

    def add(self, terms):
        self._pending.append(terms)
        if len(self._pending) >= self.FOLD_EVERY:
            self._fold()

    def _fold(self):
        if self._pending:
            self.count += len(self._pending)
            self.sums = [s + sum(c) for s, c in zip(self.sums, zip(*self._pending), strict=True)]
            self._pending = []

    def summary(self) -> Summary:
        self._fold()
        return Summary.of(self.count, self.sums)


def tds_given_back():
    """The condition that a row is a payout whose TDS was given back: it failed for good
    (or was stopped) or was reversed, so its money is back on the provider's payable, TDS
    un-deducted (``payouts.returned``), and the TDS report takes it back. Its row keeps the
    TDS it was made with; a failed payout waiting for its retry still has it withheld. The
    row alone cannot tell (its status is FAILED either way): an indexed look at its payout,
    for failed payout rows only."""
    return sa.and_(
        M.type == PAYOUT,
        M.failed.is_(True),
        sa.exists().where(Payout.id == M.source_id, Payout.returned.is_(True)),
    )


def given_back(rows) -> set[int]:
    """The ids of ``rows`` (movements) whose payout's TDS was given back
    (:func:`tds_given_back`): one statement, and none unless a failed payout is among them."""
    failed = [m.id for m in rows if m.type == PAYOUT and m.failed]
    if not failed:
        return set()
    return set(db.session.scalars(sa.select(M.id).where(M.id.in_(failed), tds_given_back())))


def movement(movement_id) -> MoneyMovement | None:
    return db.session.get(MoneyMovement, movement_id)


def movement_for(source, source_id) -> MoneyMovement | None:
    return db.session.scalar(sa.select(M).where(M.source == source, M.source_id == source_id))


def other_half(m: MoneyMovement) -> MoneyMovement | None:
    """A payout's row and its reversal's are two halves of one payout: the other one (each
    detail page links to it), or None (any other row, a payout not reversed)."""
    if m.source == PAYOUT_REVERSAL:
        return movement_for(PAYOUT, m.source_id)
    if m.source == PAYOUT and m.failed:
        return movement_for(PAYOUT_REVERSAL, m.source_id)
    return None


def ledger_postings(source, source_id, visit_id=None) -> list[LedgerTransaction]:
    """Ledger transactions posted for the movement's record, oldest first; a payment's
    include its visit's (the capture posts against the visit)."""
    if source == "ledger":
        txn = db.session.get(LedgerTransaction, source_id)
        return [txn] if txn else []
    if source == FEE_CAPTURE:  # its wallet credit, posted against its reschedule
        capture = db.session.get(FeeCapture, source_id)
        if capture is None:
            return []
        key = unapplied_key(capture.reschedule_id, capture.razorpay_payment_id)
        return list(
            db.session.scalars(
                sa.select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
            )
        )
    about = [
        sa.and_(
            LedgerTransaction.reference_type == source,
            LedgerTransaction.reference_id == str(source_id),
        )
    ]
    if source == "payment" and visit_id:
        about.append(
            sa.and_(
                LedgerTransaction.reference_type == "visit",
                LedgerTransaction.reference_id == str(visit_id),
            )
        )
    return list(
        db.session.scalars(
            sa.select(LedgerTransaction).where(sa.or_(*about)).order_by(LedgerTransaction.id)
        )
    )


def audit_trail(source, source_id, visit_id=None) -> list[AuditEntry]:
    """Audit rows about the record (and its visit), oldest first."""
    about = [sa.and_(AuditEntry.object_type == source, AuditEntry.object_id == str(source_id))]
    if visit_id:
        about.append(
            sa.and_(AuditEntry.object_type == "visit", AuditEntry.object_id == str(visit_id))
        )
    return list(
        db.session.scalars(
            sa.select(AuditEntry).where(sa.or_(*about)).order_by(AuditEntry.at, AuditEntry.id)
        )
    )


def movement_ids_by_reference(references) -> dict[str, int]:
    """Razorpay id -> the console row showing it, for links from other pages."""
    refs = sorted({r for r in references if r})
    if not refs:
        return {}
    return dict(db.session.execute(sa.select(M.reference, M.id).where(M.reference.in_(refs))).all())
