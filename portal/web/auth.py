"""Sign in, sign out, registration, password reset and change, accepting an invitation."""

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from portal.accounts import service
from portal.accounts.models import ADMIN, PROVIDER
from portal.extensions import limiter
from portal.i18n import N_, current_language
from portal.web.errors import apply_errors, too_many_requests
from portal.web.forms.accounts import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    SetPasswordForm,
)
from portal.web.htmx import render, render_form
from portal.web.limits import wait_for
from portal.web.urls import safe_next

bp = Blueprint("auth", __name__, url_prefix="/auth")


def home_url(user):
    """Where each role lands after signing in."""
    if user.role == ADMIN:
        return url_for("admin.home")
    if user.role == PROVIDER:
        return url_for("provider.home")
    return url_for("patient.home")


def _start_session(user, remember=False):
    # A fresh session: nothing chosen before sign-in (a planted session id, a stale
    # CSRF token) survives into the signed-in one.
    session.clear()
    login_user(user, remember=remember, fresh=True)


def _end_this_session():
    logout_user()  # also clears the remember-me cookie
    session.clear()


@bp.before_app_request
def _drop_deactivated_sessions():
    """A deactivated user's open session ends at their next request."""
    if current_user.is_authenticated and not current_user.is_active:
        _end_this_session()


@bp.errorhandler(429)
def _too_many_attempts(error):
    """Sign-in's limit: its own page (sign-in paused, the way to a reset). Every other
    limit here (reset links, registrations, the password change) pauses only itself:
    the portal's page for a limit, which says nothing of signing in (review I)."""
    if request.endpoint != "auth.login":
        return too_many_requests(error)
    return render("auth/rate_limited.html", status=429, wait=wait_for(error))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_url(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.email.data, form.password.data)
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            target = safe_next(form.next.data) or home_url(user)
            _start_session(user, remember=bool(form.remember.data))
            return redirect(target, 303)
    elif request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    return render_form("auth/login.html", form)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        # Every session of the user ends, not only this cookie: a copy stops working too.
        service.end_sessions(current_user.id, "logout")
    _end_this_session()
    return redirect(url_for("public.index"), 303)


# The same answer for a new address and one that has an account (whose owner is mailed).
REGISTERED = N_("Thank you for registering. Sign in with your email address and password.")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT"], methods=["POST"])
def register():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_url(current_user))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            service.sign_up(
                form.name.data,
                form.email.data,
                form.phone.data,
                form.password.data,
                # The language the visitor registered in stays theirs once signed in.
                language=current_language(),
            )
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            # Not signed in straight away: that would tell a new address from a known one.
            _end_this_session()
            flash(REGISTERED, "success")
            return redirect(url_for("auth.login"), 303)
    return render_form("auth/register.html", form)


@bp.route("/password", methods=["GET", "POST"])
@login_required
# A stolen session must not become a way to guess the current password.
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = service.change_password(
                current_user.id, form.current_password.data, form.password.data
            )
        except service.AccountLocked as exc:
            # Wrong guesses locked the account and ended its sessions: this one ends too.
            _end_this_session()
            flash(exc.errors[service.FORM], "error")
            return redirect(url_for("auth.login"), 303)
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            # Every other session has ended; this browser continues in a fresh one.
            _start_session(user)
            flash(N_("Your password has been changed. Other devices are signed out."), "success")
            return redirect(home_url(user), 303)
    return render_form("auth/change_password.html", form)


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT"], methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        service.request_password_reset(form.email.data)
        # The same answer whether or not the address has an account.
        flash(
            N_(
                "If an account uses that address, we have emailed it a link to choose a new "
                "password."
            ),
            "info",
        )
        return redirect(url_for("auth.login"), 303)
    return render_form("auth/forgot_password.html", form)


def _password_link(token, purpose, set_password, template, done_message):
    """The page behind a reset or invitation link: check the link, then set a password."""
    try:
        service.user_for_token(token, purpose)
    except service.ValidationError:
        return render("auth/link_invalid.html", status=400)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            set_password(token, form.password.data)
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            _end_this_session()
            flash(done_message, "success")
            return redirect(url_for("auth.login"), 303)
    return render_form(template, form, token=token)


@bp.get("/closed")
def account_closed():
    """Where a patient lands once their account is closed (and they are signed out)."""
    return render("auth/account_closed.html")


@bp.get("/form-expired")
def form_expired():
    """Where a boosted form whose CSRF token expired is sent (``errors.form_expired``):
    the same page, with the way back to the form's page."""
    back = safe_next(request.args.get("back")) or url_for("public.index")
    return render("errors/400.html", back=back)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token):
    return _password_link(
        token,
        service.RESET,
        service.reset_password,
        "auth/reset_password.html",
        N_("Your password has been changed. Please sign in."),
    )


@bp.route("/accept-invite/<token>", methods=["GET", "POST"])
def accept_invite(token):
    return _password_link(
        token,
        service.INVITE,
        service.accept_invite,
        "auth/accept_invite.html",
        N_("Your password is set. Please sign in."),
    )
