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

A busy interval may be an unpaid hold: a patient's time held while they pay (or a move's
new time while its fee is paid), greyed on the provider's schedule and lapsing by itself
unless paid. A source says so by a fourth value, the time it lapses at (None, or no fourth
value: a booking); :func:`busy_spans` keeps it, for a refusal to name holds apart from
bookings (``catalog.checks``)::

    return [(provider_id, starts_at, ends_at, lapses_at), ...]   # lapses_at None: booked

A fifth value says a booking has been started (the provider is seeing the patient): it can
no longer be cancelled or moved, and a refusal names it apart (``catalog.checks``)::

    return [(provider_id, starts_at, ends_at, lapses_at, started), ...]

A source may instead hand over its query, so that the slot lookup reads availability,
leave and every busy interval in one round trip (``catalog.slots``). It builds the query
once, from the bind parameters of :class:`Window` (the lookup fills them in on every
read: building a statement costs a third of its CPU)::

    @busy.query_source("bookings")
    def _live_bookings_query(w):
        return sa.select(provider_id, starts_at, ends_at).where(
            provider_id.in_(w.provider_ids), starts_at < w.end, ends_at > w.start, ...
        )   # a SELECT of 3 columns, or 4 with the time a hold lapses at (NULL: booked),
            # or 5 with whether it has been started

A clinic's change (its deactivation, its opening hours narrowed, its time zone) asks by
clinic instead: the bookings ahead there, each with who is booked and the patient's visit
number, for the refusal to name them (``clinic_source``, :func:`clinic_bookings`), live at
the time ``now`` the change reads at; a move's held new time is a row of its booking's,
``moving`` true::

    @busy.clinic_source("bookings")
    def _at_clinic(clinic_id, start, end, now):
        return [(booking_id, provider_id, starts_at, ends_at, visit_number, moving,
             lapses_at, started), ...]   # lapses_at: as above, None for a paid booking's
             # time; started: as above (both may be left off)

Before it reads them it has the holds at the clinic whose time ran out by ``now`` released
(``clinic_release``, :func:`release_stale_at_clinic`): until the sweep reached them a
capture would still have confirmed them. A provider's deactivation, leave or weekly hours
does the same for the provider's holds (``provider_release``,
:func:`release_stale_of_providers`) and reads :func:`busy_intervals` at the same ``now``.
A release locks the holds' rows and returns what releases them, which runs once the
caller's ``lock`` (its lock on the providers' time) is taken: their money after that
lock (docs/booking.md, "One lock order for a booking's money")::

    @busy.clinic_release("bookings")
    def _release(clinic_id, start, end, now): ...  # returns a function of no arguments

    @busy.provider_release("bookings")
    def _release_of(provider_ids, start, end, now): ...  # the same
"""

from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa

from portal.db import UTCDateTime, utcnow
from portal.extensions import db

_SOURCES = {}
_QUERIES = {}
_CLINIC_SOURCES = {}
_SERVICE_SOURCES = {}
_CLINIC_RELEASES = {}
_PROVIDER_RELEASES = {}
_generation = 0


class Window:
    """The bind parameters a query source's SELECT is built with: the providers (a list),
    the aware half-open window and the time of the lookup."""

    # Typed, so a source may use them anywhere (not only compared with a column, which
    # would lend them its type): aware datetimes stored as the models store them.
    provider_ids = sa.bindparam("busy_provider_ids", expanding=True, type_=sa.Integer)
    start = sa.bindparam("busy_start", type_=UTCDateTime())
    end = sa.bindparam("busy_end", type_=UTCDateTime())
    now = sa.bindparam("busy_now", type_=UTCDateTime())


def window_values(provider_ids, start, end, now=None):
    """The values of :class:`Window`'s parameters for one lookup."""
    return {
        "busy_provider_ids": sorted(set(provider_ids)),
        "busy_start": start,
        "busy_end": end,
        "busy_now": now or utcnow(),
    }


def generation():
    """Changes whenever a source is registered or removed (a built lookup is then stale)."""
    return _generation


def _changed():
    global _generation
    _generation += 1


def source(name):
    """Register a busy-interval source under ``name`` (decorator)."""

    def register(fn):
        _SOURCES[name] = fn
        _QUERIES.pop(name, None)
        _changed()
        return fn

    return register


def query_source(name):
    """Register a source given as a SELECT of (provider id, start, end) (decorator); the
    rows it selects must already be limited to the providers and the window."""

    def register(fn):
        _QUERIES[name] = fn
        _SOURCES.pop(name, None)
        _changed()
        return fn

    return register


def unregister(name):
    _SOURCES.pop(name, None)
    _QUERIES.pop(name, None)
    _changed()


def sources():
    return dict(_SOURCES)


def busy_queries():
    """The SELECTs of the query sources, built on :class:`Window`'s parameters, to be read
    with other rows in one query (with :func:`window_values`)."""
    return [fn(Window) for fn in _QUERIES.values()]


class BusySpan(NamedTuple):
    """One busy interval (aware times), for an unpaid hold when it lapses, and whether the
    booking has been started."""

    start: object
    end: object
    lapses_at: object = None
    started: bool = False

    @property
    def hold(self):
        """Not booked: a patient paying for it, the time freed by itself at ``lapses_at``."""
        return self.lapses_at is not None


def _lapses(row):
    return row[3] if len(row) > 3 else None


def _started(row):
    return bool(row[4]) if len(row) > 4 else False


def row_intervals(provider_ids, start, end):
    """``[(provider_id, start, end), …]`` of the sources that answer with rows."""
    return [(pid, s, e) for pid, s, e, *_ in _row_spans(provider_ids, start, end)]


def _row_spans(provider_ids, start, end):
    ids = set(provider_ids)
    out = []
    for fn in _SOURCES.values():
        for row in fn(ids, start, end):
            pid, s, e = row[:3]
            if pid in ids and s < end and start < e:
                out.append((pid, s, e, _lapses(row), _started(row)))
    return out


def busy_spans(provider_ids, start, end, now=None):
    """``{provider_id: [BusySpan, …]}`` from every registered source, sorted by time; every
    requested provider has a key (possibly an empty list). ``now``: the time holds are
    live at (default: the clock). One query per query source, as before: a hold's lapse
    and a booking's start are columns of the same rows."""
    ids = set(provider_ids)
    out = {pid: [] for pid in ids}
    if not ids:
        return out
    rows = _row_spans(ids, start, end)
    values = window_values(ids, start, end, now)
    for query in busy_queries():
        rows.extend(
            (*row[:3], _lapses(row), _started(row)) for row in db.session.execute(query, values)
        )
    for provider_id, s, e, lapses_at, started in rows:
        if provider_id in ids and s < end and start < e:
            out[provider_id].append(BusySpan(s, e, lapses_at, started))
    for spans in out.values():
        spans.sort(key=lambda b: (b.start, b.end))
    return out


def busy_intervals(provider_ids, start, end, now=None):
    """``{provider_id: [(start, end), …]}``: :func:`busy_spans` as times only."""
    return {
        pid: [(b.start, b.end) for b in spans]
        for pid, spans in busy_spans(provider_ids, start, end, now).items()
    }


# --- by clinic ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Booked:
    """One booking at a clinic: its times (aware; ``start``/``end`` None when only a move's
    held new time lies in the window), the new time held for a move of it whose fee is
    being paid (``moving_to``: (start, end), or None), the providers booked and what names
    it to an administrator (the visit's number); for a time not paid for, when it lapses
    (``own_lapses``: the visit's hold; ``moving_lapses``: the move's fee checkout); and
    whether it has been started (``catalog.checks.has_begun`` reads it, with ``start``)."""

    start: object
    end: object
    moving_to: object
    provider_ids: tuple
    label: str
    own_lapses: object = None
    moving_lapses: object = None
    started: bool = False

    @property
    def spans(self):
        """The times it holds in the window: its own, and a move's held new time."""
        own = [(self.start, self.end)] if self.start is not None else []
        return own + ([self.moving_to] if self.moving_to else [])

    @property
    def first(self):
        return min(s for s, _ in self.spans)

    def lapses(self, spans=None):
        """When the times of it in the way (``spans``, default all) lapse by themselves
        (the last of them), or None when any of them is booked: an unpaid hold, or a
        paid booking's move whose new time alone is in the way, is waited for, not
        cancelled."""
        times = []
        for span in self.spans if spans is None else spans:
            own = self.start is not None and span == (self.start, self.end)
            lapse = self.own_lapses if own else self.moving_lapses
            if lapse is None:
                return None
            times.append(lapse)
        return max(times, default=None)


def clinic_source(name):
    """Register a source of the live bookings at a clinic (decorator): ``fn(clinic_id,
    start, end, now)`` returns ``[(key, provider_id, start, end, label, moving,
    lapses_at, started), …]``, a row per booked provider (``key`` one booking: its rows are
    one :class:`Booked`; ``moving``: the row is the new time held for its move; ``lapses_at``:
    when that time lapses unpaid, None when paid; ``started``: the booking has been; the
    last two may be left off), those overlapping
    the aware half-open window, live at ``now``."""

    def register(fn):
        _CLINIC_SOURCES[name] = fn
        return fn

    return register


def unregister_clinic_source(name):
    _CLINIC_SOURCES.pop(name, None)


def clinic_release(name):
    """Register what releases, at a clinic, the holds overlapping the window whose time ran
    out by ``now`` but which the sweep has not reached (decorator): ``fn(clinic_id, start,
    end, now)``, in the caller's unit of work, locks them and returns a function that
    releases them (called after the caller's lock on the time, :func:`_release`)."""

    def register(fn):
        _CLINIC_RELEASES[name] = fn
        return fn

    return register


def release_stale_at_clinic(clinic_id, start, end, now, lock):
    """Release the stale holds at the clinic (``clinic_release``), ``lock()`` (the lock
    on the providers' time) taken in between: :func:`_release`."""
    _release(_CLINIC_RELEASES, (clinic_id, start, end, now), lock)


def provider_release(name):
    """As :func:`clinic_release`, for the holds of providers: ``fn(provider_ids, start,
    end, now)`` (a provider's deactivation, leave or weekly hours, ``catalog.checks``)."""

    def register(fn):
        _PROVIDER_RELEASES[name] = fn
        return fn

    return register


def release_stale_of_providers(provider_ids, start, end, now, lock):
    """Release the providers' stale holds (``provider_release``), ``lock()`` (the lock on
    their time) taken in between: :func:`_release`."""
    _release(_PROVIDER_RELEASES, (provider_ids, start, end, now), lock)


def _release(releases, args, lock):
    """Each release locks its stale holds' rows (the visits, then their moves: before the
    lock on the time, as a hold takes its visit's), then ``lock()`` takes the lock on the
    providers' time, then each releases what it locked (its money, a wallet part posted
    back, after that lock, as every use case's money is)."""
    then = [fn(*args) for fn in releases.values()]
    lock()
    for release in then:
        release()


def service_source(name):
    """Register a source of the live bookings of a service (decorator): ``fn(service_id,
    start, end, now)`` returns rows as a :func:`clinic_source`'s do: what a change of the
    service that would strand its bookings ahead (its deactivation, its mode, a provider
    taken from it) is refused over (``catalog.service_changes``)."""

    def register(fn):
        _SERVICE_SOURCES[name] = fn
        return fn

    return register


def clinic_bookings(clinic_id, start, end, now=None):
    """``[Booked, …]`` at ``clinic_id`` overlapping ``[start, end)``, live at ``now``
    (default: the clock), from every clinic source, one per booking, sorted by their first
    time."""
    return _booked(_CLINIC_SOURCES, clinic_id, start, end, now)


def service_bookings(service_id, start, end, now=None):
    """As :func:`clinic_bookings`, the live bookings of ``service_id``."""
    return _booked(_SERVICE_SOURCES, service_id, start, end, now)


def _booked(sources, key_id, start, end, now):
    now = now or utcnow()
    grouped = {}
    for name, fn in sources.items():
        for row in fn(key_id, start, end, now):
            key, provider_id, s, e, label, moving = row[:6]
            if s < end and start < e:
                entry = grouped.setdefault((name, key), {"ids": set(), "label": label})
                part = "moving" if moving else "own"
                entry[part] = (s, e)
                entry[part + "_lapses"] = row[6] if len(row) > 6 else None
                entry["started"] = entry.get("started") or (len(row) > 7 and bool(row[7]))
                entry["ids"].add(provider_id)
    booked = [
        Booked(
            *(g.get("own") or (None, None)),
            g.get("moving"),
            tuple(sorted(g["ids"])),
            g["label"],
            g.get("own_lapses"),
            g.get("moving_lapses"),
            g.get("started", False),
        )
        for g in grouped.values()
    ]
    booked.sort(key=lambda b: (b.first, b.label))
    return booked
