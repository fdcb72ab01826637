"""Our side of a run: the rows that carry a gateway id, read in bulk as ``matching.Side``.

By window (the time columns are indexed) or by reference (chunks of ids, for a gateway
record whose time fell just outside our window). A payment is ours at its capture time
(``paid_at``); a refund and a payout attempt when they were sent: their latest request to
the gateway (``last_request_at``; the first one too, as ``Side.since``, when one key was
asked more than once: the gateway made it at one of them), not when the row was
created (a payout held, or waiting for its job, or a request answered 5xx and made on a
resend minutes later, is the gateway's at the request). Plain column reads, no ORM
objects: 100,000 rows cost one query and a few tens of megabytes.

A reschedule fee paid online is a Razorpay payment too, kept on its ``reschedules`` row
(``razorpay_payment_id``, set once the fee is captured): ours at the move (``done_at``),
or, when the fee went to the wallet instead (slot gone, paid late), at that credit (the
ledger posting keyed ``reschedule_unapplied:<id>:<payment>``). A fee payment its row does
not record (the wrong amount, a second payment on the order) has a ``FeeCapture`` row of
its own: ours at its capture, for the amount captured, captured (its money went to the
wallet). A refund of a fee is a ``refunds`` row like any other.

A gateway payment we never learnt the id of is ours by its order (``payments_by_order``);
a payment link's, whose order Razorpay makes only when the link is paid, by the link's
notes on that order, which name our row (``links_by_notes``); a refund by its own notes
(``refunds_by_notes``)."""

from collections.abc import Iterable, Iterator
from functools import partial

import sqlalchemy as sa

from portal.booking.models import FeeCapture, MasterBooking, Reschedule
from portal.booking.reschedule_payment import FEE_CREDITED_AT, UNAPPLIED
from portal.db import UTCDateTime
from portal.domain.ids import parse_id
from portal.domain.states import RefundStatus, RescheduleStatus
from portal.extensions import db
from portal.ledger.models import LedgerTransaction
from portal.payments.models import LINK, Payment
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


def _fee_status(status, paid_by):
    """A reschedule's fee in the payments' vocabulary: captured once a payment is recorded
    on it (the booking moved, or the fee is in the wallet), else pending or ended."""
    if paid_by:
        return "SUCCESSFUL"
    return "PENDING" if status == RescheduleStatus.PENDING_PAYMENT else "EXPIRED"


def _fee_side(reference, rid, visit_id, amount, status, paid_by, at):
    return our_side(
        "payment",
        reference,
        amount,
        _fee_status(status, paid_by),
        _unix(at),
        our_type="reschedule",
        our_id=rid,
        visit_id=visit_id,
    )


def _fees(where):
    """Reschedule fees paid online (a payment recorded on the reschedule)."""
    rows = db.session.execute(
        sa.select(
            Reschedule.id,
            Reschedule.visit_id,
            Reschedule.razorpay_payment_id,
            Reschedule.total,
            Reschedule.status,
            sa.func.coalesce(
                Reschedule.done_at, FEE_CREDITED_AT, Reschedule.created_at, type_=UTCDateTime
            ),
        )
        .where(Reschedule.razorpay_payment_id.is_not(None), *where)
        .execution_options(**STREAM)
    )
    for rid, visit_id, ref, amount, status, at in rows:
        yield _fee_side(ref, rid, visit_id, amount, status, ref, at)


def _fee_captures(where):
    """Fee payments recorded on their own (``FeeCapture``): captured, their money in the
    wallet; ours as their reschedule's."""
    rows = db.session.execute(
        sa.select(
            FeeCapture.reschedule_id,
            Reschedule.visit_id,
            FeeCapture.razorpay_payment_id,
            FeeCapture.amount,
            FeeCapture.captured_at,
        )
        .join(Reschedule, Reschedule.id == FeeCapture.reschedule_id)
        .where(*where)
        .execution_options(**STREAM)
    )
    for rid, visit_id, ref, amount, at in rows:
        yield _fee_side(ref, rid, visit_id, amount, None, ref, at)


def _fees_in_window(start, end):
    # Moved: by the move's time. Gone to the wallet: by the credit's (the ledger's
    # indexed time and kind find the few).
    yield from _fees([Reschedule.done_at >= start, Reschedule.done_at < end])
    credited = sa.select(sa.cast(LedgerTransaction.reference_id, sa.Integer)).where(
        LedgerTransaction.kind == UNAPPLIED,
        LedgerTransaction.reference_type == "reschedule",
        LedgerTransaction.created_at >= start,
        LedgerTransaction.created_at < end,
    )
    yield from _fees(
        [
            Reschedule.done_at.is_(None),
            Reschedule.id.in_(credited),
            start <= FEE_CREDITED_AT,
            end > FEE_CREDITED_AT,
        ]
    )


def _sent_at(model):
    """When a refund or payout attempt went to the gateway: its latest request (the one
    the gateway made it on, or answered with it), its row's creation for a row never
    timed (made before the time was kept, or by hand)."""
    return sa.func.coalesce(model.last_request_at, model.created_at, type_=UTCDateTime)


def _sent_between(model, start, end):
    """``_sent_at`` in [start, end), on the two indexed columns (no expression index)."""
    return [
        sa.or_(
            sa.and_(model.last_request_at >= start, model.last_request_at < end),
            sa.and_(
                model.last_request_at.is_(None),
                model.created_at >= start,
                model.created_at < end,
            ),
        )
    ]


def _refunds(where):
    rows = db.session.execute(
        sa.select(
            Refund.id,
            Refund.visit_id,
            Refund.razorpay_refund_id,
            Refund.amount,
            Refund.status,
            _sent_at(Refund),
            Refund.first_request_at,
        )
        .where(Refund.razorpay_refund_id.is_not(None), *where)
        .execution_options(**STREAM)
    )
    for rid, visit_id, ref, amount, status, sent_at, first_at in rows:
        yield _refund_side(ref, rid, visit_id, amount, status, sent_at, first_at)


def _refund_side(reference, rid, visit_id, amount, status, sent_at, first_at):
    return our_side(
        "refund",
        reference,
        amount,
        status,
        _unix(sent_at),
        our_type="refund",
        our_id=rid,
        visit_id=visit_id,
        since=_unix(first_at) if first_at else None,
    )


def _payouts(where):
    rows = db.session.execute(
        sa.select(
            PayoutAttempt.id,
            PayoutAttempt.razorpay_payout_id,
            Payout.net,
            PayoutAttempt.status,
            _sent_at(PayoutAttempt),
            PayoutAttempt.first_request_at,
        )
        .join(Payout, Payout.id == PayoutAttempt.payout_id)
        .where(PayoutAttempt.razorpay_payout_id.is_not(None), *where)
        .execution_options(**STREAM)
    )
    for aid, ref, amount, status, sent_at, first_at in rows:
        yield our_side(
            "payout",
            ref,
            amount,
            status,
            _unix(sent_at),
            our_type="payout_attempt",
            our_id=aid,
            since=_unix(first_at) if first_at else None,
        )


_READERS = {"payment": _payments, "refund": _refunds, "payout": _payouts}
_BETWEEN = {
    "payment": lambda start, end: [Payment.paid_at >= start, Payment.paid_at < end],
    "refund": partial(_sent_between, Refund),
    "payout": partial(_sent_between, PayoutAttempt),
}
_REF = {
    "payment": Payment.razorpay_payment_id,
    "refund": Refund.razorpay_refund_id,
    "payout": PayoutAttempt.razorpay_payout_id,
}
# Readers of one kind beyond its own table (the gateway ids are unique across them: a
# Razorpay order, so its payments, is a visit's or a reschedule fee's, never both).
_ALSO = {
    "payment": [
        (_fees, Reschedule.razorpay_payment_id),
        (_fee_captures, FeeCapture.razorpay_payment_id),
    ]
}


def in_window(kind, start, end) -> Iterator[Side]:
    """Our ``kind`` rows with a gateway id whose time is in [start, end), streamed: one
    side per reference (the gateway ids are unique columns)."""
    yield from _READERS[kind](_BETWEEN[kind](start, end))
    if kind == "payment":
        yield from _fees_in_window(start, end)
        yield from _fee_captures([FeeCapture.captured_at >= start, FeeCapture.captured_at < end])


def by_reference(kind, references: Iterable[str]) -> dict[str, Side]:
    refs = sorted(set(references))
    found = {}
    for i in range(0, len(refs), CHUNK):
        chunk = refs[i : i + CHUNK]
        for read, column in [(_READERS[kind], _REF[kind]), *_ALSO.get(kind, [])]:
            for side in read([column.in_(chunk)]):
                found[side.reference] = side
    return found


def payments_by_order(
    gateway_sides: Iterable[Side], notes_by_order: dict | None = None
) -> tuple[dict[str, Side], set[str]]:
    """Our payment row for a gateway payment we never learnt the id of (its webhooks and
    the checkout callback lost): found by the order it was made for, or, for a payment
    link's payment, by the link's notes on that order (``notes_by_order``: order id ->
    the order's notes, ``links_by_notes``). Keyed by the gateway payment's id; the side is
    our row as it stands (pending, or expired since). Second: the gateway payments whose
    order our row says was paid by ANOTHER payment (paid twice: duplicates)."""
    gateway_sides = list(gateway_sides)
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
                _matched(
                    found, duplicates, theirs, paid_by,
                    _payment_side(theirs.reference, pid, visit_id, amount, status, created_at),
                )  # fmt: skip
        _fees_by_order(orders[i : i + CHUNK], by_order, found, duplicates)
    if notes_by_order:
        rest = [side for side in gateway_sides if side.reference not in found]
        by_link, paid_twice = links_by_notes(rest, notes_by_order)
        found.update(by_link)
        duplicates |= paid_twice
    return found, duplicates


def refunds_by_notes(gateway_sides: Iterable[Side]) -> dict[str, Side]:
    """Our refund for a gateway refund we never learnt the id of (every answer to its
    create lost, and its webhooks): the refund's notes name our row (``portal_refund``),
    as for the webhooks, a sync and "send to wallet" (``refunds.execute.find_refund_for``,
    ``refund_at_gateway``): a row of the payment the refund gives back that recorded no
    Razorpay refund (one that recorded another is not this one's). Keyed by the gateway
    refund's id; the side is our row as it stands (failed, when we gave up on it: review
    finding, the run called it a refund we never made, and an accept posted it to
    suspense while "send to wallet" found it ours and processed it)."""
    named = {}
    for side in gateway_sides:
        if side.named_id is not None:
            named.setdefault(side.named_id, []).append(side)
    ids = sorted(named)
    found = {}
    for i in range(0, len(ids), CHUNK):
        rows = db.session.execute(
            sa.select(
                Refund.id,
                Refund.visit_id,
                Refund.razorpay_payment_id,
                Refund.amount,
                Refund.status,
                _sent_at(Refund),
                Refund.first_request_at,
            ).where(Refund.id.in_(ids[i : i + CHUNK]), Refund.razorpay_refund_id.is_(None))
        )
        for rid, visit_id, payment_id, amount, status, sent_at, first_at in rows:
            for theirs in named[rid]:
                if theirs.payment_id == payment_id:
                    found[theirs.reference] = _refund_side(
                        theirs.reference, rid, visit_id, amount, status, sent_at, first_at
                    )
    return found


def without_id(kind, gateway_sides: Iterable[Side], notes_by_order=None) -> dict[str, Side]:
    """Our rows for gateway records no row of ours knows by id: a payment by its order (or
    a payment link's notes on it), a refund by its notes. Keyed by the gateway's id."""
    if kind == "payment":
        return payments_by_order(gateway_sides, notes_by_order)[0]
    if kind == "refund":
        return refunds_by_notes(gateway_sides)
    return {}


def named_row(kind, reference, our_type, our_id) -> Side | None:
    """Our row a case names (``our_type``, ``our_id``) as the side a run made of it for
    gateway record ``reference`` when the row does not record that id (found by a payment
    link's notes, a refund by its own notes): read again by the row's id, for a case
    compared again between runs (``recheck``). None for a refund that records another
    Razorpay refund now (not this one's), or a row gone."""
    if kind == "payment" and our_type == "payment":
        row = db.session.execute(
            sa.select(
                Payment.id, Payment.master_id, Payment.amount, Payment.status, Payment.created_at
            ).where(Payment.id == our_id)
        ).first()
        return _payment_side(reference, *row) if row else None
    if kind == "refund" and our_type == "refund":
        row = db.session.execute(
            sa.select(
                Refund.id,
                Refund.visit_id,
                Refund.amount,
                Refund.status,
                _sent_at(Refund),
                Refund.first_request_at,
            ).where(Refund.id == our_id, Refund.razorpay_refund_id.is_(None))
        ).first()
        return _refund_side(reference, *row) if row else None
    return None


def replaced(our_type, our_id) -> bool:
    """Whether our refund ``our_id`` was replaced (retried as a new refund, or sent to the
    wallet) without being processed: it moved no money through the gateway and never will
    (``refunds.execute.mark_processed`` refuses a replaced row)."""
    if our_type != "refund" or our_id is None:
        return False
    return bool(
        db.session.scalar(
            sa.select(Refund.superseded).where(
                Refund.id == our_id, Refund.status != RefundStatus.PROCESSED
            )
        )
    )


def paid_by_another(our_type, our_id, reference) -> str | None:
    """The gateway payment our row records when a case's payment ``reference`` is not it:
    our row was found by its order for a second payment of that order (paid twice, one
    we never heard of), and its money is the other payment's. None when the row records
    ``reference``, or none yet, or holds ``reference`` on a record of its own (a
    reschedule fee's ``FeeCapture``): then the row speaks for this payment's money."""
    if our_id is None:
        return None
    if our_type == "payment":
        recorded = db.session.scalar(
            sa.select(Payment.razorpay_payment_id).where(Payment.id == our_id)
        )
    elif our_type == "reschedule":
        own = sa.select(FeeCapture.id).where(FeeCapture.razorpay_payment_id == reference)
        if db.session.scalar(own) is not None:
            return None
        recorded = db.session.scalar(
            sa.select(Reschedule.razorpay_payment_id).where(Reschedule.id == our_id)
        )
    else:
        return None
    return recorded if recorded and recorded != reference else None


def _matched(found, duplicates, theirs, paid_by, ours):
    """``theirs`` (a gateway payment we never learnt the id of) found as ``ours``; a
    duplicate when our row records another gateway payment (``paid_by``): paid twice.
    The one rule of ``payments_by_order``, ``links_by_notes`` and the fees' orders."""
    if paid_by and paid_by != theirs.reference:
        duplicates.add(theirs.reference)
    found[theirs.reference] = ours


def _payment_side(reference, pid, visit_id, amount, status, created_at):
    return our_side(
        "payment",
        reference,
        amount,
        status,
        _unix(created_at),
        our_type="payment",
        our_id=pid,
        visit_id=visit_id,
    )


def named_link(notes):
    """(our payment row's id, its visit's number) that a payment link's notes name
    (``booking.links`` gives every link ``{"visit": number, "portal_payment": id}``), or
    None."""
    if not isinstance(notes, dict):
        return None
    payment_id, number = parse_id(notes.get("portal_payment")), notes.get("visit")
    if payment_id is None or not isinstance(number, str) or not number:
        return None
    return payment_id, number


def links_by_notes(gateway_sides, notes_by_order) -> tuple[dict[str, Side], set[str]]:
    """Our payment link's row for a gateway payment made through the link that we never
    heard of (every webhook and the link's return lost). Razorpay makes a link's order
    only when the link is paid, so the row has no order id to be found by; the link's
    notes, which Razorpay gives that order (``notes_by_order``: order id -> notes), name
    it. As for the webhooks (``payments.records.find_payment``), our id in the notes
    counts only for a link's row, and only of the visit the notes name (SQLite hands a
    rolled-back link row's id to the next row, another visit's), and not for a row that
    recorded another order. Returns what ``payments_by_order`` does."""
    named = {}
    for side in gateway_sides:
        link = named_link(notes_by_order.get(side.order_id)) if side.order_id else None
        if link is not None:
            named.setdefault(link[0], []).append((side, link[1]))
    ids = sorted(named)
    found, duplicates = {}, set()
    for i in range(0, len(ids), CHUNK):
        rows = db.session.execute(
            sa.select(
                Payment.id,
                Payment.master_id,
                MasterBooking.number,
                Payment.razorpay_order_id,
                Payment.razorpay_payment_id,
                Payment.amount,
                Payment.status,
                Payment.created_at,
            )
            .join(MasterBooking, MasterBooking.id == Payment.master_id)
            .where(Payment.id.in_(ids[i : i + CHUNK]), Payment.kind == LINK)
        )
        for pid, visit_id, number, order_id, paid_by, amount, status, created_at in rows:
            for theirs, named_visit in named[pid]:
                if named_visit != number or order_id not in (None, theirs.order_id):
                    continue
                _matched(
                    found, duplicates, theirs, paid_by,
                    _payment_side(theirs.reference, pid, visit_id, amount, status, created_at),
                )  # fmt: skip
    return found, duplicates


def _fees_by_order(orders, by_order, found, duplicates):
    """``payments_by_order`` for reschedule fees' orders."""
    rows = db.session.execute(
        sa.select(
            Reschedule.id,
            Reschedule.visit_id,
            Reschedule.razorpay_order_id,
            Reschedule.razorpay_payment_id,
            Reschedule.total,
            Reschedule.status,
            Reschedule.created_at,
        ).where(Reschedule.razorpay_order_id.in_(orders))
    )
    for rid, visit_id, order_id, paid_by, amount, status, created_at in rows:
        for theirs in by_order[order_id]:
            _matched(
                found, duplicates, theirs, paid_by,
                _fee_side(theirs.reference, rid, visit_id, amount, status, paid_by, created_at),
            )  # fmt: skip


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
