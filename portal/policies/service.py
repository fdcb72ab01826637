"""Changing the policy: propose a new version, approve or reject one. Each is one unit of
work with its audit row and a fresh change stamp.

Rules (docs/policy.md):

* only administrators change the policy;
* an edit is validated as a whole by ``portal.domain.policy_data.problems``; any problem
  refuses the whole edit (:class:`PolicyError` with a message per field), nothing is saved;
  so are version 1 (the app's defaults) and a pending change at its approval (saved before
  a rule it breaks: it never takes effect);
* a version takes effect at its ``effective_from`` (now when not given, never in the past,
  at most ``MAX_AHEAD`` ahead) and never before a version already scheduled or awaiting
  approval;
* an edit that touches money or a control (``policy_data.SECOND_ADMIN_FIELDS``: the
  shortest audit note and the reconciliation tolerance besides money) waits as ``PENDING``
  until a different administrator approves it; other edits are approved by their author at
  once;
* an approval after the chosen time makes the version effective at the approval: a
  policy never applies to the past;
* any administrator may withdraw an approved version not in force yet, the latest one
  first (``withdraw``): it never applies;
* every write holds the change stamp's row to its commit (``_lock_stamp``); an edit whose
  base is no longer the latest approved version (another administrator's change committed
  meanwhile, or since the form was opened: ``base_version``) is refused, never saved over it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from portal import events
from portal.accounts.models import ADMIN
from portal.audit.service import record
from portal.db import unit_of_work, utcnow
from portal.domain.policy import DEFAULT_POLICY
from portal.domain.policy_data import (
    changed_paths,
    from_data,
    needs_second_admin,
    problems,
    settle_tds_rules,
    to_data,
    unflatten,
)
from portal.domain.states import POLICY_VERSION, PolicyStatus
from portal.extensions import db
from portal.policies import queries, store
from portal.policies.models import PolicyStamp, PolicyVersion

# The audit actions of a change's maker-checker trail: its proposal, the decision on it,
# and its withdrawal before it takes effect (the approvals queue's source names them as its
# steps, ``approvals.sources``). Not "policy.changed": a change no one need approve.
PROPOSED = "policy.proposed"
APPROVED = "policy.approved"
REJECTED = "policy.rejected"
WITHDRAWN = "policy.withdrawn"
APPROVAL_STEPS = (PROPOSED, APPROVED, REJECTED, WITHDRAWN)

MSG_ADMIN = "Only administrators can change the policy."
MSG_PAST = "Effective from cannot be in the past."
MSG_TOO_FAR = "Effective from can be at most a year from now."
MSG_AFTER = (
    "A change is already scheduled from {when} (UTC): choose a later time, or decide that "
    "one first."
)
MSG_NOTHING = "Nothing changed: edit at least one value."
MSG_WAITING = (
    "Policy version {id} waits for a second administrator: approve or reject it before "
    "making another change."
)
MSG_DECIDED = "This change has already been decided."
MSG_SECOND_ADMIN = (
    "A second administrator must approve a policy change that affects money or a control."
)
MSG_REASON = "Say why the policy changes (at least {n} characters)."
MSG_NOT_FOUND = "No such policy version."
MSG_BREAKS_RULES = (
    "This change breaks a rule of the policy made since it was proposed: reject it and make "
    "the change again."
)
MSG_WITHDRAW_IN_FORCE = (
    "Only an approved change that has not taken effect yet can be withdrawn: to undo a change "
    "in force, make a new one."
)
MSG_WITHDRAW_DUE = (
    "This change takes effect within a minute and can no longer be withdrawn: once it "
    "applies, make a new change."
)
MSG_WITHDRAW_LATER = (
    "Version {id} comes after this change and carries its values: withdraw or reject it first."
)
MSG_WITHDRAW_NOTE = "Say why the change is withdrawn (at least {n} characters)."
MSG_STALE = (
    "Another administrator changed the policy while you were editing it (it is now version "
    "{id}): reload the page to see their change, then make yours again."
)
# A form takes a moment to submit: "now" typed into it is accepted this long after.
PAST_GRACE = timedelta(minutes=5)
# Further ahead is a typo (2062 for 2026) more often than a plan, and every later change
# must come after it.
MAX_AHEAD = timedelta(days=365)
FIRST_EFFECTIVE = datetime(2000, 1, 1, tzinfo=UTC)


class PolicyError(ValueError):
    """A refused change: ``errors`` maps a value's path (or ``effective_from``,
    ``reason``, ``__all__``) to its message."""

    def __init__(self, errors: dict):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class PolicyNotFound(PolicyError):
    pass


class PolicyPermissionDenied(PermissionError):
    pass


def _require_admin(actor):
    if getattr(actor, "role", None) != ADMIN:
        raise PolicyPermissionDenied(MSG_ADMIN)


def touch_stamp(now=None):
    """A new random token: every process reloads the versions at its next request."""
    stamp = db.session.get(PolicyStamp, store.STAMP_ID)
    if stamp is None:
        db.session.add(
            PolicyStamp(id=store.STAMP_ID, token=secrets.token_hex(16), changed_at=now or utcnow())
        )
    else:
        stamp.token = secrets.token_hex(16)
        stamp.changed_at = now or utcnow()


def ensure_first_version(actor=None):
    """Version 1 from the app's defaults (POLICY.md) when there is no version yet, in force
    since long ago, so bookings made before any edit (no version recorded) keep them."""
    with unit_of_work():
        if db.session.scalar(sa.select(PolicyVersion.id).limit(1)) is not None:
            return None
        base = current_app.config.get("POLICY") or DEFAULT_POLICY
        errors = problems(to_data(base))
        if errors:
            raise PolicyError(errors)
        version = PolicyVersion(
            values=to_data(base),
            effective_from=FIRST_EFFECTIVE,
            status=PolicyStatus.PENDING,
            needs_approval=False,
            reason="POLICY.md defaults",
            created_by_id=getattr(actor, "id", None),
        )
        db.session.add(version)
        db.session.flush()
        POLICY_VERSION.move(version, PolicyStatus.APPROVED)
        version.decided_at = utcnow()
        record(actor, "policy.seeded", "policy_version", version.id, after={"version": version.id})
        touch_stamp()
    store.forget()
    return version


def _latest_scheduled():
    return db.session.scalar(
        sa.select(sa.func.max(PolicyVersion.effective_from)).where(
            PolicyVersion.status.in_([PolicyStatus.APPROVED, PolicyStatus.PENDING])
        )
    )


_LATEST_APPROVED = (
    sa.select(PolicyVersion.id)
    .where(PolicyVersion.status == PolicyStatus.APPROVED)
    .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.id.desc())
    .limit(1)
)


def editing_start(now=None):
    """(version id, Policy) a new change starts from: the latest approved version, even one
    not in force yet; (0, the app's defaults) before any version. Starting from the one in
    force would carry its older values into the new version and silently undo a scheduled
    change (its fees, say) without a second administrator. The form keeps the id
    (``propose``'s ``base_version``)."""
    latest = db.session.scalar(
        sa.select(PolicyVersion).where(PolicyVersion.id == _LATEST_APPROVED.scalar_subquery())
    )
    if latest is None:
        return 0, store.in_force(now or utcnow())[1]
    return latest.id, from_data(latest.values)


def editing_base(now=None):
    """The Policy of :func:`editing_start`."""
    return editing_start(now)[1]


def _lock_stamp():
    """Hold the stamp's row until this transaction ends. Every write of the policy takes it,
    so on PostgreSQL a second write waits here until the first has committed, and then reads
    what the first wrote (READ COMMITTED: each statement sees the latest commits). SQLite
    serialises every writer anyway."""
    query = sa.select(PolicyStamp.id).where(PolicyStamp.id == store.STAMP_ID)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    db.session.execute(query)


def _stale(base_id):
    """Why an edit built on version ``base_id`` cannot be saved now, or None: another
    administrator's change committed since it was read (read again under the stamp's lock,
    so two edits started at the same moment never both pass)."""
    waiting = db.session.scalar(
        sa.select(PolicyVersion.id).where(PolicyVersion.status == PolicyStatus.PENDING).limit(1)
    )
    if waiting is not None:
        return MSG_WAITING.format(id=waiting)
    latest_id = db.session.scalar(_LATEST_APPROVED)
    if latest_id != base_id:
        return MSG_STALE.format(id=latest_id)
    return None


def _same_base(expected, base_id):
    """Whether the form was opened on version ``base_id``. 0 is a form opened before any
    version existed: it matches version 1 (the defaults), seeded by this very edit."""
    if expected == base_id:
        return True
    first = db.session.scalar(sa.select(sa.func.min(PolicyVersion.id)))
    return expected == 0 and base_id == first


def _waiting():
    return db.session.scalar(
        sa.select(PolicyVersion.id)
        .where(PolicyVersion.status == PolicyStatus.PENDING)
        .order_by(PolicyVersion.id)
        .limit(1)
    )


def propose(admin, changes: dict, *, effective_from=None, reason="", now=None, base_version=None):
    """A new version: the latest approved one (``editing_start``) with ``changes`` (flat
    paths to values in the domain's units, ``policy_data.flatten``). ``base_version``: the
    version id the edit was made on (a form's ``editing_start``): refused with
    ``MSG_STALE`` when another change was approved since (a form sends every value, so
    saving it would silently undo that change). Returns the PolicyVersion (PENDING when it
    needs a second administrator, else APPROVED). Raises :class:`PolicyError`."""
    _require_admin(admin)
    now = now or utcnow()
    reason = (reason or "").strip()
    with unit_of_work():
        ensure_first_version(admin)  # a savepoint: a refused edit leaves no seed either
        base_id, base = editing_start(now)
        if base_version is not None and not _same_base(base_version, base_id):
            raise PolicyError({"__all__": MSG_STALE.format(id=base_id)})
        before = to_data(base)
        # A TDS rule from a later year never changes the years before it.
        after = settle_tds_rules(before, unflatten(before, changes))
        errors = problems(after)
        waiting = _waiting()
        if waiting is not None:  # one change at a time: each is built on the last approved
            errors["__all__"] = MSG_WAITING.format(id=waiting)
        diff = changed_paths(before, after)
        if not diff and not errors:
            errors["__all__"] = MSG_NOTHING
        minimum = base.note_min_length
        if len(reason) < minimum:
            errors["reason"] = MSG_REASON.format(n=minimum)
        effective = effective_from or now
        if effective < now - PAST_GRACE:
            errors["effective_from"] = MSG_PAST
        effective = max(effective, now)
        if effective > now + MAX_AHEAD:
            errors["effective_from"] = MSG_TOO_FAR
        latest = _latest_scheduled()
        if latest is not None and latest > effective and "effective_from" not in errors:
            errors["effective_from"] = MSG_AFTER.format(when=latest.strftime("%Y-%m-%d %H:%M"))
        if not errors:
            try:
                from_data(after)
            # A guard the form cannot reach (problems() bounds every duration; OverflowError
            # is a timedelta beyond Python's).
            except (ValueError, TypeError, OverflowError) as exc:
                errors["__all__"] = str(exc)
        if errors:
            raise PolicyError(errors)
        # Everything above read without a lock: a change committed meanwhile by another
        # administrator is seen now, and this one (built on the older base) is refused.
        _lock_stamp()
        stale = _stale(base_id)
        if stale is not None:
            raise PolicyError({"__all__": stale})
        needs = needs_second_admin(before, after)
        version = PolicyVersion(
            values=after,
            effective_from=effective,
            status=PolicyStatus.PENDING,
            needs_approval=needs,
            reason=reason,
            created_by_id=admin.id,
        )
        db.session.add(version)
        db.session.flush()
        if not needs:
            POLICY_VERSION.move(version, PolicyStatus.APPROVED)
            version.decided_by_id = admin.id
            version.decided_at = now
        else:  # the other administrators are told it waits for one of them
            events.policy_change_requested.send("policies", version_id=version.id)
        record(
            admin,
            PROPOSED if needs else "policy.changed",
            "policy_version",
            version.id,
            before={p: old for p, (old, _) in diff.items()},
            after={
                **{p: new for p, (_, new) in diff.items()},
                "effective_from": effective.isoformat(),
                "needs_approval": needs,
                "reason": reason,
            },
        )
        touch_stamp(now)
    store.forget()
    return version


def _locked(version_id):
    query = sa.select(PolicyVersion).where(PolicyVersion.id == version_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=PolicyVersion)
    version = db.session.scalar(query)
    if version is None:
        raise PolicyNotFound({"__all__": MSG_NOT_FOUND})
    return version


def _pending(version_id):
    version = _locked(version_id)
    if version.status != PolicyStatus.PENDING:
        raise PolicyError({"__all__": MSG_DECIDED})
    return version


def approve(admin, version_id, note="", now=None):
    """A second administrator approves a pending change; it applies from its chosen time,
    or from now when that has passed."""
    _require_admin(admin)
    now = now or utcnow()
    with unit_of_work():
        _lock_stamp()
        version = _pending(version_id)
        if version.created_by_id == admin.id:
            raise PolicyPermissionDenied(MSG_SECOND_ADMIN)
        errors = problems(version.values)
        if errors:
            raise PolicyError({"__all__": MSG_BREAKS_RULES, **errors})
        chosen = version.effective_from
        version.effective_from = max(chosen, now)
        POLICY_VERSION.move(version, PolicyStatus.APPROVED)
        version.decided_by_id = admin.id
        version.decided_at = now
        version.decision_note = (note or "").strip()[:500]
        record(
            admin,
            APPROVED,
            "policy_version",
            version.id,
            before={"status": PolicyStatus.PENDING, "effective_from": chosen.isoformat()},
            after={
                "status": PolicyStatus.APPROVED,
                "effective_from": version.effective_from.isoformat(),
                "note": version.decision_note,
            },
        )
        touch_stamp(now)
    store.forget()
    return version


def reject(admin, version_id, note="", now=None):
    """Any administrator rejects a pending change (its author: withdraws it)."""
    _require_admin(admin)
    now = now or utcnow()
    with unit_of_work():
        _lock_stamp()
        version = _pending(version_id)
        POLICY_VERSION.move(version, PolicyStatus.REJECTED)
        version.decided_by_id = admin.id
        version.decided_at = now
        version.decision_note = (note or "").strip()[:500]
        record(
            admin,
            REJECTED,
            "policy_version",
            version.id,
            before={"status": PolicyStatus.PENDING},
            after={"status": PolicyStatus.REJECTED, "note": version.decision_note},
        )
        touch_stamp(now)
    store.forget()
    return version


def withdraw(admin, version_id, note="", now=None):
    """Any administrator takes back an approved change that has not taken effect yet: it
    becomes WITHDRAWN and never applies (a year typed wrong would otherwise hold every
    later change until then). Only the latest one: a version after it was built on its
    values (``editing_start``) and would carry them anyway. One administrator is enough,
    even for a money change: what stays in force was itself approved (by a second
    administrator where it moved money), and nothing new applies. A note says why."""
    _require_admin(admin)
    given = now
    note = (note or "").strip()
    with unit_of_work():
        _lock_stamp()
        now = given or utcnow()  # after the lock: it may have waited
        version = _locked(version_id)
        # A change about to apply is no longer taken back: between this check and the
        # commit, other processes would already treat it as in force.
        if not queries.before_its_margin(version, now):
            due = version.status == PolicyStatus.APPROVED and version.effective_from > now
            raise PolicyError({"__all__": MSG_WITHDRAW_DUE if due else MSG_WITHDRAW_IN_FORCE})
        later = db.session.scalar(
            sa.select(PolicyVersion.id)
            .where(
                PolicyVersion.status.in_([PolicyStatus.APPROVED, PolicyStatus.PENDING]),
                PolicyVersion.id != version.id,
                sa.or_(
                    PolicyVersion.effective_from > version.effective_from,
                    sa.and_(
                        PolicyVersion.effective_from == version.effective_from,
                        PolicyVersion.id > version.id,
                    ),
                ),
            )
            .order_by(PolicyVersion.effective_from, PolicyVersion.id)
            .limit(1)
        )
        if later is not None:
            raise PolicyError({"__all__": MSG_WITHDRAW_LATER.format(id=later)})
        minimum = store.in_force(now)[1].note_min_length
        if len(note) < minimum:
            raise PolicyError({"note": MSG_WITHDRAW_NOTE.format(n=minimum)})
        POLICY_VERSION.move(version, PolicyStatus.WITHDRAWN)
        record(
            admin,
            WITHDRAWN,
            "policy_version",
            version.id,
            before={
                "status": PolicyStatus.APPROVED,
                "effective_from": version.effective_from.isoformat(),
            },
            after={"status": PolicyStatus.WITHDRAWN, "note": note[:500]},
        )
        touch_stamp(now)
    store.forget()
    return version
