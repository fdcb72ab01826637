"""Choosing the language: the signed-in user's own setting, else a cookie, else the
browser's preference, else English. The choice is remembered on the account (so mail and
SMS go out in it too) and in a cookie for visitors."""

from babel import Locale
from flask import Blueprint, has_request_context, redirect, request
from flask_login import current_user

from portal.db import unit_of_work
from portal.i18n import DEFAULT_LANGUAGE, LANGUAGE_COOKIE, LANGUAGES, known_language
from portal.web.urls import safe_next

bp = Blueprint("language", __name__)

ONE_YEAR = 365 * 24 * 3600
# Parsed once: Flask-Babel parses a code on every request (a file check in Babel's data
# each time) and takes a Locale as it is.
LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def select_locale():
    return LOCALES[_language()]


def _language():
    if not has_request_context():
        return DEFAULT_LANGUAGE  # jobs and commands: notices choose with force_locale
    if current_user and current_user.is_authenticated:
        chosen = known_language(getattr(current_user, "language", None))
        if chosen:
            return chosen
    chosen = known_language(request.cookies.get(LANGUAGE_COOKIE))
    if chosen:
        return chosen
    return _browser_language() or DEFAULT_LANGUAGE


def _browser_language():
    # The first tag the browser prefers that we speak, by its main language: Werkzeug's
    # best_match tries exact tags first, so "hi-IN,en;q=0.9" would get English.
    for tag, quality in request.accept_languages:
        chosen = quality > 0 and known_language(tag)
        if chosen:
            return chosen
    return None


@bp.post("/language")
def choose():
    code = known_language(request.form.get("language"))
    target = safe_next(request.form.get("next")) or "/"
    response = redirect(target, code=303)
    if code is None:
        return response  # an unknown language changes nothing
    if current_user.is_authenticated and current_user.language != code:
        with unit_of_work():
            current_user.language = code
    response.set_cookie(
        LANGUAGE_COOKIE, code, max_age=ONE_YEAR, samesite="Lax", secure=request.is_secure
    )
    return response
