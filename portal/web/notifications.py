"""The in-app notification centre, for every signed-in role: the list, the bell's unread
count (polled by htmx every 30 s and refreshed when something is marked read), mark one
read (optionally opening its link), mark all read."""

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user, login_required

from portal.extensions import db
from portal.notify import center, queries
from portal.web.htmx import fragment_block, is_fragment_request, render
from portal.web.paging import page_args

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
CHANGED = "notifications-changed"


@bp.before_request
@login_required
def _signed_in():
    return None


@bp.app_context_processor
def _bell_count():
    """``unread_notifications()`` for the bell in the top bar (queried only when used)."""

    def unread_notifications():
        if not current_user.is_authenticated:
            return 0
        # Read with the user (portal.web.signed_in), or counted by this request's view.
        return center.unread_count(current_user.id)

    return {"unread_notifications": unread_notifications}


@bp.get("/")
def index():
    unread_only = request.args.get("unread") == "1"
    page = queries.notifications_page(
        current_user.id, unread_only=unread_only, **page_args(default=30)
    )
    block = fragment_block("list")
    unread = center.unread_count(current_user.id)  # the bell's count too: read once
    return render(
        "notify/index.html", block=block, page=page, unread_only=unread_only, unread=unread
    )


@bp.get("/bell")
def bell():
    # Polled: it must not take the flashes meant for the next page.
    return render("components/bell.html", flashes=False)


@bp.post("/<int:notification_id>/read")
def read(notification_id):
    notice = center.mark_read(current_user.id, notification_id)
    if notice is None:
        abort(404)
    if request.form.get("open") and notice.link:
        return redirect(notice.link, 303)
    if is_fragment_request():
        response = render("notify/index.html", block="notice", notice=notice)
        response.headers["HX-Trigger"] = CHANGED
        return response
    return redirect(url_for("notifications.index"), 303)


@bp.post("/read-all")
def read_all():
    center.mark_all_read(current_user.id)
    db.session.commit()
    if is_fragment_request():
        page = queries.notifications_page(current_user.id)
        response = render("notify/index.html", block="list", page=page, unread_only=False, unread=0)
        response.headers["HX-Trigger"] = CHANGED
        return response
    return redirect(url_for("notifications.index"), 303)
