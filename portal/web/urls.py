"""Addresses: those the portal gives to others (the payment gateway's return: the site's
``PUBLIC_URL`` when one is set, so a load balancer's inside address never reaches Razorpay;
in the embedded mode with none set, the address the request came to, the demo on any port
or from a phone on the same network), and the one check of an address a request asks to
be sent to (``safe_next``: a path on this site, never another's)."""

from urllib.parse import urlsplit, urlunsplit

from flask import current_app, request, url_for

from portal.config import public_url_for


def external_url(endpoint, **values):
    config = current_app.config
    if config.get("PUBLIC_URL_FOLLOWS_SERVER") or not config.get("PUBLIC_URL"):
        return url_for(endpoint, _external=True, **values)
    return public_url_for(endpoint, **values)


def on_this_host(url):
    """A page of the sandbox mounted in this app (the embedded demo with no ``PUBLIC_URL``),
    on the address this request came to: the checkout at 127.0.0.1 was the phone itself
    for a phone on the same network, and another origin than the return for a browser at
    localhost (refused by the sandbox). Any other address as it is."""
    config = current_app.config
    if not (config.get("PUBLIC_URL_FOLLOWS_SERVER") and config.get("SANDBOX_ENABLED")):
        return url
    base, parts = urlsplit(config.get("RAZORPAY_BASE_URL") or ""), urlsplit(url)
    public = urlsplit(config.get("PUBLIC_URL") or "")
    mounted = (base.scheme, base.netloc) == (public.scheme, public.netloc)  # not its own
    if not mounted or (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        return url
    here = urlsplit(request.host_url)
    return urlunsplit((here.scheme, here.netloc, parts.path, parts.query, parts.fragment))


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


def own_page(url):
    """The path (with its query) of ``url`` when it is a page of this site as the request
    reached it (a ``Referer``, htmx's ``HX-Current-URL``), else None."""
    url = url or ""
    if not url.startswith(request.host_url):
        return None
    parts = urlsplit(url)
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def this_page():
    """The request's own address (with its query), for a form that comes back here (the
    language switch's ``next``); the start page when it is no path of ours to echo (a NUL
    in it: the 400 page says so, ``errors.bad_request``)."""
    here = request.full_path if request.query_string else request.path
    return safe_next(here) or "/"
