"""Rendering helpers: a full page, or one block of it for htmx."""
from flask import render_template
from jinja2_fragments.flask import render_block

from portal.extensions import htmx


def render(template, block=None, status=200, **context):
    """Render ``template``; for an htmx request naming a ``block``, only that block.

    A boosted request (hx-boost navigation) wants the whole page: htmx swaps its body."""
    if block and htmx and not htmx.boosted:
        return render_block(template, block, **context), status
    return render_template(template, **context), status


def render_form(template, form, block=None, **context):
    """A form page: 422 when it was submitted and is invalid, so htmx and tests can tell."""
    status = 422 if form.errors else 200
    return render(template, block=block, status=status, form=form, **context)
