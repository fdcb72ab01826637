"""Admin: find users (search as you type, role filter, pages), invite staff, deactivate.

The list answers an htmx request (the search box, the role filter, the page links) with
only its ``results`` block; a plain or boosted request gets the whole page."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts import queries, service
from portal.accounts.models import ROLES
from portal.booking.deactivation import DeactivationRefused
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.accounts import InviteForm
from portal.web.htmx import fragment_block, render, render_form, swap_form
from portal.web.paging import page_args
from portal.web.urls import safe_next

PER_PAGE = 20
REFUSED = "admin/users/deactivation_refused.html"


def _filters():
    q = request.args.get("q", "").strip()[:100]
    role = request.args.get("role", "")
    return q, role if role in ROLES else ""


@bp.get("/users")
def users():
    q, role = _filters()
    page = queries.users_page(q=q, role=role, **page_args(PER_PAGE))
    block = fragment_block("results")
    return render("admin/users/index.html", block=block, page=page, q=q, role=role, roles=ROLES)


@bp.route("/users/invite", methods=["GET", "POST"])
def invite_user():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = service.invite_user(
                form.email.data,
                form.name.data,
                form.role.data,
                current_user,
                phone=form.phone.data or None,
            )
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            flash(f"Invitation sent to {user.email}.", "success")
            return redirect(url_for("admin.users"), 303)
    return render_form("admin/users/invite.html", form)


def _set_active(user_id, change, done):
    # Back to the list as the admin left it (search, filter, page).
    back = safe_next(request.form.get("next")) or url_for("admin.users")
    try:
        user = change(current_user, user_id)
    except service.NotFound:
        abort(404)
    except DeactivationRefused as exc:
        # A patient with visits running: why, which visits, what to do (409, nothing done).
        message = exc.errors[service.FORM]
        page = render(REFUSED, status=409, message=message, numbers=exc.numbers, back=back)
        return swap_form(page)
    except service.ValidationError as exc:
        for message in exc.errors.values():
            flash(message, "error")
    else:
        flash(done.format(name=user.name), "success")
    return redirect(back, 303)


@bp.post("/users/<int:user_id>/deactivate")
def deactivate_user(user_id):
    return _set_active(user_id, service.deactivate_user, "{name} can no longer sign in.")


@bp.post("/users/<int:user_id>/reactivate")
def reactivate_user(user_id):
    return _set_active(user_id, service.reactivate_user, "{name} can sign in again.")
