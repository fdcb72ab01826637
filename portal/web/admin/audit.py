"""Admin: the audit log viewer, filtered by actor, action, object and clinic dates
(keyset pages). Object pages link here with ``?object_type=…&object_id=…``."""

from flask import request

from portal.accounts.queries import user_by_email_or_id
from portal.audit import queries
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.audit import AuditFilterForm
from portal.web.htmx import fragment_block, render
from portal.web.paging import page_args


def filters_from(form):
    """The form's filters as an ``AuditFilter`` and whether they are usable (messages
    beside the fields when not). Shared with the audit CSV export."""
    form.validate()
    form.process_errors()
    ok = not any(f.errors for f in form)
    actor_id = None
    if form.actor.data and form.actor.data.strip():
        actor = user_by_email_or_id(form.actor.data)
        if actor is None:
            form.actor.errors = [*form.actor.errors, queries.MSG_NO_ACTOR]
            ok = False
        else:
            actor_id = actor.id
    filters = queries.AuditFilter(
        actor_id=actor_id,
        action=form.action.data or None,
        object_type=form.object_type.data or None,
        object_id=(form.object_id.data or "").strip() or None,
        date_from=form.date_from.data if not form.date_from.errors else None,
        date_to=form.date_to.data if not form.date_to.errors else None,
    )
    problems = filters.problems()
    if problems:
        apply_errors(form, problems)
        ok = False
    return filters, ok


@bp.get("/audit")
def audit():
    form = AuditFilterForm(formdata=request.args).set_choices(
        queries.actions(), queries.object_types()
    )
    filters, ok = filters_from(form)
    page = queries.entries_page(filters, **page_args(50)) if ok else None
    args = {k: v for k, v in request.args.items() if k in form._fields and v}
    return render(
        "admin/audit/index.html",
        block=fragment_block("results"),
        status=200 if ok else 422,
        form=form,
        page=page,
        args=args,
    )
