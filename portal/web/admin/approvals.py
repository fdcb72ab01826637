"""Admin: the one approvals queue. Every kind of request a second administrator decides
(``portal.approvals.sources``) in one list, with the maker, the amount, the reason and
the decision trail, each as its source describes it (the page has no rule per kind);
approving or rejecting calls the kind's own use case, which refuses the maker."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.approvals import queries
from portal.approvals.sources import BY_KIND, SOURCES
from portal.web.admin import bp
from portal.web.errors import message_of
from portal.web.forms.wallet import DecisionForm
from portal.web.htmx import render
from portal.web.paging import cursor_args, page_args

# The page of each kind's object (a new kind adds its line).
LINKS = {
    "refund": lambda row: url_for("admin.cancel_booking", item_id=row.obj.booking_id),
    "wallet_adjustment": lambda row: url_for("admin.adjustment", adjustment_id=row.id),
    "policy": lambda row: url_for("admin.policy_version", version_id=row.id),
    # The account once there is one (a waiting invitation has none yet).
    "admin_account": lambda row: (
        url_for("admin.users", q=row.obj.user.email) if row.obj.user else None
    ),
}
DECIDED = "decided_"  # the decided list's cursors on the page (``decided_after``)


def link_for(row):
    make = LINKS.get(row.kind)
    return make(row) if make else None


@bp.get("/approvals")
def approvals():
    kind = request.args.get("kind") or None
    if kind not in BY_KIND:
        kind = None
    pending = queries.approvals_page(pending=True, kind=kind, **page_args(50))
    decided = queries.approvals_page(pending=False, kind=kind, **page_args(30, prefix=DECIDED))
    return render(
        "admin/approvals/index.html",
        pending=pending,
        decided=decided,
        kind=kind,
        # Each list's pager keeps the other's place and the kind (review finding: paging
        # one put the other back to its first page).
        pending_pager_args={"kind": kind, **cursor_args(DECIDED)},
        decided_pager_args={"kind": kind, **cursor_args()},
        sources=SOURCES,
        link_for=link_for,
        form=DecisionForm(formdata=None),
    )


def _decide(kind, row_id, decision):
    source = BY_KIND.get(kind)
    if source is None:
        abort(404)
    back = redirect(url_for("admin.approvals", kind=request.args.get("kind") or None), 303)
    form = DecisionForm()
    if not form.validate():
        flash("The note is too long.", "error")
        return back
    action = source.approve if decision == "approve" else source.reject
    try:
        decided = action(current_user, row_id, form.note.data)
    except source.not_found:
        abort(404)
    except source.refusals as exc:
        flash(message_of(exc), "error")
        return back
    flash(source.outcome(decision, decided), "success")
    return back


@bp.post("/approvals/<kind>/<int:row_id>/approve")
def approve_request(kind, row_id):
    return _decide(kind, row_id, "approve")


@bp.post("/approvals/<kind>/<int:row_id>/reject")
def reject_request(kind, row_id):
    return _decide(kind, row_id, "reject")
