"""What the policy page shows: the version in force, what is scheduled or waiting, the
history (keyset pages), and the pending changes an approvals queue can list."""

from datetime import timedelta

import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.domain.policy_data import changed_paths, to_data
from portal.domain.states import ApprovalStatus
from portal.extensions import db
from portal.pagination import Order, keyset_page
from portal.policies import store
from portal.policies.models import PolicyVersion

HISTORY_ORDER = (
    Order(PolicyVersion.effective_from, descending=True),
    Order(PolicyVersion.id, descending=True),
)


# A change due within this long is no longer withdrawn: between the check and the commit,
# other processes would already apply it (service.withdraw).
WITHDRAW_MARGIN = timedelta(minutes=1)


def history_page(*, after=None, before=None, per_page=20):
    """Every version (approved, pending, rejected), the latest effective first."""
    return keyset_page(
        sa.select(PolicyVersion), HISTORY_ORDER, after=after, before=before, per_page=per_page
    )


PENDING_ORDER = (Order(PolicyVersion.created_at), Order(PolicyVersion.id))


def pending_page(*, after=None, before=None, per_page=20):
    """Changes awaiting a second administrator, oldest first."""
    query = sa.select(PolicyVersion).where(PolicyVersion.status == ApprovalStatus.PENDING)
    return keyset_page(query, PENDING_ORDER, after=after, before=before, per_page=per_page)


def changes(version):
    """{path: (before, after)} of what ``version`` changes from the approved version in
    force just before it takes effect."""
    return changed_paths(to_data(store.policy_version_before(version)), version.values)


def changes_of(versions):
    """``{version id: changes(version)}`` for a page of versions, the versions before them
    read in one statement (the approvals queue: it read them one query a row, twice)."""
    before = store.policy_versions_before(versions)
    return {v.id: changed_paths(to_data(before[v.id]), v.values) for v in versions}


def version(version_id):
    return db.session.get(PolicyVersion, version_id)


def scheduled(now):
    """Approved versions that take effect later, soonest first."""
    return db.session.scalars(
        sa.select(PolicyVersion)
        .where(
            PolicyVersion.status == ApprovalStatus.APPROVED,
            PolicyVersion.effective_from > now,
        )
        .order_by(PolicyVersion.effective_from, PolicyVersion.id)
    ).all()


def withdrawable(now):
    """The id of the approved change that may be withdrawn now, or None: the latest one
    scheduled, when nothing waits after it (``service.withdraw``'s rule, for the buttons)."""
    latest = db.session.execute(
        sa.select(PolicyVersion.id, PolicyVersion.status, PolicyVersion.effective_from)
        .where(PolicyVersion.status.in_([ApprovalStatus.APPROVED, ApprovalStatus.PENDING]))
        .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.id.desc())
        .limit(1)
    ).first()
    if latest and before_its_margin(latest, now):
        return latest.id
    return None


def before_its_margin(version, now):
    """An approved change still far enough ahead to be withdrawn (``WITHDRAW_MARGIN``:
    a change about to apply is already treated as in force elsewhere)."""
    return (
        version.status == ApprovalStatus.APPROVED and version.effective_from > now + WITHDRAW_MARGIN
    )


def withdrawal(version):
    """The audit entry of a withdrawn version's withdrawal (who, when, why), or None."""
    if version.status != "WITHDRAWN":
        return None
    return db.session.scalar(
        sa.select(AuditEntry)
        .where(
            AuditEntry.action == "policy.withdrawn",
            AuditEntry.object_type == "policy_version",
            AuditEntry.object_id == str(version.id),
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )


def pending_changes():
    """Policy changes awaiting a second administrator, oldest first, as plain rows an
    approvals queue can show next to its own: id, what it is, who asked, when, and where
    to decide it (the policy page's approve/reject)."""
    rows = db.session.scalars(
        sa.select(PolicyVersion)
        .where(PolicyVersion.status == ApprovalStatus.PENDING)
        .order_by(PolicyVersion.created_at, PolicyVersion.id)
    ).all()
    return [
        {
            "kind": "policy",
            "id": v.id,
            "summary": f"Policy version {v.id}: {v.reason}",
            "requested_by_id": v.created_by_id,
            "requested_by": v.created_by.name if v.created_by else None,
            "created_at": v.created_at,
            "effective_from": v.effective_from,
            "url_endpoint": ("admin.policy_version", {"version_id": v.id}),
        }
        for v in rows
    ]


def pending_count():
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(PolicyVersion)
        .where(PolicyVersion.status == ApprovalStatus.PENDING)
    )
