"""The top bar's link to the section being shown, marked ``aria-current="page"``.

The links are one ``{% cache %}`` piece per role (portal.templating.FragmentCache), the same
for every page: the mark cannot be inside it, so it is added to the rendered piece. The
section is the link whose address is the longest one the request's path is at or under
("/provider/schedule?from=…" and "/provider/schedule" are Schedule, "/provider/" Today
and nothing under it)."""

import re

from flask import request
from markupsafe import Markup

_LINK = re.compile(r'<a href="(/[^"?#]*)"')


def _covers(href, path):
    """A section's link covers its own path and those under it; a home page's ("/provider/",
    "/admin/", ending in "/") only itself: the pages under it that the bar does not name
    (a booking's cancel page) are not Today or Operations (re-read finding)."""
    if href.endswith("/"):
        return path == href
    return path == href or path.startswith(href + "/")


def mark_current(links):
    """``links`` (rendered markup) with the current section's link marked."""
    path = request.script_root + request.path
    found = [href for href in _LINK.findall(str(links)) if _covers(href, path)]
    if not found:
        return links
    best = max(found, key=len)
    old = f'<a href="{best}"'
    return Markup(str(links).replace(old, f'{old} aria-current="page"', 1))
