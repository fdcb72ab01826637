"""How each record becomes a movement row. One function per record type and one
``register`` line: a new kind of movement (e.g. manual wallet adjustments) is a projector
returning the columns below and a line in :func:`install`.

Columns: source, source_id (the record), type, status, failed, bucket (what a successful
movement counts as in the summary: money in, refund, payout; None for money that stays
inside the business), occurred_at, patient_id / provider_id / party_name, visit_id /
visit_number, amount, fee / platform_fee / gst less discount / wallet (the price breakup:
fee + platform_fee + gst − discount − wallet = amount, or all None), gateway_fee /
gateway_tax (from the settlement that covered it; a payout's: RazorpayX's fee the ledger
posted for it), net, reference (the Razorpay id), utr,
settlement_reference. A projector may return several rows (a payout and its reversal)."""

from __future__ import annotations

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import receipts
from portal.booking.models import (
    PAY_DESK,
    PAY_GATEWAY,
    PAY_NONE,
    FeeCapture,
    IndividualBooking,
    MasterBooking,
    Reschedule,
)
from portal.booking.postings import VISIT_CONFIRMED
from portal.booking.reschedule_payment import unapplied_key
from portal.catalog.models import Provider
from portal.domain.ids import is_digits
from portal.domain.states import (
    AdjustmentStatus,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
    RescheduleStatus,
)
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.payments import models as pay
from portal.payouts.models import FEES_KIND, FEES_RETURNED_KIND, REVERSED_KIND, Payout
from portal.refunds.models import GATEWAY, Cancellation, Refund
from portal.settlements.models import Settlement, SettlementItem
from portal.wallet.models import BANK_PAYOUT, CASH_PAYOUT, WalletAdjustment

from . import models as mm
from . import projection
from .projection import register

PAYMENT_TYPES = {
    pay.ORDER: mm.PAYMENT_ONLINE,
    pay.LINK: mm.PAYMENT_LINK,
    pay.DESK: mm.PAYMENT_DESK,
    pay.WALLET: mm.WALLET_DEBIT,
}

# Ledger postings that are movements of their own (no record table holds them).
LEDGER_TYPES = {
    "provider_penalty": mm.PROVIDER_PENALTY,
    "unapplied_payment": mm.WALLET_CREDIT,  # a capture with nothing left to pay: to the wallet
    "reschedule_unapplied": mm.WALLET_CREDIT,
}


def _settled(reference):
    """(fee, tax, utr, settlement id) from the settlement row covering ``reference``."""
    if not reference:
        return None
    return db.session.scalar(
        sa.select(SettlementItem)
        .where(SettlementItem.entity_id == reference)
        .options(sa.orm.joinedload(SettlementItem.settlement))
    )


def _gateway_columns(reference, amount):
    item = _settled(reference)
    if item is None:
        return {
            "gateway_fee": None,
            "gateway_tax": None,
            "utr": None,
            "settlement_reference": None,
            "net": amount,
        }
    return {
        "gateway_fee": item.fee,
        "gateway_tax": item.tax,
        "utr": item.settlement.utr,
        "settlement_reference": item.settlement.razorpay_settlement_id,
        "net": amount - item.fee,
    }


def _visit_columns(visit):
    if visit is None:
        return {"visit_id": None, "visit_number": None}
    return {"visit_id": visit.id, "visit_number": visit.number}


def _patient(user_id, visit=None):
    """The patient's columns. The name at the time: the one ``visit`` was invoiced to
    (``billed_to_name``, its account holder's, kept by the visit: a rebuild writes it
    again whatever the patient is called now); else today's, which a row already written
    keeps (``projection.NAME_KEPT``)."""
    kept = visit.billed_to_name if visit is not None and visit.patient_id == user_id else None
    if user_id and kept:
        return {
            "patient_id": user_id,
            "provider_id": None,
            "party_name": kept,
            projection.NAME_KEPT: True,
        }
    user = db.session.get(User, user_id) if user_id else None
    return {"patient_id": user_id, "provider_id": None, "party_name": user.name if user else None}


def _provider(provider_id):
    """The provider's columns; no record keeps a provider's name, so a row already written
    keeps the one it was written with (a rename changes rows written after it)."""
    provider = db.session.get(Provider, provider_id) if provider_id else None
    return {
        "patient_id": None,
        "provider_id": provider_id,
        "party_name": provider.display_name if provider else None,
    }


NO_BREAKUP = dict.fromkeys(("fee", "platform_fee", "gst", "discount", "wallet"))


def _payment_breakup(p: pay.Payment, amount):
    """The visit's invoice on the payment that paid it (``receipts.breakup_of``), none on
    any other: a breakup shown always adds up to the row's amount (POLICY: every breakdown
    adds up), and summing the GST column never counts an invoice twice or GST nobody paid."""
    parts = receipts.breakup_of(p)
    if parts is None or parts.paid != amount:
        return NO_BREAKUP
    return {
        "fee": parts.fee,
        "platform_fee": parts.platform_fee,
        "gst": parts.gst,
        "discount": parts.discount,
        "wallet": parts.wallet,
    }


def project_payment(p: pay.Payment):
    amount = p.captured_amount or p.amount
    visit = p.visit
    row = {
        "source": "payment",
        "source_id": p.id,
        "type": PAYMENT_TYPES.get(p.kind, mm.PAYMENT_ONLINE),
        "status": p.status,
        "failed": p.status == PaymentStatus.FAILED,
        # Money in once captured, a capture that paid for nothing too (late, the wrong
        # amount: its money went to the wallet, and came in all the same).
        "bucket": mm.BUCKET_IN
        if p.status == PaymentStatus.SUCCESSFUL and p.kind != pay.WALLET
        else None,
        "occurred_at": p.paid_at or p.created_at,
        "amount": amount,
        "reference": p.razorpay_payment_id or p.razorpay_link_id or p.razorpay_order_id,
        **_patient(visit.patient_id if visit else None, visit),
        **_visit_columns(visit),
    }
    row.update(_payment_breakup(p, amount))
    row.update(_gateway_columns(p.razorpay_payment_id, amount))
    return row


def project_refund(r: Refund):
    return {
        "source": "refund",
        "source_id": r.id,
        "type": mm.REFUND_GATEWAY if r.destination == GATEWAY else mm.REFUND_WALLET,
        "status": r.status,
        "failed": r.status == RefundStatus.FAILED,
        "bucket": mm.BUCKET_REFUND
        if r.status == RefundStatus.PROCESSED and r.destination == GATEWAY
        else None,
        "occurred_at": r.processed_at or r.created_at,
        "amount": r.amount,
        "net": r.amount,
        # A part settled against a refund made on Razorpay's dashboard names that refund
        # (refunds.outside): the money left through it, and its reconciliation case is its.
        "reference": r.razorpay_refund_id or r.outside_refund_id,
        **NO_BREAKUP,
        **_patient(r.patient_id, r.visit),
        **_visit_columns(r.visit),
    }


def _payout_postings(payout_id):
    """What the ledger posted for a payout that the console reads: RazorpayX's fee, GST
    included, and that GST, as taken from the bank (``payout:<id>:fees``) and as given
    back on a reversal (``…:fees_returned``), each as {gateway_fee, gateway_tax} (None
    when not posted: not processed, or a free payout); and when the reversal's money
    came back (``payout:<id>:reversed``). One statement."""
    rows = db.session.execute(
        sa.select(
            LedgerTransaction.kind,
            LedgerTransaction.created_at,
            LedgerAccount.code,
            LedgerEntry.amount,
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.reference_type == "payout",
            LedgerTransaction.reference_id == str(payout_id),
            LedgerTransaction.kind.in_((FEES_KIND, FEES_RETURNED_KIND, REVERSED_KIND)),
        )
    ).all()
    fees = {FEES_KIND: None, FEES_RETURNED_KIND: None}
    reversed_at = None
    for kind, at, code, amount in rows:
        if kind == REVERSED_KIND:
            reversed_at = at
            continue
        taken = fees[kind] or {"gateway_fee": 0, "gateway_tax": 0}
        if code == chart.BANK:  # the fee leaves the bank (a credit), comes back (a debit)
            taken["gateway_fee"] -= amount
        elif code == chart.GST_INPUT:
            taken["gateway_tax"] += amount
        fees[kind] = taken
    none = {"gateway_fee": None, "gateway_tax": None}
    return fees[FEES_KIND] or none, fees[FEES_RETURNED_KIND] or none, reversed_at


def project_payout(p: Payout):
    """The payout's row and, once the bank sent a processed payout back, its reversal's.

    Cash view, each period stable once it is over (review finding: the row counted only
    while PROCESSED, so a reversal in July took the payout out of a closed June): a
    payout counts as paid out when it was processed (its money left the bank), whatever
    happens later; its reversal is a movement of its own, dated when the money came back
    (the ledger's ``payout:<id>:reversed``), with the payout's net, returned fee and TDS
    negative, so the period it falls in takes them back. A payout never processed (FAILED,
    or reversed while in flight: no money left the bank) counts nowhere."""
    booking = db.session.get(IndividualBooking, p.booking_id) if p.booking_id else None
    fee, fee_returned, reversed_at = _payout_postings(p.id)
    processed = p.processed_at is not None
    common = {
        "reference": p.razorpay_payout_id,
        "utr": p.utr,
        **_provider(p.provider_id),
        **_visit_columns(booking.visit if booking else None),
    }
    row = {
        "source": "payout",
        "source_id": p.id,
        "type": mm.PAYOUT,
        "status": p.status,
        # Red when it failed or came back (its reversal's row is not: that money arrived).
        "failed": p.status in (PayoutStatus.FAILED, PayoutStatus.REVERSED),
        "bucket": mm.BUCKET_PAYOUT if processed else None,
        "occurred_at": p.processed_at or p.created_at,
        "amount": p.gross,
        # Withheld for the government: the payout's own, the figure the TDS report counts
        # for it (not the report's total of a period: that dates a payout by when it was
        # made; docs/transactions.md).
        "tds": p.tds,
        "net": p.net,  # after TDS: what reaches the provider's bank
        # RazorpayX's fee, taken from the bank on top of the net (the summary counts it
        # with the gateway fees); a reversal's row gives it back
        **fee,
        **common,
    }
    if not (processed and p.status == PayoutStatus.REVERSED):
        return [row]
    reversal = {
        "source": mm.PAYOUT_REVERSAL,
        "source_id": p.id,
        "type": mm.PAYOUT_REVERSAL,
        "status": p.status,
        "failed": False,
        "bucket": mm.BUCKET_PAYOUT,
        # The posting is in the reversal's own unit of work; the payout's last change
        # only if it were missing.
        "occurred_at": reversed_at or p.updated_at,
        "amount": -p.gross,
        "tds": -p.tds,
        "net": -p.net,
        **fee_returned,
        **common,
    }
    return [row, reversal]


def _fee_paid_at(r: Reschedule):
    """When a fee's money came in: when the booking moved, or for a fee that went to the
    wallet (slot gone, paid after the request ended) that credit's posting, as the ledger
    and reconciliation date it; a fee not paid yet, by its request."""
    if r.done_at:
        return r.done_at
    if r.razorpay_payment_id:
        credited = db.session.scalar(
            sa.select(LedgerTransaction.created_at).where(
                LedgerTransaction.idempotency_key == unapplied_key(r.id, r.razorpay_payment_id)
            )
        )
        if credited is not None:
            return credited
    return r.created_at


def project_reschedule(r: Reschedule):
    if not r.total or r.pay_with == PAY_NONE:
        return None
    row = {
        "source": "reschedule",
        "source_id": r.id,
        "type": mm.RESCHEDULE_FEE,
        "status": r.status,
        "failed": r.status == RescheduleStatus.FAILED,
        # Money in when the booking moved, or when Razorpay captured the fee all the same
        # (the slot gone, paid late: the fee went to the wallet; the row keeps its id).
        "bucket": mm.BUCKET_IN
        if (r.status == RescheduleStatus.DONE and r.pay_with in (PAY_GATEWAY, PAY_DESK))
        or (r.pay_with == PAY_GATEWAY and r.razorpay_payment_id)
        else None,
        "occurred_at": _fee_paid_at(r),
        "amount": r.total,
        "fee": r.penalty,
        "platform_fee": r.platform_fee,
        "gst": r.gst,
        "discount": None,
        "wallet": None,
        "reference": r.razorpay_payment_id,
        **_patient(r.visit.patient_id if r.visit else None, r.visit),
        **_visit_columns(r.visit),
    }
    row.update(_gateway_columns(r.razorpay_payment_id, r.total))
    return row


def project_fee_capture(c: FeeCapture):
    """A reschedule fee payment its reschedule does not record (the wrong amount, a second
    one, one paid after the account was closed): money in when Razorpay captured it,
    though it went to the wallet (or back to its source) and paid for nothing (so no
    price breakup)."""
    visit = c.reschedule.visit
    row = {
        "source": mm.FEE_CAPTURE,
        "source_id": c.id,
        "type": mm.RESCHEDULE_FEE,
        "status": PaymentStatus.SUCCESSFUL,
        "failed": False,
        "bucket": mm.BUCKET_IN,
        "occurred_at": c.captured_at,
        "amount": c.amount,
        **NO_BREAKUP,
        "reference": c.razorpay_payment_id,
        **_patient(visit.patient_id if visit else None, visit),
        **_visit_columns(visit),
    }
    row.update(_gateway_columns(c.razorpay_payment_id, c.amount))
    return row


def _ledger_visit(txn):
    kind, ref = txn.reference_type, txn.reference_id
    if not is_digits(ref):
        return None
    model = {
        "payment": pay.Payment,
        "reschedule": Reschedule,
        "cancellation": Cancellation,
        "booking": IndividualBooking,
    }.get(kind)
    obj = db.session.get(model, int(ref)) if model else None
    return getattr(obj, "visit", None)


def project_ledger(txn: LedgerTransaction):
    if txn.kind in (FEES_KIND, FEES_RETURNED_KIND) and txn.reference_type == "payout":
        # A payout's fee posted (or returned) changes its row's fee, even when the payout
        # itself did not change (fees that came with a later ``payout.updated``).
        payout = db.session.get(Payout, int(txn.reference_id))
        return project_payout(payout) if payout is not None else None
    if txn.kind == VISIT_CONFIRMED and txn.reference_type == "visit":
        return _project_unpaid_visit(txn)
    type_ = LEDGER_TYPES.get(txn.kind)
    if type_ is None:
        return None
    amount = sum(e.amount for e in txn.entries if e.amount > 0)
    visit = _ledger_visit(txn)
    party = {"patient_id": None, "provider_id": None, "party_name": None}
    for e in txn.entries:
        code = e.account.code
        if code.startswith(chart.PATIENT_WALLET + ":"):
            party = _patient(int(code.split(":", 1)[1]), visit)
        elif code.startswith(chart.PROVIDER_PAYABLE + ":"):
            party = _provider(int(code.split(":", 1)[1]))
    return {
        "source": "ledger",
        "source_id": txn.id,
        "type": type_,
        "status": "POSTED",
        "failed": False,
        "bucket": None,
        "occurred_at": txn.created_at,
        "amount": amount,
        "net": amount,
        **party,
        **_visit_columns(visit),
    }


def _project_unpaid_visit(txn):
    """A visit's confirmation has a row only when no payment paid its invoice (a 100 %
    coupon: nothing was due, so no payment's row carries it, ``receipts.breakup_of``). The
    row moves no cash (no bucket, amount 0: counted among the other rows) and carries the
    invoice's breakup, adding up to 0, so the GST column sums every invoice's GST once
    (review finding: a free visit's GST was in no row; docs/transactions.md)."""
    ref = txn.reference_id
    visit = db.session.get(MasterBooking, int(ref)) if is_digits(ref) else None
    parts = receipts.breakup_unpaid(visit) if visit is not None else None
    if parts is None or parts.paid != 0:
        return None
    return {
        "source": "ledger",
        "source_id": txn.id,
        "type": mm.VISIT_UNPAID,
        "status": "POSTED",
        "failed": False,
        "bucket": None,
        "occurred_at": txn.created_at,
        "amount": 0,
        "net": 0,
        "fee": parts.fee,
        "platform_fee": parts.platform_fee,
        "gst": parts.gst,
        "discount": parts.discount,
        "wallet": parts.wallet,
        **_patient(visit.patient_id, visit),
        **_visit_columns(visit),
    }


def project_settlement(s: Settlement):
    return {
        "source": "settlement",
        "source_id": s.id,
        "type": mm.SETTLEMENT,
        "status": s.status.upper(),
        "failed": False,
        "bucket": None,
        "occurred_at": s.settled_at,
        "amount": s.gross,
        "gateway_fee": s.fees,
        "gateway_tax": s.tax,
        "net": s.amount,
        "reference": s.razorpay_settlement_id,
        "utr": s.utr,
        "settlement_reference": s.razorpay_settlement_id,
    }


def project_settlement_item(item: SettlementItem):
    """A settlement row changes the gateway fee of the payment it covers."""
    payment = db.session.scalar(
        sa.select(pay.Payment).where(pay.Payment.razorpay_payment_id == item.entity_id)
    )
    if payment is not None:
        return project_payment(payment)
    resched = db.session.scalar(
        sa.select(Reschedule).where(Reschedule.razorpay_payment_id == item.entity_id)
    )
    if resched is not None:
        return project_reschedule(resched)
    capture = db.session.scalar(
        sa.select(FeeCapture).where(FeeCapture.razorpay_payment_id == item.entity_id)
    )
    return project_fee_capture(capture) if capture is not None else None


# A wallet pay-out's console type and bucket, by its kind (``portal.wallet.cash``,
# ``portal.wallet.bank``); a manual adjustment is neither.
PAYOUT_ROWS = {
    CASH_PAYOUT: (mm.CASH_PAYOUT, mm.BUCKET_CASH_OUT),
    BANK_PAYOUT: (mm.BANK_PAYOUT, mm.BUCKET_BANK_OUT),
}


def project_adjustment(a: WalletAdjustment):
    """A manual wallet credit or debit (amount: its size; net: signed, credit > 0), or a
    pay-out of the wallet: cash at the desk, cash out once applied; a bank transfer, bank
    out once applied (each its own bucket: the summary's net falls by it, as a desk
    payment's money in raised it; review finding), its reference the desk receipt or the
    UTR (the cash pay-out's showed none)."""
    applied = a.status == AdjustmentStatus.APPLIED
    kind, bucket = PAYOUT_ROWS.get(a.kind, (mm.ADJUSTMENT, None))
    return {
        "source": "wallet_adjustment",  # as its ledger postings and audit rows name it
        "source_id": a.id,
        "type": kind,
        "status": a.status,
        "failed": False,
        "bucket": bucket if applied else None,
        "occurred_at": a.applied_at or a.created_at,
        "amount": abs(a.amount),
        "net": a.amount,
        "reference": a.receipt_no if a.is_payout else None,
        **_patient(a.patient_id),
    }


def install():
    register(pay.Payment, project_payment)
    register(Refund, project_refund)
    register(Payout, project_payout)
    register(Reschedule, project_reschedule)
    register(FeeCapture, project_fee_capture)
    register(LedgerTransaction, project_ledger)
    register(Settlement, project_settlement)
    register(SettlementItem, project_settlement_item)
    register(WalletAdjustment, project_adjustment)
    projection.install()


install()
