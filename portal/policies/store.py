"""The policy in force, cached per process.

Each app keeps every approved version in memory (a few dozen small rows at most) with the
stamp token it read them under. Once per app context (a request, a job, a command) it reads
``policy_stamp.token`` by primary key and reloads the versions only when the token moved, so
``portal.config.policy()`` costs one indexed read per request however often it is called,
and nothing when called again in the same request. Which version is in force is decided in
memory at each call from the clock, so a version scheduled for later takes over on time
without any write.

Without any version row (a fresh database before the first edit; the tests) the app's
``POLICY`` setting (POLICY.md's defaults) is in force and bookings record no version
(``None``), which :func:`policy_version` reads as the first version: the first edit seeds
version 1 from those same defaults (``service.ensure_first_version``)."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app, g, has_app_context
from sqlalchemy.orm import aliased

from portal import jobs
from portal.db import utcnow
from portal.domain.policy import DEFAULT_POLICY, Policy
from portal.domain.policy_data import from_data
from portal.domain.states import ApprovalStatus
from portal.extensions import db
from portal.policies.models import PolicyStamp, PolicyVersion

STAMP_ID = 1
_G_KEY = "_policy_snapshot"


@dataclass(frozen=True)
class Snapshot:
    token: str | None
    keys: tuple = ()  # (effective_from, id), ascending: bisect finds the version in force
    policies: tuple = ()  # the Policy of each key
    by_id: dict = field(default_factory=dict)

    def in_force(self, now):
        """(version id, Policy) in force at ``now``, or (None, None) before any version."""
        i = bisect.bisect_right(self.keys, (now, float("inf")))
        if i == 0:
            return None, None
        return self.keys[i - 1][1], self.policies[i - 1]

    def next_change(self, now):
        """When the next approved version takes effect after ``now``, or None."""
        i = bisect.bisect_right(self.keys, (now, float("inf")))
        return self.keys[i][0] if i < len(self.keys) else None

    @property
    def first(self):
        return (self.keys[0][1], self.policies[0]) if self.keys else (None, None)


class PolicyCache:
    """One per app (``app.extensions["policies"]``); shared by the app's threads."""

    def __init__(self):
        self.snapshot = Snapshot(token=None)
        self.loads = 0  # how many times the versions were read (tests and the benchmark)
        self._lock = threading.Lock()

    def current(self, token):
        snap = self.snapshot
        if snap.token == token:
            return snap
        with self._lock:
            if self.snapshot.token != token:
                self.snapshot = _load(token)
                self.loads += 1
            return self.snapshot


def _load(token):
    rows = db.session.execute(
        sa.select(PolicyVersion.id, PolicyVersion.effective_from, PolicyVersion.values)
        .where(PolicyVersion.status == ApprovalStatus.APPROVED)
        .order_by(PolicyVersion.effective_from, PolicyVersion.id)
    ).all()
    keys = tuple((r.effective_from, r.id) for r in rows)
    policies = tuple(from_data(r.values) for r in rows)
    return Snapshot(token, keys, policies, dict(zip((r.id for r in rows), policies)))


def init_app(app):
    app.extensions["policies"] = PolicyCache()
    # portal.config.policy() asks this (config sits below this package in the layers).
    app.extensions["policy_source"] = policy_in_force


# The stamp as a column: what read_token reads, or what another statement reads with its
# own (catalog.cache.prime_with_policy, a signed-in request's user).
TOKEN = sa.select(PolicyStamp.token).where(PolicyStamp.id == STAMP_ID).scalar_subquery()


def read_token():
    return db.session.scalar(sa.select(TOKEN))


def snapshot() -> Snapshot:
    """The versions as this app context sees them (the stamp read at most once)."""
    snap = g.get(_G_KEY)
    if snap is None:
        snap = current_app.extensions["policies"].current(read_token())
        setattr(g, _G_KEY, snap)
    return snap


def prime(token):
    """The stamp as a caller read it with another in one statement
    (``catalog.cache.prime_with_policy``): this app context reads it no more."""
    if g.get(_G_KEY) is None:
        setattr(g, _G_KEY, current_app.extensions["policies"].current(token))


def _claimed(token):
    # An RQ job runs several items in one app context: each keeps the stamp its own claim
    # read, not the first item's.
    forget()
    prime(token)


# A job reads the stamp with its outbox row (the job runner sits below this package).
jobs.read_with_claim(TOKEN, _claimed)


def forget():
    """After a write in this app context: the next read checks the stamp again."""
    if has_app_context():
        g.pop(_G_KEY, None)


def _fallback() -> Policy:
    return current_app.config.get("POLICY") or DEFAULT_POLICY


def in_force(now=None) -> tuple[int | None, Policy]:
    """(version id, Policy) in force now; (None, the app's defaults) before any version."""
    version_id, pol = snapshot().in_force(now or utcnow())
    if pol is None:
        return None, _fallback()
    return version_id, pol


def policy_in_force() -> Policy:
    return in_force()[1]


def policy_version(version_id: int | None) -> Policy:
    """The Policy of one version, as a booking priced under it needs it. ``None`` (a booking
    made before any version existed) is the first version, or the defaults if none yet."""
    snap = snapshot()
    if version_id is None:
        pol = snap.first[1]
        return pol if pol is not None else _fallback()
    pol = snap.by_id.get(version_id)
    if pol is None:  # written in this transaction, or after the snapshot was read
        row = db.session.get(PolicyVersion, version_id)
        if row is None:
            return _fallback()
        pol = from_data(row.values)
    return pol


def _before(candidate, version_id, effective_from):
    """``candidate`` is an approved version in force before the version (``version_id``,
    ``effective_from``: values, or another row's columns) takes effect."""
    return sa.and_(
        candidate.status == ApprovalStatus.APPROVED,
        candidate.id != version_id,
        sa.or_(
            candidate.effective_from < effective_from,
            sa.and_(candidate.effective_from == effective_from, candidate.id < version_id),
        ),
    )


_LATEST_FIRST = (PolicyVersion.effective_from.desc(), PolicyVersion.id.desc())


def policy_version_before(version) -> Policy:
    """The approved policy in force just before ``version`` takes effect (what it changes)."""
    row = db.session.execute(
        sa.select(PolicyVersion.values)
        .where(_before(PolicyVersion, version.id, version.effective_from))
        .order_by(*_LATEST_FIRST)
        .limit(1)
    ).first()
    return from_data(row.values) if row else _fallback()


def policy_versions_before(versions) -> dict[int, Policy]:
    """:func:`policy_version_before` of each of ``versions`` (a page of them), in one
    statement: ``{version id: Policy}``."""
    ids = [v.id for v in versions]
    if not ids:
        return {}
    version, before, latest = aliased(PolicyVersion), aliased(PolicyVersion), aliased(PolicyVersion)
    before_id = (
        sa.select(latest.id)
        .where(_before(latest, version.id, version.effective_from))
        .order_by(latest.effective_from.desc(), latest.id.desc())
        .limit(1)
        .correlate(version)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(version.id, before.values)
        .select_from(version)
        .outerjoin(before, before.id == before_id)
        .where(version.id.in_(ids))
    )
    found = {row.id: row.values for row in rows}
    return {i: _fallback() if found.get(i) is None else from_data(found[i]) for i in ids}


def for_booking(item) -> Policy:
    """The policy an individual booking was priced and confirmed under."""
    return policy_version(getattr(item, "policy_version_id", None))
