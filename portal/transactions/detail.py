"""One movement's whole story: its record, the timeline of what happened to it (the
record's own attempt log, its ledger postings), and the gateway's record of it fetched
live, beside ours."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from portal.booking.models import FeeCapture, Reschedule
from portal.booking.postings import CLOSED_ACCOUNT_CAPTURE
from portal.extensions import db
from portal.gateway import get_payin
from portal.gateway.errors import GatewayError, NotFound
from portal.ledger.models import LedgerTransaction
from portal.payments.models import Payment
from portal.payouts.gateway import gateway as payouts_gateway
from portal.payouts.models import Payout, PayoutAttempt
from portal.refunds.models import Refund
from portal.settlements.models import Settlement
from portal.wallet.models import WalletAdjustment

from . import queries
from .models import FEE_CAPTURE, PAYOUT_REVERSAL, MoneyMovement

SOURCES = {
    "payment": Payment,
    "refund": Refund,
    "payout": Payout,
    PAYOUT_REVERSAL: Payout,  # a payout's reversal: the payout's story
    "reschedule": Reschedule,
    FEE_CAPTURE: FeeCapture,
    "settlement": Settlement,
    "wallet_adjustment": WalletAdjustment,
}


@dataclass(frozen=True)
class Event:
    at: object
    what: str
    detail: str = ""
    failed: bool = False


def record_of(m: MoneyMovement):
    model = SOURCES.get(m.source)
    return db.session.get(model, m.source_id) if model else None


def timeline(m: MoneyMovement, record=None) -> list[Event]:
    record = record if record is not None else record_of(m)
    events: list[Event] = []
    if isinstance(record, Payment):
        events.append(Event(record.created_at, f"{record.kind.lower()} payment created"))
        for a in record.attempts:
            events.append(
                Event(
                    a.at,
                    a.event,
                    " ".join(filter(None, [a.status, a.razorpay_payment_id])),
                    failed=a.status == "FAILED",
                )
            )
    elif isinstance(record, Refund):
        events.append(Event(record.created_at, f"refund to {record.destination.lower()} created"))
        if record.retry_of_id:
            events.append(Event(record.created_at, "replaces refund", f"#{record.retry_of_id}"))
        if record.outside_refund_id:  # settled: given back on Razorpay's dashboard
            events.append(
                Event(record.processed_at, "given back on the dashboard", record.outside_refund_id)
            )
        elif record.processed_at:
            events.append(Event(record.processed_at, "processed", record.razorpay_refund_id or ""))
        if record.failure_reason:
            events.append(Event(record.updated_at, "failed", record.failure_reason, failed=True))
    elif isinstance(record, Payout):
        events.append(Event(record.created_at, f"{record.kind.lower()} payout created"))
        attempts = db.session.scalars(
            db.select(PayoutAttempt)
            .where(PayoutAttempt.payout_id == record.id)
            .order_by(PayoutAttempt.number)
        )
        for a in attempts:
            events.append(
                Event(
                    a.updated_at,
                    f"attempt {a.number}: {a.status.lower()}",
                    " ".join(filter(None, [a.razorpay_payout_id, a.failure_reason])),
                    failed=a.status in ("FAILED", "REVERSED"),
                )
            )
        if record.processed_at:
            events.append(Event(record.processed_at, "processed", record.utr or ""))
    elif isinstance(record, Reschedule):
        events.append(Event(record.created_at, "reschedule fee asked", record.pay_with.lower()))
        if record.done_at:
            events.append(Event(record.done_at, "fee paid, booking moved"))
        if record.failure_reason:
            events.append(Event(record.created_at, "failed", record.failure_reason, failed=True))
    elif isinstance(record, FeeCapture):
        # paid after the patient closed the account: owed back to its source, no wallet
        closed = db.session.scalar(
            sa.select(LedgerTransaction.id).where(
                LedgerTransaction.idempotency_key
                == f"{CLOSED_ACCOUNT_CAPTURE}:{record.razorpay_payment_id}"
            )
        )
        events.append(
            Event(
                record.captured_at,
                "reschedule fee captured, "
                + ("account closed: refunded to its source" if closed else "put in the wallet"),
                f"reschedule #{record.reschedule_id}",
            )
        )
    elif isinstance(record, WalletAdjustment):
        events.append(Event(record.created_at, "adjustment asked", record.public_reason))
        if record.decided_at:
            events.append(
                Event(record.decided_at, f"{record.status.lower()}", record.decision_note or "")
            )
        if record.applied_at:
            events.append(Event(record.applied_at, "applied to the wallet"))
    elif isinstance(record, Settlement):
        events.append(Event(record.settled_at, "settled by Razorpay", record.utr or ""))
        events.append(Event(record.ingested_at, "read from Razorpay", f"{len(record.items)} items"))
    for txn in queries.ledger_postings(*m.record_key, m.visit_id):
        lines = ", ".join(
            f"{e.account.code} {'Dr' if e.amount > 0 else 'Cr'} {abs(e.amount)}"
            for e in txn.entries
        )
        events.append(Event(txn.created_at, f"ledger: {txn.kind}", lines))
    return sorted(events, key=lambda e: e.at)


@dataclass(frozen=True)
class GatewaySide:
    record: dict | None = None
    error: str | None = None

    @property
    def fetched(self):
        return self.record is not None


def gateway_side(m: MoneyMovement) -> GatewaySide:
    """Razorpay's record of the movement, or why there is none to show (never raises for
    a gateway that is down or answers nonsense)."""
    ref = m.reference or ""
    try:
        if ref.startswith("pay_"):
            raw = get_payin().fetch_payment(ref)
        elif ref.startswith("rfnd_"):
            raw = get_payin().fetch_refund(ref)
        elif ref.startswith("setl_"):
            raw = get_payin().fetch_settlement(ref)
        elif ref.startswith("pout_"):
            # The payout engine's adapter, behind RazorpayX's rate limit (docs/payouts.md).
            raw = payouts_gateway().fetch_payout(ref)
        else:
            return GatewaySide(error="This movement has no record at Razorpay.")
    except NotFound:
        return GatewaySide(error=f"Razorpay has no record {ref}.")
    except GatewayError as exc:
        return GatewaySide(error=f"Razorpay could not be reached: {exc}")
    except (ValueError, TypeError):
        return GatewaySide(error="Razorpay answered something unreadable.")
    if not isinstance(raw, dict):
        return GatewaySide(error="Razorpay answered something unreadable.")
    return GatewaySide(record=raw)


#: our side's fields, in the order shown beside the gateway's
COMPARED = (
    ("id", "reference"),
    ("amount", "amount"),
    ("status", "status"),
    ("fee", "gateway_fee"),
    ("tax", "gateway_tax"),
    ("utr", "utr"),
)
