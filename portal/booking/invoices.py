"""Tax documents keep what they were issued with. An invoice line (an individual booking,
at its visit's confirmation) and a reschedule fee (when it is charged) store the clinic's
GSTIN of that moment and their CGST/SGST/IGST split; the GST report, the receipt and the
credit notes read these, so editing a clinic's GSTIN changes only documents issued after
(docs/reports.md)."""

import sqlalchemy as sa

from portal.catalog.models import Clinic
from portal.domain import gst as gst_rules


def _gstin_of(clinic_id):
    """The clinic's GSTIN as a SQL expression: assigned to a column, it is read inside the
    UPDATE that writes the row (no statement of its own on the checkout's return)."""
    return sa.select(Clinic.gstin).where(Clinic.id == clinic_id).scalar_subquery()


def _stamp(document, clinic_id):
    document.invoice_gstin = _gstin_of(clinic_id)
    # The clinic's own state is the place of supply (domain.gst.split_for_gstin): the split
    # never depends on which GSTIN, so it is known before the GSTIN is read.
    document.cgst, document.sgst, document.igst = gst_rules.split_for_gstin(document.gst, None)


def issue_lines(items):
    """Stamp invoice lines as issued (once: a line already issued keeps its stamp)."""
    for item in items:
        if item.cgst is None:
            _stamp(item, item.clinic_id)


def issue_fee(resched, item):
    """Stamp a reschedule fee's tax document as issued (the booking's clinic)."""
    if resched.cgst is None:
        _stamp(resched, item.clinic_id)


def line_split(document):
    """The stored ``(cgst, sgst, igst)`` of an invoice line or a reschedule fee."""
    return document.cgst, document.sgst, document.igst
