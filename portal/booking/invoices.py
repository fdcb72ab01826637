"""Tax documents keep what they were issued with. An invoice line (an individual booking,
at its visit's confirmation) and a reschedule fee (when it is charged) store the clinic's
GSTIN of that moment and their CGST/SGST/IGST split; the GST report, the receipt and the
credit notes read these, so editing a clinic's GSTIN changes only documents issued after
(docs/reports.md)."""

from portal.domain import gst as gst_rules


def issue_line(item):
    """Stamp an invoice line as issued (once: a repeated confirmation keeps the first)."""
    if item.cgst is None:
        item.invoice_gstin = item.clinic.gstin
        item.cgst, item.sgst, item.igst = gst_rules.split_for_gstin(item.gst, item.invoice_gstin)


def issue_fee(resched, item):
    """Stamp a reschedule fee's tax document as issued (the booking's clinic)."""
    if resched.cgst is None:
        resched.invoice_gstin = item.clinic.gstin
        resched.cgst, resched.sgst, resched.igst = gst_rules.split_for_gstin(
            resched.gst, resched.invoice_gstin
        )


def line_split(document):
    """The stored ``(cgst, sgst, igst)`` of an invoice line or a reschedule fee."""
    return document.cgst, document.sgst, document.igst
