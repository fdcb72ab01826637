"""Finance reports: GST, TDS and the audit log, each with its filters and a CSV download
honouring them (``?format=csv``; large files run as a background export)."""

from flask import request

from portal import replica
from portal.exports import ExportError
from portal.reports import audit_log, gst, tds
from portal.web.admin import bp
from portal.web.exporting import csv_download
from portal.web.htmx import render
from portal.web.paging import page_args


def _params(*names):
    return {n: request.args.get(n, "") for n in names}


def _report(template, name, params, read, choices=dict):
    """Parse, then the CSV or the page; a filter that does not parse is a message beside
    its field (422), nothing else runs. All of it reads the reporting replica when there
    is one (``portal.replica``), the form's choices too (a clinic listed is one the
    filter accepts); the page says how far behind it is."""
    csv, error, data = request.args.get("format") == "csv", None, None
    with replica.reads():
        context = choices()
        try:
            filters = read["parse"](params)
            data = None if csv else read["data"](filters)
        except ExportError as exc:
            error = exc
    if error is not None:  # the page is drawn outside the block: its layout reads the primary
        return render(template, status=422, params=params, error=error, data=None, **context)
    if csv:
        return csv_download(name, params)
    return render(
        template, params=params, error=None, data=data, source=replica.source(), **context
    )


@bp.get("/reports")
def reports():
    return render("admin/reports/index.html")


@bp.get("/reports/audit")
def report_audit():
    return _report(
        "admin/reports/audit.html",
        "audit",
        _params("actor", "action", "object_type", "object_id", "date_from", "date_to", "approvals"),
        {
            "parse": audit_log.parse,
            "data": lambda f: audit_log.page(f, **page_args(50)),
        },
    )


@bp.get("/reports/gst")
def report_gst():
    return _report(
        "admin/reports/gst.html",
        "gst",
        _params("month", "clinic_id"),
        {"parse": gst.parse, "data": gst.report},
        choices=lambda: {"clinics": gst.clinic_choices()},
    )


@bp.get("/reports/tds")
def report_tds():
    return _report(
        "admin/reports/tds.html",
        "tds",
        _params("fy", "quarter", "provider_id"),
        {"parse": tds.parse, "data": tds.report},
        choices=lambda: {"providers": tds.provider_choices()},
    )
