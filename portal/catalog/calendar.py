"""Free-times answers cached per process, keyed by what they were computed from.

A free-times answer (``/find``'s results, ``/find/times``) depends on the catalog
(availability, leave, hours, services), the policy in force (prices), the providers' live
claims and bookings, and the clock. :func:`probe` finds the answer kept under the caller's
key (language, day, filters …) and reads, in one go, the **stamps** (epoch, catalog,
policy) and the calendar version of each provider the answer shows; it is served while
they read exactly as when it was computed, until the first of its times reaches its
booking cut-off (``valid_until``), the next policy version takes effect, and at most
``MAX_AGE`` (a hold whose time runs out frees its slot without any write, until the
expiry sweep releases it a minute later: an answer may show such a time as taken for up
to ``MAX_AGE``, never a taken time as free). Otherwise :func:`keep` computes it from the
database and keeps it under what the probe read (read before any row it shows).

Versions: ``note_write(session, provider_ids)`` records, during a transaction, which
providers' calendars it changed (``portal.booking.calendar_events`` calls it for every
slot claim, booking, visit hold and reschedule write); a flush that writes catalog rows or
the policy stamp notes ``CATALOG`` / ``POLICY`` (below). They are bumped AFTER the commit.
Bumped before it, a reader could read the new version, then the old rows (not yet
committed), and keep that old answer under the new version until ``MAX_AGE``; bumped after
it, a reader that sees the new version reads the committed rows, and one that read the old
version can only keep its answer under a version nobody asks for again. A rolled-back
transaction bumps nothing.

Where versions live: Redis when ``REDIS_URL`` is set, so every process (gunicorn workers,
RQ workers, commands) sees every bump; the catalog and policy stamps are then Redis
counters too (INCR after the commit, never set from the database's stamps, so two writers'
bumps arriving out of order cannot bring back a value already read), and a kept answer is
one ``MGET`` and no database at all. Without Redis (the embedded mode, one process) the
versions live in the app and the stamps are the database's (one statement per answer).
Every process writing to one database must use the same Redis. An epoch key, random and
set when missing, is read with the versions: after Redis is emptied or restarted every
answer kept before is a miss.

A bump that never happens (the process dies between its commit and the INCR, or Redis
refuses it) leaves the old counters current: answers kept before it are served at most
``MAX_AGE`` after they were computed (before the commit), and every later one is computed
from the committed rows. Nothing else is kept under these counters (the catalog cache's
entries stay keyed by the database's stamp), so that is the whole bound."""

import logging
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context
from sqlalchemy.orm import Session

from portal.catalog import cache as catalog_cache
from portal.db import utcnow
from portal.extensions import db
from portal.policies import store as policy_store
from portal.policies.models import PolicyStamp

log = logging.getLogger(__name__)

MAX_AGE = timedelta(seconds=30)  # the longest an answer is served (see above)
MAX_ENTRIES = 2048
PENDING = "calendar_versions_pending"  # session.info: provider ids written (ALL: any)
ALL = "all"
CATALOG = "catalog"  # pending: catalog rows written (their stamp moved)
POLICY = "policy"  # pending: the policy stamp written
EPOCH_KEY = "portal:calendar:epoch"
CATALOG_KEY = "portal:calendar:catalog"
POLICY_KEY = "portal:calendar:policy"
KEY_PREFIX = "portal:calendar:provider:"


@dataclass(frozen=True)
class _Entry:
    facts: tuple  # the stamps and versions read before it was computed
    provider_ids: tuple  # whose versions are in facts
    value: object
    expires_at: object  # aware UTC: the app's clock (tests move it)


class _Kept:
    """The answers one app keeps (an app per process in production; tests hold several)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = OrderedDict()  # key -> _Entry
        self.stats = {"hits": 0, "misses": 0}


@dataclass(frozen=True)
class Probe:
    """What :func:`probe` read: the kept answer (``value``) when current, else what a
    computed one is kept under (``stamps`` None: it is not kept)."""

    key: tuple
    stamps: tuple | None = None  # (epoch, catalog, policy)
    provider_ids: tuple = ()
    versions: tuple = ()
    value: object = None


class LocalVersions:
    """The embedded mode: versions in this process (one process serves everything); the
    catalog and policy stamps are the database's."""

    def __init__(self):
        self.kept = _Kept()
        self.epoch = random.randint(1, 2**62)
        self.versions = {}
        self._lock = threading.Lock()

    def read(self, provider_ids):
        if has_request_context():
            catalog_cache.prime_with_policy()  # one statement, kept for the request
            stamps = (catalog_cache.current_stamp(), policy_store.snapshot().token)
        else:  # an answer replayed before Flask (portal.web.replay): the same statement
            stamps = catalog_cache.read_stamps()
        with self._lock:
            versions = tuple(self.versions.get(pid, 0) for pid in provider_ids)
            return (self.epoch, *stamps), versions

    def bump(self, pending):
        with self._lock:
            if ALL in pending:
                self.epoch = random.randint(1, 2**62)
                return
            for pid in pending - {CATALOG, POLICY}:
                self.versions[pid] = self.versions.get(pid, 0) + 1


class RedisVersions:
    """Versions and stamps in Redis, shared by every process on every machine."""

    def __init__(self, url):
        from redis import Redis

        self.kept = _Kept()
        self.client = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def read(self, provider_ids):
        values = self.client.mget(
            [EPOCH_KEY, CATALOG_KEY, POLICY_KEY] + [KEY_PREFIX + str(pid) for pid in provider_ids]
        )
        if values[0] is None:
            # Emptied or new: a fresh epoch, and this answer is not kept (another process
            # may set a different epoch at the same moment; only one wins, NX).
            self.client.set(EPOCH_KEY, random.randint(1, 2**62), nx=True)
            return None
        return tuple(values[:3]), tuple(values[3:])

    def bump(self, pending):
        if ALL in pending:
            self.client.set(EPOCH_KEY, random.randint(1, 2**62))
            return
        names = {CATALOG: CATALOG_KEY, POLICY: POLICY_KEY}
        keys = sorted(names.get(p) or KEY_PREFIX + str(p) for p in pending)
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.incr(key)
            pipe.execute()


def init_app(app):
    url = app.config.get("REDIS_URL")
    app.extensions["calendar_versions"] = RedisVersions(url) if url else LocalVersions()


def _store():
    return current_app.extensions.get("calendar_versions") if has_app_context() else None


def note_write(session, provider_ids):
    """This transaction changes these providers' calendars (``ALL``: any provider's)."""
    pending = session.info.setdefault(PENDING, set())
    if provider_ids == ALL:
        pending.add(ALL)
    else:
        pending.update(int(pid) for pid in provider_ids)


def bump_pending(session):
    """After the commit: bump what the transaction wrote (see the module's docstring)."""
    pending = session.info.pop(PENDING, None)
    store = _store()
    if not pending or store is None:
        return
    try:
        store.bump(pending)
    except Exception:  # Redis away: this process forgets; others' answers age out (MAX_AGE)
        log.warning("calendar versions not bumped for %s", sorted(map(str, pending)))
        clear()


def forget_pending(session):
    session.info.pop(PENDING, None)


def _read(provider_ids):
    """((epoch, catalog, policy), versions of ``provider_ids``), or None when they cannot
    be read (then nothing is kept)."""
    store = _store()
    if store is None:
        return None
    try:
        return store.read(tuple(provider_ids))
    except Exception:  # Redis away: answer from the database, without the cache
        log.warning("calendar versions unreadable; free times not cached", exc_info=True)
        return None


def read_versions(provider_ids):
    """The stamps and calendar versions of ``provider_ids`` as one tuple, or None."""
    read = _read(provider_ids)
    return None if read is None else read[0] + read[1]


def probe(key):
    """The answer kept under ``key`` when everything it was computed from reads the same
    (with Redis: one MGET, no database), else what :func:`keep` needs."""
    store = _store()
    if store is None or not current_app.config.get("FREE_TIMES_CACHE", True):
        return Probe(key)
    kept = store.kept
    with kept.lock:
        entry = kept.entries.get(key)
    ids = entry.provider_ids if entry is not None else ()
    read = _read(ids)
    if read is None:
        return Probe(key)
    stamps, versions = read
    if entry is not None and entry.facts == stamps + versions and entry.expires_at > utcnow():
        with kept.lock:
            if key in kept.entries:
                kept.entries.move_to_end(key)
            kept.stats["hits"] += 1
        return Probe(key, stamps, ids, versions, entry.value)
    return Probe(key, stamps, ids, versions)


def keep(found, provider_ids, compute):
    """``compute()`` returns ``(value, valid_until)`` (an aware datetime, or None: no time
    in it expires); the value is kept under what ``found`` (the probe) read and the
    calendar versions of ``provider_ids`` (read before any row the answer shows)."""
    if found.stamps is None:
        return compute()[0]
    ids = tuple(provider_ids)
    versions = found.versions
    if ids != found.provider_ids:
        read = _read(ids)
        # Another epoch (Redis emptied meanwhile): these versions mean nothing to it.
        if read is None or read[0][0] != found.stamps[0]:
            return compute()[0]
        versions = read[1]
    now = utcnow()
    value, valid_until = compute()
    session = db.session
    if session.new or session.dirty or session.deleted or session.info.get(PENDING):
        return value  # this transaction's own writes, not committed: never kept
    ends = [now + MAX_AGE, valid_until, policy_store.snapshot().next_change(now)]
    expires_at = min(at for at in ends if at is not None)
    if expires_at <= now:
        return value
    kept = _store().kept
    with kept.lock:
        kept.stats["misses"] += 1
        kept.entries[found.key] = _Entry(found.stamps + versions, ids, value, expires_at)
        kept.entries.move_to_end(found.key)
        while len(kept.entries) > MAX_ENTRIES:
            kept.entries.popitem(last=False)
    return value


def holds(key, value):
    """Whether ``value`` is the answer kept under ``key`` (not merely an equal one)."""
    store = _store()
    if store is None:
        return False
    with store.kept.lock:
        entry = store.kept.entries.get(key)
    return entry is not None and entry.value is value


def clear():
    """Forget this app's kept answers."""
    store = _store()
    if store is not None:
        with store.kept.lock:
            store.kept.entries.clear()


def stats():
    kept = _store().kept
    return dict(kept.stats, entries=len(kept.entries))


# The stamps: a flush that writes catalog rows (their database stamp moves, see
# catalog.cache) or the policy stamp notes it; the outermost commit bumps the counters.
@sa.event.listens_for(Session, "after_flush")
def _note_stamp_writes(session, flush_context):
    pending = set()
    if catalog_cache.touches_catalog(session):
        pending.add(CATALOG)
    if any(isinstance(o, PolicyStamp) for group in (session.new, session.dirty) for o in group):
        pending.add(POLICY)
    if pending:
        session.info.setdefault(PENDING, set()).update(pending)


@sa.event.listens_for(Session, "after_commit")
def _bump_after_commit(session):
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction may still roll back
    bump_pending(session)


@sa.event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session, previous_transaction):
    if previous_transaction.parent is None:
        forget_pending(session)
