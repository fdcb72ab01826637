"""The catalog cached per process, with explicit invalidation.

Clinics (and their hours), providers, their specializations and services change rarely and
are read by every find-a-doctor answer. Each process keeps the result of a provider search
(the providers with those relations loaded) under the catalog's current stamp
(``CatalogVersion``): one cheap query per request tells whether the cache is current, and
cached objects are merged into the request's session without a query
(``Session.merge(load=False)``, SQLAlchemy's caching recipe), or, for a caller that only
prints them (``attach=False``: find-a-doctor's results), handed over as the cache's own
detached copies, merged nowhere.

Invalidation: a flush that writes any catalog row (new, changed or deleted clinic, hours,
specialization, provider, service, availability, leave) sets a new random stamp in the same
transaction, so every process sees the change once it commits (and a rolled-back edit
changes nothing). The policy is not cached here (it has its own versioned cache)."""

import random
import threading
from collections import OrderedDict

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from portal.catalog.models import (
    Availability,
    CatalogVersion,
    Clinic,
    ClinicHours,
    Leave,
    Provider,
    Service,
    Specialization,
)
from portal.extensions import db
from portal.policies import store as policy_store

CATALOG_MODELS = (Clinic, ClinicHours, Specialization, Provider, Service, Availability, Leave)
MAX_ENTRIES = 256

_lock = threading.Lock()
_entries = OrderedDict()  # (engine, stamp, key) -> [detached objects]
_stats = {"hits": 0, "misses": 0}


def current_stamp():
    """The catalog's stamp (0 before any catalog edit), read once per request."""
    if has_request_context() and "catalog_stamp" in g:
        return g.catalog_stamp
    stamp = db.session.scalar(sa.select(CatalogVersion.stamp).where(CatalogVersion.id == 1)) or 0
    if has_request_context():
        g.catalog_stamp = stamp
    return stamp


# The stamp as a column another statement reads with its own (a signed-in request's user).
STAMP = sa.select(CatalogVersion.stamp).where(CatalogVersion.id == 1).scalar_subquery()
# Built once: building it cost about a third of a kept free-times answer's CPU.
_STAMPS = sa.select(STAMP, policy_store.TOKEN)


def prime(stamp):
    """The stamp as a caller read it with its own statement: this request reads it no more."""
    if has_request_context() and "catalog_stamp" not in g:
        g.catalog_stamp = stamp or 0


def prime_with_policy():
    """The catalog stamp and the policy's stamp in ONE statement, kept for the request as
    if each had been read on its own: what a cached free-times answer reads."""
    if not has_request_context() or "catalog_stamp" in g:
        return
    catalog, policy = read_stamps()
    prime(catalog)
    policy_store.prime(policy)


def read_stamps():
    """(the catalog stamp, the policy's stamp), read in one statement."""
    row = db.session.execute(_STAMPS).one()
    return row[0] or 0, row[1]


def cached(key, load, attach=True):
    """``load()`` (a list of catalog objects with what the caller reads loaded), cached per
    process under the current stamp and ``key``; attached to the current session.

    ``attach=False``: the cache's own detached copies (on a miss as on a hit), shared by
    every request of the process, for a caller that only reads what was loaded and prints
    it (find-a-doctor's results). Merging is most of a hit's cost (it cascades through
    every loaded relation: about 0.25 ms a search here); such a copy must never be added
    to a session, changed, or asked for a relation that was not loaded (it would raise,
    being detached)."""
    # The engine too: tests and tools may hold apps on several databases in one process.
    full_key = (id(db.engine), current_stamp(), key)
    with _lock:
        hit = _entries.get(full_key)
        if hit is not None:
            _entries.move_to_end(full_key)
            _stats["hits"] += 1
    if hit is None:
        objects = load()
        if db.session.new or db.session.dirty or db.session.deleted:
            return objects  # unflushed edits in this session: never cache what they show
        _stats["misses"] += 1
        detached = _detached_copies(objects)
        with _lock:
            _entries[full_key] = detached
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
        # Read-only callers get the copies on a miss too: what they read is the same kind
        # of object either way (a relation the search did not load fails the first time).
        return objects if attach else list(detached)
    if not attach:
        return list(hit)
    return [db.session.merge(obj, load=False) for obj in hit]


def cached_values(key, load):
    """``load()`` (plain values: tuples, named tuples, never ORM objects), cached per
    process under the current stamp and ``key``. Nothing is merged into the session, so a
    hit costs no ORM work at all: for what a page only prints (a filter form's choices)."""
    full_key = (id(db.engine), current_stamp(), ("values",) + tuple(key))
    with _lock:
        hit = _entries.get(full_key)
        if hit is not None:
            _entries.move_to_end(full_key)
            _stats["hits"] += 1
            return hit
    values = load()
    if db.session.new or db.session.dirty or db.session.deleted:
        return values  # unflushed edits in this session: never cache what they show
    _stats["misses"] += 1
    with _lock:
        _entries[full_key] = values
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return values


def _detached_copies(objects):
    """Copies the cache can hand to any session: merged into a throwaway session (loaded
    state only, no query), then detached from it."""
    scratch = Session()
    try:
        copies = [scratch.merge(obj, load=False) for obj in objects]
        scratch.expunge_all()
        return copies
    finally:
        scratch.close()


def clear():
    with _lock:
        _entries.clear()


def stats():
    return dict(_stats, entries=len(_entries))


def touches_catalog(session):
    return any(
        isinstance(obj, CATALOG_MODELS)
        for group in (session.new, session.dirty, session.deleted)
        for obj in group
    )


def lock_stamp():
    """Take the ``catalog_version`` row's lock (PostgreSQL ``FOR NO KEY UPDATE``, the lock
    the stamp's UPDATE takes; to the transaction's end): the FIRST lock of every catalog
    edit (``catalog.checks.changing``, and the account's deactivation of a provider's
    profile), taken before any catalog row, so catalog edits take their locks in one order
    (``catalog.checks``, "Lock order"). Without it an edit's first flush took it midway,
    after the row locks the edit held. Reads of the stamp (a plain SELECT) never wait for
    it. The row is made if missing (a schema made without the migration's row). A no-op on
    SQLite, whose writers take turns anyway."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    lock = (
        sa.select(CatalogVersion.id).where(CatalogVersion.id == 1).with_for_update(key_share=True)
    )
    with db.session.no_autoflush:
        if db.session.execute(lock).first() is None:
            db.session.execute(
                postgresql.insert(CatalogVersion)
                .values(id=1, stamp=random.randint(1, 2**62))
                .on_conflict_do_nothing(index_elements=["id"])
            )
            db.session.execute(lock)


@sa.event.listens_for(Session, "before_flush")
def _bump_on_catalog_change(session, flush_context, instances):
    if not touches_catalog(session):
        return
    stamp = random.randint(1, 2**62)
    updated = session.execute(
        sa.update(CatalogVersion).where(CatalogVersion.id == 1).values(stamp=stamp)
    ).rowcount
    if not updated:
        session.execute(sa.insert(CatalogVersion).values(id=1, stamp=stamp))
    if has_request_context():
        g.pop("catalog_stamp", None)  # this request reads the new stamp from now on
