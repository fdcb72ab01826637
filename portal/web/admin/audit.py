"""Admin: the audit log viewer, filtered by actor, action, object and clinic dates
(keyset pages). Object pages link here with ``?object_type=…&object_id=…``."""

from flask import request

from portal.audit import queries
from portal.exports import ExportError
from portal.reports import audit_log
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.audit import AuditFilterForm
from portal.web.htmx import fragment_block, render
from portal.web.paging import page_args


def filters_from(form, args):
    """The query string's filters as an ``AuditFilter``, or None with the message beside
    its field. Read by the audit report's own parser, which its "Download CSV" link
    reaches with the same query string: whatever the viewer accepts, the CSV accepts alike
    and lists the same entries (docs/reports.md)."""
    try:
        return audit_log.audit_filter(audit_log.parse(args))
    except ExportError as exc:
        apply_errors(form, {exc.field: exc.message})
        return None


@bp.get("/audit")
def audit():
    form = AuditFilterForm(formdata=request.args).set_choices(
        queries.actions(), queries.object_types()
    )
    filters = filters_from(form, request.args)
    page = queries.entries_page(filters, **page_args(50)) if filters else None
    args = {k: v for k, v in request.args.items() if k in form._fields and v}
    return render(
        "admin/audit/index.html",
        block=fragment_block("results"),
        status=200 if filters else 422,
        form=form,
        page=page,
        args=args,
    )
