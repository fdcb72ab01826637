"""One error mapping for every page, and the helpers that put a service's message on its form.

* 404 and a service's ``NotFound`` → the 404 page; 403 and ``PermissionDenied`` → 403.
* 400 (a NUL in the address, ``refuse_nul_in_query``; any ``abort(400)``) → the portal's
  page in the reader's language with a way back, not werkzeug's bare English one; a form
  whose CSRF token expired → its own 400 page (``form_expired``).
* 413 (a body over ``MAX_CONTENT_LENGTH``) → the portal's page in the reader's language,
  nothing changed, with the way back; the webhooks answer their own plain 413 (they read
  the body themselves, ``web.webhooks``), so it never comes here.
* 405 (a method the address does not take) and 429 (a rate limit with no page of its own)
  → the portal's pages in the reader's language, with the way back (405 keeps ``Allow``;
  429 says how long to wait, from the limit).
* A domain error a view did not catch (a rule refused the action) → 422 with its message.
  Views that show a form catch the error themselves and put it beside its field
  (``apply_booking_error`` / ``apply_errors``), answering 422 with the form.
* The reporting replica not answering (``portal.replica.Unavailable``) → 503, saying so.
* The embedded mode's process lock not free in time (``portal.db.Busy``) → 503 "busy",
  with ``Retry-After``: nothing was done. So is a transaction PostgreSQL aborted over a
  lock conflict (``LOCK_CONFLICTS``: a deadlock, a serialization failure, a lock not
  granted in time), logged as an error: every lock order is meant to make them
  impossible, and the person can only try again (the claims' writes say so themselves,
  ``booking.claims``).
* Anything else → a friendly 500 page naming the request id (``portal.logs``), so a person
  can quote it and the log line can be found.

An htmx request that fails is not swapped (see the ``responseHandling`` in base.html); the
site's script (static/js/portal.js) shows a message instead."""

import logging

from flask import flash, g, make_response, request, url_for
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError

from portal import replica
from portal.accounts.service import FORM, PermissionDenied, ValidationError
from portal.accounts.service import NotFound as AccountNotFound
from portal.booking.errors import MSG_CONFIRMING, BookingError
from portal.db import Busy, doing
from portal.domain.states import InvalidTransition
from portal.i18n import N_
from portal.payouts.common import PayoutError
from portal.payouts.fund_accounts import FundAccountError
from portal.payouts.fund_accounts import NotFound as FundAccountNotFound
from portal.web.filters import clinic_time_short
from portal.web.limits import wait_for
from portal.web.sessions import leave_alone
from portal.web.urls import own_page, safe_next

log = logging.getLogger("portal.web")

NOT_FOUND = (AccountNotFound, FundAccountNotFound)
DOMAIN_ERRORS = (BookingError, ValidationError, PayoutError, FundAccountError)
MSG_TRANSITION = N_("That cannot be done any more: it has changed meanwhile. Reload the page.")


def apply_errors(form, errors):
    """Show a service's ValidationError messages (``{field: message}``) beside the fields
    they name; a message for no field of the form goes on top."""
    for name, message in errors.items():
        field = form._fields.get(name) if name != FORM else None
        if field is None:
            form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]


def apply_booking_error(form, exc, fields=None):
    """Put a BookingError's message beside its field (``fields`` maps the service's field
    names to the form's), else on top of the form."""
    fields = {} if fields is None else fields
    name = fields.get(exc.field, exc.field)
    field = form._fields.get(name) if name else None
    if field is None:
        form.form_errors.append(exc.message)
    else:
        field.errors = [*field.errors, exc.message]


def flash_unpaid(exc, hold=None):
    """A checkout's return that did not pay (a visit's or a reschedule fee's), told on the
    visit page: still being confirmed, or not completed with its fixed reason
    (``exc.message`` is one of ``portal.booking.errors``' texts, never the request's).
    ``hold`` (``booking.holds.HoldLeft``): the times are still held until when and Pay is
    to be pressed again, or the hold has run out and Book again is the way on; for a
    reschedule fee (``hold.moving_to``), the new time is held and is to be chosen again
    under Reschedule (a new request replaces the unpaid one), or its hold has ended.
    Without it (paid or refused meanwhile) the reason alone."""
    if exc.message == MSG_CONFIRMING:
        flash(exc.message, "info")
    elif hold is not None and hold.moving_to is not None:
        flash(_fee_unpaid(exc, hold), "error")
    elif hold is not None and hold.lapsed:
        text = gettext(
            "Payment not completed: %(reason)s. The hold on your times has ended, so they "
            "may have been taken: use Book again on an appointment to choose a new time.",
            reason=gettext(exc.message),
        )
        flash(text, "error")
    elif hold is not None:
        text = gettext(
            "Payment not completed: %(reason)s. Your times are held until %(until)s; "
            "press Pay to try again.",
            reason=gettext(exc.message),
            until=clinic_time_short(hold.until),
        )
        flash(text, "error")
    else:
        flash(gettext("Payment not completed: %(reason)s", reason=gettext(exc.message)), "error")


def _fee_unpaid(exc, hold):
    if hold.lapsed:
        return gettext(
            "Payment not completed: %(reason)s. Your appointment has not moved, and the hold "
            "on %(time)s has ended: choose a time again under Reschedule.",
            reason=gettext(exc.message),
            time=clinic_time_short(hold.moving_to),
        )
    return gettext(
        "Payment not completed: %(reason)s. Your appointment has not moved; %(time)s is "
        "held for you until %(until)s: choose it again under Reschedule to pay the fee.",
        reason=gettext(exc.message),
        time=clinic_time_short(hold.moving_to),
        until=clinic_time_short(hold.until),
    )


def message_of(exc):
    """The person-facing text of a domain error."""
    if isinstance(exc, InvalidTransition):
        return MSG_TRANSITION
    if hasattr(exc, "errors"):
        return " ".join(str(m) for m in exc.errors.values())
    return getattr(exc, "message", None) or str(exc)


def _page(template, status, block=None, **context):
    from portal.web.htmx import render

    return render(template, block=block, status=status, flashes=False, **context)


def not_found(_exc=None):
    return _page("errors/404.html", 404)


def forbidden(_exc=None):
    return _page("errors/403.html", 403)


def _referrer_path():
    """The page the request came from when it is the portal's (a path), else None."""
    return own_page(request.referrer)


def bad_request(_exc=None):
    """A request the portal could not read (a NUL in its address, a form refused with
    ``abort(400)``): the portal's page, in the reader's language, with a way back: the page
    it came from when it is the portal's, else for a GET its own address without the query
    (what could not be read), else the start page. An htmx request that swaps part of a
    page gets the message alone (a fragment: htmx swaps no 400, the site's script says it);
    a boosted one, the page."""
    own = safe_next(request.path) if request.method == "GET" else None
    back = _referrer_path() or own or url_for("public.index")
    return _page("errors/bad_request.html", 400, block="content", back=back)


def form_expired(_exc=None):
    """A form whose CSRF token no longer matches its session (signed out in another tab, a
    session gone): the portal's page, in the reader's language, with the way back; not
    werkzeug's bare 400. The way back is the page the form was on (the post's own address
    may have no GET), when it is the portal's. A boosted form (htmx swaps no 400) is sent
    to that page by ``HX-Redirect``. A post that came without the session cookie (another
    site's form: SameSite=Lax) gets no new one (``sessions.leave_alone``): the token the
    page renders would otherwise be saved in a session replacing the browser's."""
    leave_alone()
    back = _referrer_path() or url_for("public.index")
    if request.headers.get("HX-Request"):
        response = make_response("", 400)
        response.headers["HX-Redirect"] = url_for("auth.form_expired", back=back)
        return response
    return _page("errors/400.html", 400, back=back)


def too_large(_exc=None):
    """A body over ``MAX_CONTENT_LENGTH`` (a declared length, or a chunked one cut off):
    the portal's page, in the reader's language, not werkzeug's bare English 413. The way
    back is the page the form was on when it is the portal's (the post's own address may
    have no GET), else the start page; an htmx request that swaps part of a page gets the
    message alone (htmx swaps no 413: the site's script says it)."""
    back = _referrer_path() or url_for("public.index")
    return _page("errors/too_large.html", 413, block="content", back=back)


def method_not_allowed(exc):
    """An address asked with a method it does not take (a GET of the sign-out button's
    address, a form's address typed or reloaded): the portal's page, in the reader's
    language, not werkzeug's bare English 405; nothing was shown or changed. ``Allow``
    still names the methods it takes. The way back is the page it came from when it is
    the portal's, else the start page."""
    back = _referrer_path() or url_for("public.index")
    response = _page("errors/method_not_allowed.html", 405, block="content", back=back)
    if getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def too_many_requests(exc):
    """A rate limit broken where no page of its own says it (a limit with an ``on_breach``
    page keeps it: the data download's, closing the account's): the portal's page, in the
    reader's language, saying how long to wait from the limit's own window, with the way
    back. Sign-in has its own page (``auth``)."""
    if getattr(exc, "response", None) is not None:
        return exc.response
    back = _referrer_path() or url_for("public.index")
    return _page("errors/too_many.html", 429, block="content", back=back, wait=wait_for(exc))


def domain_error(exc):
    return _page("errors/422.html", 422, message=message_of(exc))


def reports_unavailable(exc):
    log.error("the reporting replica does not answer: %s", exc)
    return _page("errors/reports_unavailable.html", 503)


BUSY_RETRY_AFTER = "5"  # seconds: a moment, not the whole lock timeout


def busy(exc):
    """Embedded: the process lock stayed taken (a long job, a stuck one): the use case did
    not start, so nothing was written; the person tries again. (The log line naming what
    held the lock was written when the wait ran out, ``portal.db``.)"""
    from portal.db import db

    db.session.rollback()  # what the request read before it waited
    response = _page("errors/busy.html", 503)
    response.headers["Retry-After"] = BUSY_RETRY_AFTER
    return response


# deadlock_detected, serialization_failure, lock_not_available
LOCK_CONFLICTS = frozenset({"40P01", "40001", "55P03"})


def lock_conflict(exc):
    """A database error: busy when PostgreSQL aborted the transaction over a lock
    conflict (logged as an error, with what was being done), else the error goes on (a
    500)."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate not in LOCK_CONFLICTS:
        raise exc
    log.error("database lock conflict (%s), answered busy: %s; %s", sqlstate, doing(), orig)
    return busy(exc)


def internal_error(exc):
    """The friendly 500 page. The session may be broken (a database error): roll back
    first, and fall back to plain text if even the page cannot be drawn."""
    from portal.db import db

    original = getattr(exc, "original_exception", None) or exc
    request_id = g.get("request_id", "")
    log.error("unhandled error (request %s)", request_id, exc_info=original)
    try:
        db.session.rollback()
        return _page("errors/500.html", 500, request_id=request_id)
    except Exception:  # noqa: BLE001 (the page itself failed: still answer the person)
        log.exception("the 500 page failed")
        return (
            f"Something went wrong on our side. Request id: {request_id}",
            500,
            {"Content-Type": "text/plain; charset=utf-8"},
        )


def init_app(app):
    app.register_error_handler(404, not_found)
    app.register_error_handler(403, forbidden)
    for cls in NOT_FOUND:
        app.register_error_handler(cls, not_found)
    app.register_error_handler(PermissionDenied, forbidden)
    app.register_error_handler(400, bad_request)
    app.register_error_handler(CSRFError, form_expired)  # a 400 of its own (found first)
    app.register_error_handler(413, too_large)
    app.register_error_handler(405, method_not_allowed)
    app.register_error_handler(429, too_many_requests)
    app.register_error_handler(replica.Unavailable, reports_unavailable)
    app.register_error_handler(Busy, busy)
    app.register_error_handler(OperationalError, lock_conflict)
    for cls in (*DOMAIN_ERRORS, InvalidTransition):
        app.register_error_handler(cls, domain_error)
    # A 500 handler (not one for Exception): with PROPAGATE_EXCEPTIONS (tests, debug) an
    # unexpected error still raises to the caller; in production it gets this page.
    app.register_error_handler(500, internal_error)
