"""Sign in, sign out, registration, password reset and accepting an invitation."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.accounts import service
from portal.accounts.models import ADMIN, PROVIDER
from portal.extensions import limiter
from portal.web.errors import apply_errors
from portal.web.forms.accounts import (
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    SetPasswordForm,
)
from portal.web.htmx import render, render_form

bp = Blueprint("auth", __name__, url_prefix="/auth")


def home_url(user):
    """Where each role lands after signing in."""
    if user.role == ADMIN:
        return url_for("admin.home")
    if user.role == PROVIDER:
        return url_for("provider.home")
    return url_for("patient.home")


def safe_next(target):
    """``target`` if it is a path on this site, else None (no open redirects)."""
    target = (target or "").strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _start_session(user):
    # A fresh session: nothing chosen before sign-in (a planted session id, a stale
    # CSRF token) survives into the signed-in one.
    session.clear()
    login_user(user, fresh=True)


@bp.before_app_request
def _drop_deactivated_sessions():
    """A deactivated user's open session ends at their next request."""
    if current_user.is_authenticated and not current_user.is_active:
        logout_user()
        session.clear()


@bp.errorhandler(429)
def _too_many_attempts(error):
    return render("auth/rate_limited.html", status=429)


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
            _start_session(user)
            return redirect(target, 303)
    elif request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    return render_form("auth/login.html", form)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("public.index"), 303)


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_url(current_user))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = service.register_patient(
                form.name.data, form.email.data, form.phone.data, form.password.data
            )
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            _start_session(user)
            flash("Welcome! Your account is ready.", "success")
            return redirect(url_for("patient.home"), 303)
    return render_form("auth/register.html", form)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        service.request_password_reset(form.email.data)
        # The same answer whether or not the address has an account.
        flash(
            "If an account uses that address, we have emailed it a link to choose a new password.",
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
            logout_user()
            session.clear()
            flash(done_message, "success")
            return redirect(url_for("auth.login"), 303)
    return render_form(template, form, token=token)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token):
    return _password_link(
        token,
        service.RESET,
        service.reset_password,
        "auth/reset_password.html",
        "Your password has been changed. Please sign in.",
    )


@bp.route("/accept-invite/<token>", methods=["GET", "POST"])
def accept_invite(token):
    return _password_link(
        token,
        service.INVITE,
        service.accept_invite,
        "auth/accept_invite.html",
        "Your password is set. Please sign in.",
    )
