"""Finance reports (docs/reports.md): GST per month and clinic GSTIN, TDS per provider per
quarter, the audit log with approval trails. Each is a read function for its page and an
export builder (``portal.exports``) for its CSV, both from the same filter values."""
