"""Free-times answers cached per process, keyed by per-provider calendar versions.

A free-times answer (``/find``'s results, ``/find/times``) depends on the catalog (the
``CatalogVersion`` stamp: availability, leave, hours, services), on the providers' live
claims and bookings, and on the clock. :func:`cached` keeps an answer under the catalog
stamp, the caller's key (policy version, locale, day, filters …) and the calendar version
of each provider it shows; it is served until the first of its times reaches its booking
cut-off (``valid_until``) and at most ``MAX_AGE`` (a hold whose time runs out frees its
slot without any write, until the expiry sweep releases it a minute later: an answer may
show such a time as taken for up to ``MAX_AGE``, never a taken time as free).

Versions: ``note_write(session, provider_ids)`` records, during a transaction, which
providers' calendars it changed (``portal.booking.calendar_events`` calls it for every
slot claim, booking, visit hold and reschedule write); the versions are bumped AFTER the
commit. Bumped before it, a reader could read the new version, then the old rows (not yet
committed), and keep that old answer under the new version until ``MAX_AGE``; bumped after
it, a reader that sees the new version reads the committed rows, and one that read the old
version can only keep its answer under a version nobody asks for again. A rolled-back
transaction bumps nothing.

Where versions live: Redis when ``REDIS_URL`` is set, so every process (gunicorn workers,
RQ workers, commands) sees every bump (one ``MGET`` per answer); without Redis (the
embedded mode, one process) in the app. Every process writing to one database must use the
same Redis. An epoch key, random and set when missing, is read with the versions: after
Redis is emptied or restarted every answer kept before is a miss."""

import logging
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, has_app_context

from portal.catalog import cache as catalog_cache
from portal.db import utcnow
from portal.extensions import db

log = logging.getLogger(__name__)

MAX_AGE = timedelta(seconds=30)  # the longest an answer is served (see above)
MAX_ENTRIES = 2048
PENDING = "calendar_versions_pending"  # session.info: provider ids written (ALL: any)
ALL = "all"
EPOCH_KEY = "portal:calendar:epoch"
KEY_PREFIX = "portal:calendar:provider:"

_lock = threading.Lock()
_entries = OrderedDict()  # (engine, stamp, key, versions) -> _Entry
_stats = {"hits": 0, "misses": 0}


@dataclass(frozen=True)
class _Entry:
    value: object
    expires_at: object  # aware UTC: the app's clock (tests move it)


class LocalVersions:
    """The embedded mode: versions in this process (one process serves everything)."""

    def __init__(self):
        self.epoch = random.randint(1, 2**62)
        self.versions = {}
        self._lock = threading.Lock()

    def read(self, provider_ids):
        with self._lock:
            return (self.epoch,) + tuple(self.versions.get(pid, 0) for pid in provider_ids)

    def bump(self, provider_ids):
        with self._lock:
            if provider_ids == ALL:
                self.epoch = random.randint(1, 2**62)
                return
            for pid in provider_ids:
                self.versions[pid] = self.versions.get(pid, 0) + 1


class RedisVersions:
    """Versions in Redis, shared by every process on every machine."""

    def __init__(self, url):
        from redis import Redis

        self.client = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def read(self, provider_ids):
        values = self.client.mget([EPOCH_KEY] + [KEY_PREFIX + str(pid) for pid in provider_ids])
        if values[0] is None:
            # Emptied or new: a fresh epoch, and this answer is not kept (another process
            # may set a different epoch at the same moment; only one wins, NX).
            self.client.set(EPOCH_KEY, random.randint(1, 2**62), nx=True)
            return None
        return tuple(values)

    def bump(self, provider_ids):
        if provider_ids == ALL:
            self.client.set(EPOCH_KEY, random.randint(1, 2**62))
            return
        with self.client.pipeline(transaction=False) as pipe:
            for pid in sorted(provider_ids):
                pipe.incr(KEY_PREFIX + str(pid))
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
        store.bump(ALL if ALL in pending else pending)
    except Exception:  # Redis away: answers kept before stay served until MAX_AGE
        log.warning("calendar versions not bumped for %s", sorted(map(str, pending)))


def forget_pending(session):
    session.info.pop(PENDING, None)


def read_versions(provider_ids):
    """The calendar versions of ``provider_ids`` (one MGET with Redis), or None when they
    cannot be read (then nothing is cached)."""
    store = _store()
    if store is None:
        return None
    try:
        return store.read(list(provider_ids))
    except Exception:  # Redis away: answer without the cache
        log.warning("calendar versions unreadable; free times not cached", exc_info=True)
        return None


def cached(key, provider_ids, compute):
    """``compute()`` returns ``(value, valid_until)`` (an aware datetime, or None: no time
    in it expires); the value is kept per process under the catalog stamp, ``key`` and the
    calendar versions of ``provider_ids`` (read first: before any row the answer shows)."""
    if not current_app.config.get("FREE_TIMES_CACHE", True):
        return compute()[0]
    versions = read_versions(provider_ids)
    if versions is None:
        return compute()[0]
    full_key = (id(db.engine), catalog_cache.current_stamp(), key, versions)
    now = utcnow()
    with _lock:
        hit = _entries.get(full_key)
        if hit is not None and hit.expires_at > now:
            _entries.move_to_end(full_key)
            _stats["hits"] += 1
            return hit.value
    value, valid_until = compute()
    session = db.session
    if session.new or session.dirty or session.deleted or session.info.get(PENDING):
        return value  # this transaction's own writes, not committed: never kept
    expires_at = now + MAX_AGE
    if valid_until is not None:
        expires_at = min(expires_at, valid_until)
    if expires_at <= now:
        return value
    with _lock:
        _stats["misses"] += 1
        _entries[full_key] = _Entry(value, expires_at)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear():
    with _lock:
        _entries.clear()


def stats():
    return dict(_stats, entries=len(_entries))
