"""The answer to a request that needs a signed-in user and has none: never signed in, or
its session ended (signed out on another device, a password changed: docs/security.md
"Sessions end everywhere"). Flask-Login's ``unauthorized_handler``, so ``login_required``
and ``security.roles_required`` / ``guard_blueprint`` all answer with it.

* The sign-in page, with ``next`` the page to come back to (``come_back_to``).
* An htmx request (the bell's poll, the admin dashboard's, a boosted link or form) is told
  to load the sign-in page as a page (``HX-Redirect``, 401): its XHR would follow a plain
  redirect and swap the whole sign-in page into what it meant to refresh (the bell, inside
  the top bar). htmx acts on ``HX-Redirect`` whatever the status (``errors.form_expired``
  relies on it with a 400); a caller that is not htmx reads an honest 401."""

from flask import current_app, flash, make_response, redirect, request, url_for

from portal.extensions import htmx
from portal.web.htmx import is_fragment_request
from portal.web.urls import own_page, safe_next

# A GET (or HEAD) is a page: signing in again leads back to it. Any other method's address
# may have no GET: coming back to it after signing in was a bare 405.
PAGES = ("GET", "HEAD")


def come_back_to():
    """Where signing in again leads: a page's own address; for an htmx request that is not
    a navigation (a poll, a part of the page) the page it was made from (HX-Current-URL);
    for a form posted, the page the form was on, when it is ours; else nowhere (the
    person's home)."""
    if is_fragment_request():
        return own_page(htmx.current_url)
    if request.method in PAGES:
        return safe_next(request.full_path if request.query_string else request.path)
    return own_page(htmx.current_url if htmx else None) or own_page(request.referrer)


def unauthorized():
    manager = current_app.login_manager
    flash(manager.login_message, manager.login_message_category)
    target = come_back_to()
    url = url_for("auth.login", next=target) if target else url_for("auth.login")
    if htmx:
        response = make_response("", 401)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
