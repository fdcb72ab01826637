"""htmx in one place: a full page, or one block of it for an htmx request.

* ``is_fragment_request()``: an htmx request that swaps part of the page. A boosted request
  (hx-boost navigation) and a history restore (Back to a page htmx kept no snapshot of)
  want the whole page: htmx swaps its body.
* ``htmx_block(*blocks)``: the block a fragment request asks for by its target's id
  (``#visit-body`` → ``visit_body``), or None.
* ``render(template, block=None, status=200, **context)``: the page, or only ``block``
  (``jinja2_fragments``) on a fragment request. A fragment carries the pending flashes
  out-of-band (``hx-swap-oob="innerHTML"`` on ``#flashes``: its content, so the page's
  live region stays and announces them): the page around it is not re-rendered.
* ``render_form(template, form, ...)``: 422 when the submitted form is invalid, so htmx
  swaps it (the site's ``responseHandling`` swaps 422) and tests can tell.
* ``render_in_place(template, block, target, ...)``: a form's answer swapped into the form's
  container on the page (``in_place_request()`` says when it will be only the block).
* ``redirect_out(url)``: to the gateway's page from a boosted form (``HX-Redirect``).
* ``swap_form(response)``: a form's answer with an error status other than 422 (the coupon
  form past its limit, 429) that is still to be swapped (``X-Swap-Form``, read by
  static/js/portal.js).

Every answer varies on ``HX-Request`` (a fragment and a page share a URL). A page answering
a boosted post keeps the address bar where it was (``HX-Push-Url: false``)."""

from flask import get_flashed_messages, make_response, redirect, render_template, request
from jinja2_fragments.flask import render_block

from portal.extensions import htmx

FLASHES = "components/flashes.html"
# What FLASHES renders with oob=True and no message (tests/web/test_htmx.py compares):
# most fragments carry no message, and rendering the template cost a kept free-times
# answer about a quarter of its time.
EMPTY_FLASHES = (
    '<div id="flashes" class="flashes" aria-live="polite" hx-swap-oob="innerHTML">\n</div>'
)


def is_fragment_request():
    # htmx's Back/Forward restore after a miss in its history cache (HX-Request and
    # HX-History-Restore-Request) swaps the whole body: it wants the page too.
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def htmx_block(*blocks):
    """The block a fragment request asks for by its target's id, else None."""
    if not is_fragment_request():
        return None
    target = (htmx.target or "").replace("-", "_")
    return target if target in blocks else None


def fragment_block(block):
    """``block`` on a fragment request whatever its target, else None (a full page)."""
    return block if is_fragment_request() else None


def oob_flashes():
    """The pending flashes as an out-of-band swap of ``#flashes`` (empties it when none)."""
    if not get_flashed_messages():  # read once per request: the template gets the same
        return EMPTY_FLASHES
    return render_template(FLASHES, oob=True)


def render(template, block=None, status=200, *, partial=False, flashes=True, **context):
    """Render ``template``; on a fragment request naming a ``block``, only that block.

    ``partial``: the template itself is a fragment (a table row), not a page.
    ``flashes=False`` keeps the flashes for a later page (the polled bell)."""
    fragment = is_fragment_request() and (block is not None or partial)
    if fragment and block is not None:
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    if fragment and flashes:
        body += oob_flashes()
    response = make_response(body, status)
    response.vary.add("HX-Request")
    if htmx and htmx.boosted and request.method != "GET":
        # A boosted form answered with a page (its errors, a refusal), not a redirect:
        # htmx would push the post's address, and reloading it (or coming back to it) is
        # a 405 where the address has no GET. The address bar keeps the form's page.
        response.headers["HX-Push-Url"] = "false"
    return response


def redirect_out(url):
    """Send the person to a page outside the portal's swaps (the gateway's checkout): to a
    boosted request, ``HX-Redirect`` (htmx loads it as a page: its XHR would follow a 303
    and swap the gateway's page into ours, or be refused across origins); else a 303."""
    if htmx and htmx.boosted:
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


SWAP_FORM = "X-Swap-Form"


def swap_form(response):
    """Mark a form's answer whose status is an error other than 422 (the coupon form past
    its limit: 429, the message beside the code) as the form to swap: the site's
    ``responseHandling`` swaps no other 4xx, and portal.js would put its generic words in
    place of the form's own. portal.js swaps an answer carrying ``X-Swap-Form`` as a 422 is
    swapped, so the status stays what it is and other 4xx answers (an error page) are not
    swapped into a part of the page."""
    response.headers[SWAP_FORM] = "true"
    return response


def in_place_request():
    """A boosted post (or any fragment request): :func:`render_in_place` answers it with
    the form's block alone. A caller that builds the whole page's context only for a plain
    request asks this first."""
    return bool(htmx) and (htmx.boosted or is_fragment_request())


def render_in_place(template, block, target, status=200, **context):
    """A form's answer on the page the form is on: to a boosted post (or any fragment
    request), only ``block``, swapped into ``target`` (the form's container, a CSS
    selector) with the page's address kept, so the page around the form is not built and
    sent again; to a plain post, the whole page. The form must sit in ``target``."""
    if not in_place_request():
        return render(template, status=status, **context)
    response = make_response(render_block(template, block, **context) + oob_flashes(), status)
    response.headers["HX-Retarget"] = target
    response.headers["HX-Reswap"] = "innerHTML"
    response.headers["HX-Push-Url"] = "false"
    response.vary.add("HX-Request")
    return response


def fragment(body, status=200):
    """A block the caller rendered (or kept from an earlier answer), answered as
    :func:`render` answers a fragment request: the pending flashes added out-of-band."""
    response = make_response(body + oob_flashes(), status)
    response.vary.add("HX-Request")
    return response


def render_form(template, form, block=None, **context):
    """A form page: 422 when it was submitted and is invalid."""
    status = 422 if form.errors else 200
    return render(template, block=block, status=status, form=form, **context)
