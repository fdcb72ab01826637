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
"""

from collections import defaultdict

_SOURCES = {}


def source(name):
    """Register a busy-interval source under ``name`` (decorator)."""

    def register(fn):
        _SOURCES[name] = fn
        return fn

    return register


def unregister(name):
    _SOURCES.pop(name, None)


def sources():
    return dict(_SOURCES)


def busy_intervals(provider_ids, start, end):
    """``{provider_id: [(start, end), …]}`` from every registered source, sorted; every
    requested provider has a key (possibly an empty list)."""
    ids = set(provider_ids)
    out = defaultdict(list)
    for pid in ids:
        out[pid] = []
    if not ids:
        return dict(out)
    for fn in _SOURCES.values():
        for provider_id, s, e in fn(ids, start, end):
            if provider_id in ids and s < end and start < e:
                out[provider_id].append((s, e))
    for intervals in out.values():
        intervals.sort()
    return dict(out)
