"""The GST report: per month (clinic time) and per clinic GSTIN, one row per document —
tax invoices (a visit's confirmation, per clinic), reschedule fees, and credit notes
(negative) — with taxable value, exempt value and the tax split (CGST + SGST within the
state, IGST otherwise) and the GST rate it was charged at, then a summary per GSTIN
(collected, reversed, net) split by rate, as GSTR-1 asks. Each document is filed under the
GSTIN, split and clinic name stored on it when issued (a credit note: those of the
document it reverses), never the clinic's of today, so editing a clinic does not rewrite
a past month; its rate is that of the policy version its booking was
priced under (``invoices.gst_bps``, what the receipt states), never today's.

Every row comes from a ledger transaction that moved ``gst_payable`` in the month, so the
report's tax equals the ledger's: collected = the account's credits, reversed = its
debits (docs/reports.md)."""

from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import sqlalchemy as sa

from portal.booking.credit_notes import CreditNote
from portal.booking.invoices import gst_bps_column
from portal.booking.models import IndividualBooking, MasterBooking, Reschedule
from portal.booking.postings import VISIT_CONFIRMED
from portal.catalog.models import Clinic
from portal.db import db, utcnow
from portal.domain.ids import parse_id
from portal.domain.rates import percent_text
from portal.domain.timezone import CLINIC_TZ
from portal.exports import ExportError, ExportSpec, money, register, text, when
from portal.ledger.models import LedgerTransaction

from . import periods

INVOICE, RESCHEDULE_FEE, CREDIT_NOTE = "INVOICE", "RESCHEDULE_FEE", "CREDIT_NOTE"
MSG_CLINIC = "Choose a clinic from the list"
UNREGISTERED = "no GSTIN"


def parse(params):
    month_text = (params.get("month") or "").strip() or utcnow().astimezone(CLINIC_TZ).strftime(
        "%Y-%m"
    )
    first = periods.parse_month(month_text)
    clinic_text = (params.get("clinic_id") or "").strip()
    clinic = None
    if clinic_text:
        clinic_id = parse_id(clinic_text)
        clinic = db.session.get(Clinic, clinic_id) if clinic_id else None
        if clinic is None:
            raise ExportError(MSG_CLINIC, field="clinic_id")
    return {"month": first, "clinic": clinic}


def resolved(f):
    """``f`` as filter values with the default written out (an empty month: the month it
    was when parsed, "2026-06"): a background export keeps these (``ExportSpec.params``)."""
    clinic = f["clinic"]
    return {"month": f"{f['month']:%Y-%m}", "clinic_id": str(clinic.id) if clinic else ""}


def describe(f):
    clinic = f["clinic"]
    return [
        ("Month", f["month"].strftime("%Y-%m")),
        ("Clinic", f"{clinic.name} ({clinic.gstin or UNREGISTERED})" if clinic else "all"),
    ]


def clinic_choices():
    return db.session.execute(sa.select(Clinic.id, Clinic.name).order_by(Clinic.name)).all()


def _invoices(low, high, clinic_id):
    txn, visit, item = LedgerTransaction, MasterBooking, IndividualBooking
    # A visit's lines may differ in rate (one added after a change): a row per rate.
    rate = gst_bps_column(item.policy_version_id)
    q = (
        sa.select(
            txn.created_at.label("at"),
            sa.literal(INVOICE).label("doc_type"),
            visit.invoice_no.label("doc_no"),
            visit.invoice_no.label("invoice_no"),
            item.invoice_clinic_name.label("clinic_name"),  # as issued, as the GSTIN
            item.invoice_gstin.label("gstin"),
            rate.label("gst_bps"),
            sa.cast(sa.func.sum(item.taxable), sa.BigInteger).label("taxable"),
            sa.cast(sa.func.sum(sa.case((item.fee_taxed, 0), else_=item.fee)), sa.BigInteger).label(
                "exempt"
            ),
            sa.cast(sa.func.sum(item.gst), sa.BigInteger).label("gst"),
            sa.cast(sa.func.sum(item.cgst), sa.BigInteger).label("cgst"),
            sa.cast(sa.func.sum(item.sgst), sa.BigInteger).label("sgst"),
            sa.cast(sa.func.sum(item.igst), sa.BigInteger).label("igst"),
        )
        .select_from(txn)
        .join(visit, visit.id == sa.cast(txn.reference_id, sa.Integer))
        .join(item, sa.and_(item.master_id == visit.id, item.confirmed_at.is_not(None)))
        .join(Clinic, Clinic.id == item.clinic_id)
        .where(
            txn.kind == VISIT_CONFIRMED,
            txn.reference_type == "visit",
            txn.created_at >= low,
            txn.created_at < high,
        )
        .group_by(
            txn.id,
            txn.created_at,
            visit.invoice_no,
            Clinic.id,
            item.invoice_clinic_name,
            item.invoice_gstin,
            rate,
        )
    )
    return q.where(Clinic.id == clinic_id) if clinic_id else q


def _reschedule_fees(low, high, clinic_id):
    txn, item, visit = LedgerTransaction, IndividualBooking, MasterBooking
    q = (
        sa.select(
            txn.created_at.label("at"),
            sa.literal(RESCHEDULE_FEE).label("doc_type"),
            Reschedule.document_no.label("doc_no"),
            visit.invoice_no.label("invoice_no"),
            Reschedule.invoice_clinic_name.label("clinic_name"),  # as issued
            Reschedule.invoice_gstin.label("gstin"),
            # Quoted under its booking's version (docs/policy.md): the booking's rate.
            gst_bps_column(item.policy_version_id).label("gst_bps"),
            (Reschedule.penalty + Reschedule.platform_fee).label("taxable"),
            sa.literal(0).label("exempt"),
            Reschedule.gst.label("gst"),
            Reschedule.cgst.label("cgst"),
            Reschedule.sgst.label("sgst"),
            Reschedule.igst.label("igst"),
        )
        .select_from(txn)
        .join(Reschedule, Reschedule.id == sa.cast(txn.reference_id, sa.Integer))
        .join(item, item.id == Reschedule.booking_id)
        .join(visit, visit.id == item.master_id)
        .join(Clinic, Clinic.id == item.clinic_id)
        .where(
            txn.kind == "reschedule_fee",
            txn.reference_type == "reschedule",
            txn.created_at >= low,
            txn.created_at < high,
        )
    )
    return q.where(Clinic.id == clinic_id) if clinic_id else q


def _credit_notes(low, high, clinic_id):
    note, item = CreditNote, IndividualBooking
    # Issued under the GSTIN of the document it reverses, as issued: so is its clinic's
    # name (a fee's, or the line's).
    reversed_clinic = sa.case(
        (note.reschedule_id.is_not(None), Reschedule.invoice_clinic_name),
        else_=item.invoice_clinic_name,
    )
    q = (
        sa.select(
            note.issued_at.label("at"),
            sa.literal(CREDIT_NOTE).label("doc_type"),
            note.number.label("doc_no"),
            note.invoice_no.label("invoice_no"),
            reversed_clinic.label("clinic_name"),
            note.clinic_gstin.label("gstin"),
            # A reversal reduces the rate the tax was charged at: its booking's.
            gst_bps_column(item.policy_version_id).label("gst_bps"),
            (-note.taxable_value).label("taxable"),
            (-note.exempt_value).label("exempt"),
            (-note.gst).label("gst"),
            (-note.cgst).label("cgst"),
            (-note.sgst).label("sgst"),
            (-note.igst).label("igst"),
        )
        .join(item, item.id == note.booking_id)
        .outerjoin(Reschedule, Reschedule.id == note.reschedule_id)
        .where(note.issued_at >= low, note.issued_at < high)
    )
    return q.where(note.clinic_id == clinic_id) if clinic_id else q


def query(f):
    low, high = periods.month_bounds(f["month"])
    clinic_id = f["clinic"].id if f["clinic"] else None
    union = sa.union_all(
        _invoices(low, high, clinic_id),
        _reschedule_fees(low, high, clinic_id),
        _credit_notes(low, high, clinic_id),
    ).subquery()
    return sa.select(union).order_by(union.c.at, union.c.doc_no)


def split(row):
    """(cgst, sgst, igst) of one document row (signed like its tax), as stored when the
    document was issued (``booking.invoices``, ``booking.credit_notes``): an invoice's is
    the sum of its lines', a credit note's is cumulative over the line it reverses, so a
    fully reversed line nets 0 in each."""
    return int(row.cgst), int(row.sgst), int(row.igst)


def rate_text(bps):
    """A document's or a summary row's GST rate as the receipt states it ("18%")."""
    return "" if bps is None else f"{percent_text(bps)}%"


@dataclass
class GstinTotals:
    """A GSTIN's documents of the month summed (integer paise), and the same split by GST
    rate (``by_rate``: one ``GstinTotals`` per rate, ``rate_bps`` set, which add up to
    this one field by field)."""

    gstin: str | None
    rate_bps: int | None = None
    clinics: set = field(default_factory=set)
    documents: int = 0
    taxable: int = 0
    exempt: int = 0
    cgst: int = 0
    sgst: int = 0
    igst: int = 0
    collected: int = 0
    reversed: int = 0
    rates: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)

    @property
    def net(self):
        return self.collected - self.reversed

    @property
    def by_rate(self):
        return sorted(self.rates.values(), key=lambda t: (t.rate_bps is None, t.rate_bps or 0))

    def add(self, row):
        """Count one document row in, here and under its rate; returns its split."""
        rate = row.gst_bps
        self.rates.setdefault(rate, GstinTotals(self.gstin, rate)).count(row)
        return self.count(row)

    def count(self, row):
        """Count one document row in (integer paise); returns its (cgst, sgst, igst).
        An invoice whose lines were priced under two rates is two rows, one per rate, but
        one document: counted once here, once under each rate it holds (review finding:
        the GSTIN's line and the month's Total counted it twice)."""
        self.clinics.add(row.clinic_name)
        document = (row.doc_type, row.doc_no, row.at, row.clinic_name)
        if document not in self.seen:
            self.seen.add(document)
            self.documents += 1
        self.taxable += int(row.taxable)
        self.exempt += int(row.exempt)
        cgst, sgst, igst = split(row)
        self.cgst, self.sgst, self.igst = self.cgst + cgst, self.sgst + sgst, self.igst + igst
        if row.gst >= 0:
            self.collected += int(row.gst)
        else:
            self.reversed -= int(row.gst)
        return cgst, sgst, igst


class Totals:
    """The per-GSTIN totals of the document rows read so far: the page's summary, and the
    file's totals rows (``ExportSpec.totals``: fed the file's own rows as they are
    written, so its Total rows are the sums of the rows above them)."""

    def __init__(self):
        self._by_key = {}

    def add(self, row):
        key = row.gstin or UNREGISTERED
        return self._by_key.setdefault(key, GstinTotals(key)).add(row)

    def by_gstin(self):
        return sorted(self._by_key.values(), key=lambda t: t.gstin)

    def rows(self):
        """The summary as rows of the file's columns: per GSTIN, a row per rate and its
        total, then the month's total (the CSV had only the documents)."""
        by_gstin = self.by_gstin()
        rows = []
        for t in by_gstin:
            rows += [_line(BY_RATE, r) for r in t.by_rate] + [_line(BY_GSTIN, t)]
        return rows + [_line(TOTAL, whole(by_gstin))]


BY_RATE, BY_GSTIN, TOTAL = "Total for GSTIN and rate", "Total for GSTIN", "Total"


SUMMED = ("documents", "taxable", "exempt", "cgst", "sgst", "igst", "collected", "reversed")


def whole(by_gstin):
    """The month's total: the per-GSTIN totals summed field by field (integer paise),
    for the page's footer and the file's Total row alike. No clinics: the total row
    names none."""
    total = GstinTotals(None)
    for t in by_gstin:
        for name in SUMMED:
            setattr(total, name, getattr(total, name) + getattr(t, name))
    return total


def _line(label, t):
    return SimpleNamespace(
        at=None, doc_type=label, doc_no=None, invoice_no=None,
        clinic_name=", ".join(sorted(t.clinics)) if t.clinics else None,
        gstin=t.gstin, gst_bps=t.rate_bps, taxable=t.taxable, exempt=t.exempt, cgst=t.cgst,
        sgst=t.sgst, igst=t.igst, gst=t.net,
    )  # fmt: skip


@dataclass
class GstReport:
    filters: dict
    documents: list
    by_gstin: list
    more: int

    @cached_property
    def total(self):
        """The month's total row (the page's footer prints it, not sums of its own)."""
        return whole(self.by_gstin)

    @property
    def collected(self):
        return self.total.collected

    @property
    def reversed(self):
        return self.total.reversed

    @property
    def net(self):
        return self.total.net

    @property
    def without_gstin(self):
        """The month's documents filed under "no GSTIN" (issued by a clinic without one),
        totalled, or None."""
        return next((t for t in self.by_gstin if t.gstin == UNREGISTERED), None)

    @property
    def collected_without_gstin(self):
        """GST invoiced in the month under "no GSTIN": tax collected that no GST return
        carries (the clinic supplies the platform fee, so its invoices charge GST on it
        even without a GSTIN). Collected, not net: a credit note giving some back does
        not make the rest reportable."""
        return self.without_gstin.collected if self.without_gstin else 0


def report(f, show=200):
    """The page: the per-GSTIN summary (every row, read on a streamed cursor) and the
    first ``show`` documents."""
    totals, shown, seen = Totals(), [], 0
    for row in db.session.execute(query(f).execution_options(yield_per=1000)):
        parts = totals.add(row)
        seen += 1
        if len(shown) < show:
            shown.append((row, parts))
    return GstReport(f, shown, totals.by_gstin(), seen - len(shown))


@register("gst")
def export(params):
    f = parse(params)
    return ExportSpec(
        name=f"gst-{f['month']:%Y-%m}",
        title="GST by month and clinic GSTIN",
        columns=[
            when("Date", lambda r: r.at),
            text("Document", lambda r: r.doc_type),
            text("Number", lambda r: r.doc_no),
            text("Against invoice", lambda r: r.invoice_no),
            text("Clinic", lambda r: r.clinic_name),
            text("GSTIN", lambda r: r.gstin or (UNREGISTERED if r.doc_type != TOTAL else "")),
            text("GST rate", lambda r: rate_text(r.gst_bps)),
            money("Taxable value", lambda r: r.taxable),
            money("Exempt value", lambda r: r.exempt),
            money("CGST", lambda r: r.cgst),
            money("SGST", lambda r: r.sgst),
            money("IGST", lambda r: r.igst),
            money("Total tax", lambda r: r.gst),
        ],
        query=query(f),
        filters=describe(f),
        totals=Totals,
        params=resolved(f),
    )
