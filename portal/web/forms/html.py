"""WTForms' ``html_params`` (a tag's attributes), written without ``Markup.format``.

WTForms builds each attribute as ``Markup('{k}="{v}"').format(k=k, v=v)``; markupsafe's
``format`` runs Python's pure-Python ``string.Formatter`` for every attribute of every
field, and a page's fields cost up to a fifth of its CPU that way (the dependents page,
docs/performance.md). ``html_params`` below gives the same text, byte for byte
(``tests/web/test_form_html.py`` compares the two over keys and values of every kind), by
escaping and joining. ``install()`` puts it where WTForms' widgets look it up: the module's
name, which ``Select``, ``TextArea`` and the list widgets call, and the ``Input`` and
``Button`` classes' own ``html_params``. WTForms is pinned (pyproject.toml); the test fails
if a new release changes what its own function writes."""

from markupsafe import Markup, escape
from wtforms.widgets import core


def html_params(**kwargs):
    """``wtforms.widgets.core.html_params``'s output: the attributes sorted by name, a
    trailing ``_`` dropped, ``data_``/``aria_`` names hyphenated, ``True`` as the bare name,
    ``False`` left out, every value escaped with its double quotes as ``&quot;``."""
    params = []
    for key, value in sorted(kwargs.items()):
        key = core.clean_key(key)
        if value is True:
            params.append(escape(key))
        elif value is not False:
            # str first: Markup.replace would escape its own arguments
            params.append(f'{escape(key)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))


WTFORMS_OWN = core.html_params  # kept for the test that compares the two


def install():
    """Use ``html_params`` in WTForms' widgets (the app factory calls it; idempotent)."""
    core.html_params = html_params
    for widget in (core.Input, core.Button):
        widget.html_params = staticmethod(html_params)
