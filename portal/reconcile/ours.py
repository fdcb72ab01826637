"""Our side of a run: the rows that carry a gateway id, read in bulk as ``matching.Side``.

By window (the time columns are indexed) or by reference (chunks of ids, for a gateway
record whose time fell just outside our window). A payment is ours at its capture time
(``paid_at``); a refund and a payout attempt at their creation. Plain column reads, no
ORM objects: 100,000 rows cost one query and a few tens of megabytes."""

from collections.abc import Iterable, Iterator

import sqlalchemy as sa

from portal.db import UTCDateTime
from portal.extensions import db
from portal.payments.models import Payment
from portal.payouts.models import Payout, PayoutAttempt
from portal.reconcile.matching import Side, our_side
from portal.refunds.models import Refund

CHUNK = 5000


def _unix(value):
    return int(value.timestamp())


# Rows come in batches (a server-side cursor on PostgreSQL), never 100,000 at once.
STREAM = {"yield_per": 5000}


def _payments(where):
    rows = db.session.execute(
        sa.select(
            Payment.id,
            Payment.master_id,
            Payment.razorpay_payment_id,
            Payment.amount,
            Payment.captured_amount,
            Payment.status,
            # one time to convert per row, not two
            sa.func.coalesce(Payment.paid_at, Payment.created_at, type_=UTCDateTime),
        )
        .where(Payment.razorpay_payment_id.is_not(None), *where)
        .execution_options(**STREAM)
    )
    for pid, visit_id, ref, amount, captured, status, at in rows:
        yield our_side(
            "payment",
            ref,
            captured if captured is not None else amount,
            status,
            _unix(at),
            our_type="payment",
            our_id=pid,
            visit_id=visit_id,
        )


def _refunds(where):
    rows = db.session.execute(
        sa.select(
            Refund.id,
            Refund.visit_id,
            Refund.razorpay_refund_id,
            Refund.amount,
            Refund.status,
            Refund.created_at,
        )
        .where(Refund.razorpay_refund_id.is_not(None), *where)
        .execution_options(**STREAM)
    )
    for rid, visit_id, ref, amount, status, created_at in rows:
        yield our_side(
            "refund",
            ref,
            amount,
            status,
            _unix(created_at),
            our_type="refund",
            our_id=rid,
            visit_id=visit_id,
        )


def _payouts(where):
    rows = db.session.execute(
        sa.select(
            PayoutAttempt.id,
            PayoutAttempt.razorpay_payout_id,
            Payout.net,
            PayoutAttempt.status,
            PayoutAttempt.created_at,
        )
        .join(Payout, Payout.id == PayoutAttempt.payout_id)
        .where(PayoutAttempt.razorpay_payout_id.is_not(None), *where)
        .execution_options(**STREAM)
    )
    for aid, ref, amount, status, created_at in rows:
        yield our_side(
            "payout", ref, amount, status, _unix(created_at), our_type="payout_attempt", our_id=aid
        )


_READERS = {"payment": _payments, "refund": _refunds, "payout": _payouts}
_TIME = {
    "payment": Payment.paid_at,
    "refund": Refund.created_at,
    "payout": PayoutAttempt.created_at,
}
_REF = {
    "payment": Payment.razorpay_payment_id,
    "refund": Refund.razorpay_refund_id,
    "payout": PayoutAttempt.razorpay_payout_id,
}


def in_window(kind, start, end) -> Iterator[Side]:
    """Our ``kind`` rows with a gateway id whose time is in [start, end), streamed: one
    side per reference (the gateway ids are unique columns)."""
    column = _TIME[kind]
    yield from _READERS[kind]([column >= start, column < end])
    if kind == "payment":
        # A capture of the wrong amount keeps its row PENDING (no paid_at): by creation.
        yield from _payments(
            [Payment.paid_at.is_(None), Payment.created_at >= start, Payment.created_at < end]
        )


def by_reference(kind, references: Iterable[str]) -> dict[str, Side]:
    refs = sorted(set(references))
    found = {}
    for i in range(0, len(refs), CHUNK):
        chunk = refs[i : i + CHUNK]
        for side in _READERS[kind]([_REF[kind].in_(chunk)]):
            found[side.reference] = side
    return found


def payments_by_order(gateway_sides: Iterable[Side]) -> tuple[dict[str, Side], set[str]]:
    """Our payment row for a gateway payment we never learnt the id of (its webhooks and
    the checkout callback lost): found by the order it was made for. Keyed by the gateway
    payment's id; the side is our row as it stands (pending, or expired since). Second:
    the gateway payments whose order our row says was paid by ANOTHER payment (paid twice:
    duplicates)."""
    by_order = {}
    for side in gateway_sides:
        if side.order_id:
            by_order.setdefault(side.order_id, []).append(side)
    orders = sorted(by_order)
    found, duplicates = {}, set()
    for i in range(0, len(orders), CHUNK):
        rows = db.session.execute(
            sa.select(
                Payment.id,
                Payment.master_id,
                Payment.razorpay_order_id,
                Payment.razorpay_payment_id,
                Payment.amount,
                Payment.status,
                Payment.created_at,
            ).where(Payment.razorpay_order_id.in_(orders[i : i + CHUNK]))
        )
        for pid, visit_id, order_id, paid_by, amount, status, created_at in rows:
            for theirs in by_order[order_id]:
                if paid_by and paid_by != theirs.reference:
                    duplicates.add(theirs.reference)
                found[theirs.reference] = our_side(
                    "payment",
                    theirs.reference,
                    amount,
                    status,
                    _unix(created_at),
                    our_type="payment",
                    our_id=pid,
                    visit_id=visit_id,
                )
    return found, duplicates


def lock_refunds(refund_ids):
    """Row-lock our refunds (PostgreSQL ``FOR UPDATE``, in id order) before reading them
    again: a refund webhook in flight finishes first, or waits for the run's commit."""
    if not refund_ids or db.session.get_bind().dialect.name != "postgresql":
        return
    for i in range(0, len(refund_ids), CHUNK):
        db.session.execute(
            sa.select(Refund.id)
            .where(Refund.id.in_(refund_ids[i : i + CHUNK]))
            .order_by(Refund.id)
            .with_for_update()
        ).all()
