"""GST credit notes: a cancellation or refund that takes back invoiced GST issues a credit
note in its own number series per financial year ("CN/26-27/000001"; one issued before
that form keeps its "CN/2026-27/000001"); the invoice it reverses is never edited.

One credit note per ledger transaction that debits ``gst_payable`` for a booking of an
invoiced visit (``booking_cancelled``, ``refund_override``) or for one of its reschedule
fees (``reschedule_fee_refund``): the GST on the note is that debit, so the notes and the
ledger agree to the paisa. The note cites the document it reverses (the visit's invoice,
or the fee's own tax invoice, its ``RF/`` number) and carries the GSTIN it was issued
under, and CGST/SGST/IGST split cumulatively over that document, so the notes of a fully
reversed line take back exactly its CGST, SGST and IGST. Issued from the
``booking_cancelled`` and ``refund_override_approved`` signals, inside the cancelling unit
of work."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import events
from portal.booking import invoices, series
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.db import UTCDateTime, db, utcnow
from portal.domain import gst as gst_rules
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction

REVERSING_KINDS = ("booking_cancelled", "refund_override", "reschedule_fee_refund")


class CreditNoteCounter(db.Model):
    """The last credit-note number used in each financial year ("2026-27")."""

    __tablename__ = "credit_note_counters"

    financial_year: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class CreditNote(db.Model):
    """A GST credit note against the tax document it reverses: the visit's invoice, or a
    reschedule fee's own (``invoice_no``: "CP/…" or "RF/…"). Figures are paise, positive
    (what is taken back); the GSTIN (the reversed document's) and the tax split are kept
    as issued."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        sa.CheckConstraint("gst > 0", name="gst_positive"),
        sa.CheckConstraint("taxable_value >= 0 AND exempt_value >= 0", name="values_non_negative"),
        sa.CheckConstraint("cgst + sgst + igst = gst", name="split_adds_up"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    financial_year: Mapped[str] = mapped_column(sa.String(7))
    visit_id: Mapped[int] = mapped_column(sa.ForeignKey("visits.id"), index=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"), index=True)
    reschedule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reschedules.id"))
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    clinic_gstin: Mapped[str | None] = mapped_column(sa.String(15))
    invoice_no: Mapped[str] = mapped_column(sa.String(32))
    ledger_transaction_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ledger_transactions.id"), unique=True
    )
    reason: Mapped[str] = mapped_column(sa.String(40))  # the reversing posting's kind
    taxable_value: Mapped[int] = mapped_column(sa.BigInteger)
    exempt_value: Mapped[int] = mapped_column(sa.BigInteger)
    gst: Mapped[int] = mapped_column(sa.BigInteger)
    cgst: Mapped[int] = mapped_column(sa.BigInteger)
    sgst: Mapped[int] = mapped_column(sa.BigInteger)
    igst: Mapped[int] = mapped_column(sa.BigInteger)
    issued_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    visit = relationship("MasterBooking")
    clinic = relationship("Clinic")

    def owner_ids(self):
        return {self.visit.patient_id}

    def __repr__(self):
        return f"<CreditNote {self.number} {self.gst}>"


def next_credit_note_number(at):
    """ "CN/26-27/000001": numbered per financial year (``series``)."""
    fy, number = series.next_number(CreditNoteCounter, at)
    return fy, series.document_number("CN", fy, number)


def _gst_debits(item):
    """``[(transaction, gst paise debited)]`` reversing GST of this booking (and its
    reschedule fees) that have no credit note yet, oldest first."""
    reschedule_ids = sa.select(sa.cast(Reschedule.id, sa.String)).where(
        Reschedule.booking_id == item.id
    )
    noted = sa.select(CreditNote.ledger_transaction_id)
    return db.session.execute(
        sa.select(LedgerTransaction, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerAccount.code == chart.GST_PAYABLE,
            LedgerEntry.amount > 0,
            LedgerTransaction.kind.in_(REVERSING_KINDS),
            LedgerTransaction.id.not_in(noted),
            sa.or_(
                sa.and_(
                    LedgerTransaction.reference_type == "booking",
                    LedgerTransaction.reference_id == str(item.id),
                ),
                sa.and_(
                    LedgerTransaction.reference_type == "reschedule",
                    LedgerTransaction.reference_id.in_(reschedule_ids),
                ),
            ),
        )
        .order_by(LedgerTransaction.id)
    ).all()


def _document(item, txn):
    """The reversed document (the booking's invoice line or a reschedule fee) with its
    number (the visit's invoice, or the fee's own tax invoice) and its taxable and exempt
    values."""
    if txn.reference_type == "reschedule":
        resched = db.session.get(Reschedule, int(txn.reference_id))
        return resched, resched.document_no, resched.penalty + resched.platform_fee, 0
    return item, item.visit.invoice_no, item.taxable, 0 if item.fee_taxed else item.fee


def _noted(item, reschedule_id):
    """What the credit notes issued so far took back from one document (the booking's own
    line, or one of its reschedule fees): ``(cgst, sgst, igst)``, their GST, their taxable
    and their exempt value."""
    note = CreditNote
    row = db.session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(note.cgst), 0),
            sa.func.coalesce(sa.func.sum(note.sgst), 0),
            sa.func.coalesce(sa.func.sum(note.igst), 0),
            sa.func.coalesce(sa.func.sum(note.gst), 0),
            sa.func.coalesce(sa.func.sum(note.taxable_value), 0),
            sa.func.coalesce(sa.func.sum(note.exempt_value), 0),
        ).where(
            note.booking_id == item.id,
            note.reschedule_id.is_(None)
            if reschedule_id is None
            else note.reschedule_id == reschedule_id,
        )
    ).one()
    cgst, sgst, igst, gst, taxable, exempt = (int(v) for v in row)
    return (cgst, sgst, igst), gst, taxable, exempt


def _refunded(txn):
    """Paise refunded of the document ``txn`` reverses, by it and the reversals before it:
    their credits to the patient's wallet and to ``refunds_payable`` (the refund a note
    records, as the ledger posted it)."""
    account, entry, other = LedgerAccount, LedgerEntry, LedgerTransaction
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(-entry.amount), 0))
            .join(account, account.id == entry.account_id)
            .join(other, other.id == entry.transaction_id)
            .where(
                other.reference_type == txn.reference_type,
                other.reference_id == txn.reference_id,
                other.kind.in_(REVERSING_KINDS),
                other.id <= txn.id,
                entry.amount < 0,
                sa.or_(
                    account.code == chart.REFUNDS_PAYABLE,
                    account.code.like(f"{chart.PATIENT_WALLET}:%"),
                ),
            )
        )
    )


def issue_for_booking(booking_id, now=None):
    """Issue the credit notes this booking's GST reversals call for (idempotent). A note
    is issued under the GSTIN of the document it reverses, as that was issued, and its
    split and its taxable and exempt values are cumulative over that document
    (``domain.gst.reversal_split``, ``values_taken_back``)."""
    item = db.session.get(IndividualBooking, booking_id)
    if item is None or item.visit.invoice_no is None:
        return []
    notes = []
    for txn, tax in _gst_debits(item):
        at = now or txn.created_at or utcnow()  # the note is dated as its posting
        fy, number = next_credit_note_number(at)
        document, document_no, taxable_total, exempt_total = _document(item, txn)
        reschedule_id = None if document is item else document.id
        before, gst_before, taxable_before, exempt_before = _noted(item, reschedule_id)
        cgst, sgst, igst = gst_rules.reversal_split(tax, invoices.line_split(document), before)
        # The note's values are its refund less its GST, cumulative over the document as
        # the split is: pro rata to the rounded GST, a note took back more than its refund.
        taxable, exempt = gst_rules.values_taken_back(
            (taxable_total, exempt_total),
            _refunded(txn),
            gst_before + tax,
            (taxable_before, exempt_before),
        )
        note = CreditNote(
            number=number,
            financial_year=fy,
            visit_id=item.master_id,
            booking_id=item.id,
            reschedule_id=reschedule_id,
            clinic_id=item.clinic_id,
            clinic_gstin=document.invoice_gstin,
            invoice_no=document_no,  # the document it reverses: a fee is its own invoice
            ledger_transaction_id=txn.id,
            reason=txn.kind,
            taxable_value=taxable,
            exempt_value=exempt,
            gst=tax,
            cgst=cgst,
            sgst=sgst,
            igst=igst,
            issued_at=at,
        )
        db.session.add(note)
        db.session.flush()  # the next note on this document counts this one
        notes.append(note)
    return notes


def _in_order(which):
    """The credit notes ``which`` selects, in the order issued: the one statement both the
    receipt and the patient's data download read them with."""
    return db.session.scalars(sa.select(CreditNote).where(which).order_by(CreditNote.id)).all()


def for_visit(visit_id):
    """The credit notes against a visit's invoice (its receipt lists them)."""
    return _in_order(CreditNote.visit_id == visit_id)


def of_patient(patient_id):
    """Every credit note against the patient's invoices, each visit's as its receipt lists
    them: one statement however many visits (the data download)."""
    return _in_order(
        CreditNote.visit_id.in_(
            sa.select(MasterBooking.id).where(MasterBooking.patient_id == patient_id)
        )
    )


@events.booking_cancelled.connect
def _on_cancelled(sender, *, booking_id, **_):
    issue_for_booking(booking_id)


@events.refund_override_approved.connect
def _on_override(sender, *, booking_id, **_):
    issue_for_booking(booking_id)
