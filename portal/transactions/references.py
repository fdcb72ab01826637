"""What a reference an operator pastes belongs to: a Razorpay id (payment ``pay_…``,
order ``order_…``, payment link ``plink_…``, refund ``rfnd_…``, payout ``pout_…``,
settlement ``setl_…``) or one of the portal's own numbers (visit ``V000123``, invoice
``CP/26-27/000001``, a reschedule fee's ``RF/26-27/000001`` or, issued before its series,
``CP/2026-27/000001/R12``, credit note ``CN/26-27/000001``; a document issued before the
16-character form keeps its ``CP/2026-27/000001``, and is found by it).

Exact matches only, each on a unique or indexed column, all in one statement (a UNION ALL
of index reads joined to the visits by primary key): a lookup reads a handful of rows
whatever the tables' size. Read by the admin visit search, the transactions console's
Reference filter and the reconciliation link of a reference that has no case
(docs/transactions.md, "Finding a reference")."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from portal.booking.credit_notes import CreditNote
from portal.booking.models import FeeCapture, MasterBooking, Reschedule
from portal.extensions import db
from portal.payments.models import Payment, PaymentAttempt
from portal.payouts.models import Payout, PayoutAttempt
from portal.refunds.models import Refund
from portal.settlements.models import Settlement

from .models import FEE_CAPTURE, PAYOUT, PAYOUT_REVERSAL, MoneyMovement

M = MoneyMovement

# What each kind of reference is called on the pages.
KINDS = {
    "pay": "payment",
    "order": "order",
    "plink": "payment link",
    "rfnd": "refund",
    "pout": "payout",
    "setl": "settlement",
    "visit": "visit",
    "invoice": "invoice",
    "fee": "reschedule fee document",
    "cn": "credit note",
}
GATEWAY_KINDS = ("pay", "order", "plink", "rfnd", "pout", "setl")

# Razorpay ids are the prefix, "_" and 14 letters and digits (case matters); a little
# latitude either way, never a pattern a name or an e-mail could match.
_GATEWAY = re.compile(r"(pay|order|plink|rfnd|pout|setl)_([A-Za-z0-9]{6,30})")
_VISIT = re.compile(r"[Vv](\d{1,12})")
# The year as issued: "26-27" (booking.series), or "2026-27" on a document issued before.
_FY = r"(?:\d{2})?\d{2}-\d{2}/\d{1,9}"
_INVOICE = re.compile(rf"CP/{_FY}", re.IGNORECASE)
# Its own series, or (issued before it) the visit's invoice number, /R and the reschedule.
_FEE_DOCUMENT = re.compile(rf"RF/{_FY}|CP/{_FY}/R\d{{1,12}}", re.IGNORECASE)
_CREDIT_NOTE = re.compile(rf"CN/{_FY}", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    kind: str  # a key of KINDS
    text: str  # as stored (a visit number zero-padded, a document's letters upper-cased)

    @property
    def label(self):
        return KINDS[self.kind]

    @property
    def is_gateway(self):
        return self.kind in GATEWAY_KINDS


def parse(text) -> Reference | None:
    """The reference ``text`` is (surrounding spaces ignored), or None: it is not one."""
    text = (text or "").strip()
    if m := _GATEWAY.fullmatch(text):
        return Reference(m.group(1), text)
    if m := _VISIT.fullmatch(text):
        return Reference("visit", f"V{int(m.group(1)):06d}")
    if _FEE_DOCUMENT.fullmatch(text):
        return Reference("fee", text.upper())
    if _INVOICE.fullmatch(text):
        return Reference("invoice", text.upper())
    if _CREDIT_NOTE.fullmatch(text):
        return Reference("cn", text.upper())
    return None


@dataclass(frozen=True)
class Found:
    """What a reference belongs to. ``movements``: (source, source id) of the console
    rows made from its records; ``visits``: visit id -> number; ``whole_visits``: the
    reference names the visits themselves (their number, invoice or credit note), so
    every row of theirs is its."""

    reference: Reference
    movements: frozenset[tuple[str, int]]
    visits: dict[int, str]
    whole_visits: bool

    @property
    def known(self):
        return bool(self.movements or self.visits)


def _branches(ref: Reference):
    """(source, id, visit id) selects, one per indexed column the reference may be in."""
    t = ref.text

    def row(source, id_, visit_id):
        return sa.select(
            sa.literal(source, sa.String).label("source"),
            id_.label("id"),
            sa.cast(visit_id, sa.Integer).label("visit_id"),
        )

    none = sa.null()
    if ref.kind == "pay":
        return [
            row("payment", Payment.id, Payment.master_id).where(Payment.razorpay_payment_id == t),
            # a failed attempt's id is only on the timeline
            row("payment", Payment.id, Payment.master_id)
            .join(PaymentAttempt, PaymentAttempt.payment_id == Payment.id)
            .where(PaymentAttempt.razorpay_payment_id == t),
            row("reschedule", Reschedule.id, Reschedule.visit_id).where(
                Reschedule.razorpay_payment_id == t
            ),
            row(FEE_CAPTURE, FeeCapture.id, Reschedule.visit_id)
            .join(Reschedule, Reschedule.id == FeeCapture.reschedule_id)
            .where(FeeCapture.razorpay_payment_id == t),
            # its refunds are about it too
            row("refund", Refund.id, Refund.visit_id).where(Refund.razorpay_payment_id == t),
        ]
    if ref.kind == "order":
        return [
            row("payment", Payment.id, Payment.master_id).where(Payment.razorpay_order_id == t),
            row("reschedule", Reschedule.id, Reschedule.visit_id).where(
                Reschedule.razorpay_order_id == t
            ),
        ]
    if ref.kind == "plink":
        return [row("payment", Payment.id, Payment.master_id).where(Payment.razorpay_link_id == t)]
    if ref.kind == "rfnd":
        return [row("refund", Refund.id, Refund.visit_id).where(Refund.razorpay_refund_id == t)]
    if ref.kind == "pout":
        return [
            row("payout", Payout.id, none).where(Payout.razorpay_payout_id == t),
            # an earlier attempt of a payout sent again had an id of its own
            row("payout", PayoutAttempt.payout_id, none).where(
                PayoutAttempt.razorpay_payout_id == t
            ),
        ]
    if ref.kind == "setl":
        return [
            row("settlement", Settlement.id, none).where(Settlement.razorpay_settlement_id == t)
        ]
    if ref.kind == "visit":
        return [row("visit", MasterBooking.id, MasterBooking.id).where(MasterBooking.number == t)]
    if ref.kind == "invoice":
        return [
            row("visit", MasterBooking.id, MasterBooking.id).where(MasterBooking.invoice_no == t)
        ]
    if ref.kind == "fee":
        return [
            row("reschedule", Reschedule.id, Reschedule.visit_id).where(Reschedule.document_no == t)
        ]
    if ref.kind == "cn":
        return [
            row("credit_note", CreditNote.id, CreditNote.visit_id).where(CreditNote.number == t)
        ]
    raise ValueError(f"unknown reference kind {ref.kind!r}")


def find(reference: Reference | str | None) -> Found | None:
    """What ``reference`` belongs to, in one statement; None when it is not a reference
    (``parse``). A reference found nowhere is a ``Found`` with nothing in it."""
    ref = parse(reference) if not isinstance(reference, Reference) else reference
    if ref is None:
        return None
    found = sa.union_all(*_branches(ref)).subquery()
    rows = db.session.execute(
        sa.select(found.c.source, found.c.id, found.c.visit_id, MasterBooking.number).outerjoin(
            MasterBooking, MasterBooking.id == found.c.visit_id
        )
    ).all()
    movements = frozenset(
        (source, id_) for source, id_, _, _ in rows if source not in ("visit", "credit_note")
    )
    visits = {visit_id: number for _, _, visit_id, number in rows if visit_id is not None}
    return Found(ref, movements, visits, whole_visits=ref.kind in ("visit", "invoice", "cn"))


def movement_clause(found: Found):
    """The console rows of what was found: its own Razorpay id (any row carrying it), its
    records' rows (by the unique (source, source id) index) and, for a visit's own number,
    every row of the visit (by the visit-number index). Each an index read."""
    clauses = []
    if found.reference.is_gateway:
        clauses.append(M.reference == found.reference.text)
    by_source: dict[str, list[int]] = {}
    for source, id_ in found.movements:
        by_source.setdefault(source, []).append(id_)
        if source == PAYOUT:  # its reversal's row too (an earlier attempt's id finds both)
            by_source.setdefault(PAYOUT_REVERSAL, []).append(id_)
    for source, ids in sorted(by_source.items()):
        clauses.append(sa.and_(M.source == source, M.source_id.in_(sorted(ids))))
    if found.whole_visits and found.visits:
        clauses.append(M.visit_number.in_(sorted(n for n in found.visits.values() if n)))
    return sa.or_(*clauses) if clauses else sa.false()
