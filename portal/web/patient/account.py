"""The patient's account page: their details, "Download my data" and "Close my account"
(docs/privacy.md)."""

import json

from flask import current_app, flash, make_response, redirect, session, url_for
from flask_babel import gettext
from flask_login import current_user, logout_user

from portal.accounts import service
from portal.db import clinic_today
from portal.extensions import limiter
from portal.i18n import N_
from portal.privacy import closure, export
from portal.web.errors import apply_errors
from portal.web.filters import translate
from portal.web.forms.accounts import CloseAccountForm
from portal.web.htmx import render
from portal.web.limits import wait_for
from portal.web.patient import bp

TEMPLATE = "patient/account/index.html"
TOO_MANY_DOWNLOADS = N_(
    "You have downloaded your data several times in the last hour. Try again later."
)
TOO_MANY_CLOSURES = N_("Too many attempts to close the account were made from this device.")


def _page(form, status=200, reasons=(), notice=None):
    return render(TEMPLATE, status=status, form=form, reasons=reasons, notice=notice)


@bp.get("/account")
def account():
    return _page(CloseAccountForm(formdata=None))


def _too_many_downloads(_limit):
    return _page(CloseAccountForm(formdata=None), status=429, notice=TOO_MANY_DOWNLOADS)


# Every download counts, per patient (the document reads all their records).
@bp.get("/account/data.json")
@limiter.limit(
    lambda: current_app.config["DATA_EXPORT_RATE_LIMIT"],
    key_func=lambda: f"user:{getattr(current_user, 'id', None)}",
    scope="data-export",
    on_breach=_too_many_downloads,
)
def download_data():
    document = export.personal_data(current_user.id)
    day = clinic_today().isoformat()
    response = make_response(json.dumps(document, ensure_ascii=False, indent=2))
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="my-data-{day}.json"'
    return response


def _too_many_closures(limit):
    # The password is checked here too: guesses are limited as sign-in's are. The answer
    # is the account page with the message (in the patient's language), as the download's.
    notice = f"{gettext(TOO_MANY_CLOSURES)} {wait_for(limit)}"
    return _page(CloseAccountForm(formdata=None), status=429, notice=notice)


@bp.post("/account/close")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], on_breach=_too_many_closures)
def close_account():
    form = CloseAccountForm()
    if form.validate_on_submit():
        try:
            closure.close_account(current_user.id, form.current_password.data, form.confirm.data)
        except service.NotFound:
            # Closed meanwhile (the same form sent twice at once): this session is over.
            logout_user()
            session.clear()
            return redirect(url_for("auth.login"), 303)
        except service.AccountLocked as exc:
            logout_user()
            session.clear()
            flash(exc.errors[service.FORM], "error")
            return redirect(url_for("auth.login"), 303)
        except closure.ClosureRefused as exc:
            return _page(form, status=422, reasons=[translate(r) for r in exc.reasons])
        except service.ValidationError as exc:
            apply_errors(form, exc.errors)
        else:
            # Every session has ended with the account: this browser's too.
            logout_user()
            session.clear()
            return redirect(url_for("auth.account_closed"), 303)
    return _page(form, status=422)
