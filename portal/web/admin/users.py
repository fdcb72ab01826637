"""Admin: find users (search as you type, role filter, pages), invite administrators,
deactivate and reactivate accounts. Inviting an administrator and reactivating one's
account wait for a second administrator while another is active
(``accounts.admin_access``); the pages say which applies.

The list answers an htmx request (the search box, the role filter, the page links) with
only its ``results`` block; a plain or boosted request gets the whole page."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.accounts import admin_access, queries, service
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
    waiting, reactivations_waiting = queries.admin_requests_waiting()
    return render(
        "admin/users/index.html",
        block=fragment_block("results"),
        page=page,
        q=q,
        role=role,
        roles=ROLES,
        waiting=waiting,
        reactivations_waiting=reactivations_waiting,
    )


@bp.route("/users/invite", methods=["GET", "POST"])
def invite_user():
    form = InviteForm()
    if form.validate_on_submit():
        try:
            done = admin_access.invite_admin(
                current_user,
                form.email.data,
                form.name.data,
                phone=form.phone.data or None,
                reason=form.reason.data,
            )
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            if done.request is None:
                flash(f"Invitation sent to {done.user.email}.", "success")
            else:
                flash(
                    f"The invitation of {done.request.email} waits for a second "
                    "administrator's approval (Approvals); the email goes once it is approved.",
                    "success",
                )
            return redirect(url_for("admin.users"), 303)
    waits = admin_access.needs_second_admin(current_user)
    return render_form("admin/users/invite.html", form, waits=waits)


def _set_active(user_id, change):
    """Run ``change`` (the acting admin, the account's id → the flash message)."""
    # Back to the list as the admin left it (search, filter, page).
    back = safe_next(request.form.get("next")) or url_for("admin.users")
    try:
        message = change(current_user, user_id)
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
        flash(message, "success")
    return redirect(back, 303)


def _deactivated(admin, user_id):
    return f"{service.deactivate_user(admin, user_id).name} can no longer sign in."


def _reactivated(admin, user_id):
    done = admin_access.reactivate(admin, user_id)
    if done.request is None:
        return f"{done.user.name} can sign in again."
    return (
        f"Reactivating {done.request.user.name} waits for a second administrator's approval "
        "(Approvals)."
    )


@bp.post("/users/<int:user_id>/deactivate")
def deactivate_user(user_id):
    return _set_active(user_id, _deactivated)


@bp.post("/users/<int:user_id>/reactivate")
def reactivate_user(user_id):
    return _set_active(user_id, _reactivated)
