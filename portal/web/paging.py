"""The page a list request asks for: ``?after=`` / ``?before=`` cursors and ``?per_page=``
(bounded by ``portal.pagination.MAX_PER_PAGE``). Read modules take these as keywords."""

from flask import request

from portal.pagination import DEFAULT_PER_PAGE, per_page_from


def page_args(default=DEFAULT_PER_PAGE, prefix=""):
    """``{"after": …, "before": …, "per_page": …}`` from the query string; ``prefix``
    reads a second list's cursors (``outbox_after``)."""
    args = request.args
    return {
        "after": args.get(prefix + "after") or None,
        "before": args.get(prefix + "before") or None,
        "per_page": per_page_from(args.get(prefix + "per_page"), default),
    }


def cursor_args(prefix=""):
    """A list's cursors and page size as the query string has them, by their names
    (``runs_after``): a page with two lists keeps one's on the other's pager links, so
    paging one list leaves the other where it was."""
    names = (prefix + "after", prefix + "before", prefix + "per_page")
    return {name: request.args[name] for name in names if request.args.get(name)}
