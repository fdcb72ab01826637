"""The pager links of a rendered page (``components/pagination.html``), as query strings:
a page with two lists, or a list and filters, keeps each on the other's links."""

import html as html_text
import re
from urllib.parse import parse_qs, urlsplit


def pager_links(html, cursor):
    """The query of every link on ``html`` that carries ``cursor`` (``decided_after``,
    ``after``), as ``{name: value}``."""
    found = []
    for href in re.findall(r'href="([^"]*)"', html):
        query = parse_qs(urlsplit(html_text.unescape(href)).query)
        if cursor in query:
            found.append({name: values[0] for name, values in query.items()})
    return found


def next_link(html, cursor):
    """The link on ``html`` that moves the list named by ``cursor`` on (its query)."""
    links = pager_links(html, cursor)
    assert links, f"no link with {cursor} on the page"
    return links[0]


def assert_each_pager_keeps_the_others_place(client, path, base, prefixes):
    """On a page with two lists (their cursors ``<prefix>after``), moving either list on
    keeps the other's place and page size on every link of the other's pager."""
    from urllib.parse import urlencode

    first = client.get(f"{path}?{urlencode(base)}").get_data(as_text=True)
    for moved, kept in (prefixes, prefixes[::-1]):
        place = {**base, **next_link(first, moved + "after")}
        html = client.get(f"{path}?{urlencode(place)}").get_data(as_text=True)
        links = pager_links(html, kept + "after")
        assert links and all(
            link.get(moved + "after") == place[moved + "after"]
            and link.get(moved + "per_page") == base[moved + "per_page"]
            for link in links
        ), (moved, links)
