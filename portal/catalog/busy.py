"""When are providers busy? A registry the catalog reads and other capabilities fill.

The catalog knows nothing of bookings; the booking capability registers a source that
returns its live holds and bookings, so the catalog keeps no import of it::

    from portal.catalog import busy

    @busy.source("bookings")
    def _live_bookings(provider_ids, start, end):
        return [(provider_id, starts_at, ends_at), ...]   # aware datetimes

A source gets a set of provider ids and an aware half-open window and returns every busy
interval of those providers that overlaps the window. It should answer with one query.
Registering under the same name again replaces the source (module reloads stay harmless).

A source may instead hand over its query, so that the slot lookup reads availability,
leave and every busy interval in one round trip (``catalog.slots``)::

    @busy.query_source("bookings")
    def _live_bookings_query(provider_ids, start, end):
        return sa.select(provider_id, starts_at, ends_at).where(...)   # a SELECT of 3 columns
"""

from collections import defaultdict

from portal.extensions import db

_SOURCES = {}
_QUERIES = {}


def source(name):
    """Register a busy-interval source under ``name`` (decorator)."""

    def register(fn):
        _SOURCES[name] = fn
        return fn

    return register


def query_source(name):
    """Register a source given as a SELECT of (provider id, start, end) (decorator); the
    rows it selects must already be limited to the providers and the window."""

    def register(fn):
        _QUERIES[name] = fn
        _SOURCES.pop(name, None)
        return fn

    return register


def unregister(name):
    _SOURCES.pop(name, None)
    _QUERIES.pop(name, None)


def sources():
    return dict(_SOURCES)


def busy_queries(provider_ids, start, end):
    """The SELECTs of the query sources, to be read with other rows in one query."""
    return [fn(set(provider_ids), start, end) for fn in _QUERIES.values()]


def row_intervals(provider_ids, start, end):
    """``[(provider_id, start, end), …]`` of the sources that answer with rows."""
    ids = set(provider_ids)
    out = []
    for fn in _SOURCES.values():
        out.extend(
            (pid, s, e) for pid, s, e in fn(ids, start, end) if pid in ids and s < end and start < e
        )
    return out


def busy_intervals(provider_ids, start, end):
    """``{provider_id: [(start, end), …]}`` from every registered source, sorted; every
    requested provider has a key (possibly an empty list)."""
    ids = set(provider_ids)
    out = defaultdict(list)
    for pid in ids:
        out[pid] = []
    if not ids:
        return dict(out)
    rows = row_intervals(ids, start, end)
    for query in busy_queries(ids, start, end):
        rows.extend(db.session.execute(query))
    for provider_id, s, e in rows:
        if provider_id in ids and s < end and start < e:
            out[provider_id].append((s, e))
    for intervals in out.values():
        intervals.sort()
    return dict(out)
