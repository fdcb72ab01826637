"""The approvals queue (read only): every source's requests as one keyset-paged list,
waiting ones oldest first, decided ones latest decision first; each row carries its
object and its description for the page."""

from dataclasses import dataclass, replace

import sqlalchemy as sa

from portal.accounts.models import User
from portal.approvals.sources import BY_KIND, SOURCES, Described
from portal.db import db
from portal.domain.states import ApprovalStatus, PolicyStatus
from portal.pagination import Order, keyset_page


@dataclass(frozen=True)
class ApprovalRow:
    kind: str
    label: str
    id: int
    created_at: object
    maker: User | None
    amount: int | None  # paise, signed as the source stores it (a debit is negative); None:
    # the source moves no amount of its own (a policy change)
    reason: str
    status: str
    pending: bool
    decided_by: User | None
    decided_at: object
    decision_note: str | None
    obj: object
    described: Described
    maker_withdraws: bool = False  # its source's: the maker may withdraw it while it waits
    withdrawn: bool = False  # its maker withdrew it (its source says: ``withdrawn``)

    @property
    def decision(self):
        """What the second administrator decided (every source names a refusal REJECTED),
        and a policy change's withdrawal after it (it never applied)."""
        if self.pending:
            return None
        if self.status == PolicyStatus.WITHDRAWN:
            return "Approved (withdrawn before it applied)"
        if self.withdrawn:
            return "Withdrawn"  # rejected by the one who asked
        return "Rejected" if self.status == ApprovalStatus.REJECTED else "Approved"


def _union(sources):
    return sa.union_all(*(s.select() for s in sources)).subquery("approvals")


def _orders(u, pending):
    if pending:
        return (
            Order(u.c.created_at, key=lambda r: r.created_at),
            Order(u.c.kind, key=lambda r: r.kind),
            Order(u.c.id, key=lambda r: r.id),
        )
    return (
        Order(u.c.decided_at, descending=True, key=lambda r: r.decided_at),
        Order(u.c.kind, descending=True, key=lambda r: r.kind),
        Order(u.c.id, descending=True, key=lambda r: r.id),
    )


def approvals_page(*, pending=True, kind=None, after=None, before=None, per_page=30):
    """One page of the queue: waiting requests, or decided ones (``pending=False``);
    ``kind`` narrows it to one source."""
    sources = [BY_KIND[kind]] if kind in BY_KIND else list(SOURCES)
    u = _union(sources)
    query = sa.select(u).where(u.c.pending.is_(pending))
    if not pending:
        query = query.where(u.c.decided_at.is_not(None))
    page = keyset_page(
        query, _orders(u, pending), after=after, before=before, per_page=per_page, scalars=False
    )
    return replace(page, items=_hydrate(page.items))


def _hydrate(rows):
    by_kind = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row.id)
    objects = {kind: BY_KIND[kind].load(ids) for kind, ids in by_kind.items()}
    user_ids = {r.maker_id for r in rows} | {r.decided_by_id for r in rows if r.decided_by_id}
    users = {}
    if user_ids:
        users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(user_ids)))}
    out = []
    for row in rows:
        source = BY_KIND[row.kind]
        obj = objects[row.kind].get(row.id)
        if obj is None:  # removed between the two reads
            continue
        out.append(
            ApprovalRow(
                kind=row.kind,
                label=source.label,
                id=row.id,
                created_at=row.created_at,
                maker=users.get(row.maker_id),
                amount=int(row.amount) if source.shows_amount else None,
                reason=row.reason,
                status=row.status,
                pending=bool(row.pending),
                decided_by=users.get(row.decided_by_id),
                decided_at=row.decided_at,
                decision_note=row.decision_note,
                obj=obj,
                described=source.describe(obj),
                maker_withdraws=source.maker_withdraws,
                withdrawn=source.withdrawn(obj),
            )
        )
    return out


def pending_count():
    u = _union(SOURCES)
    return db.session.scalar(sa.select(sa.func.count()).select_from(u).where(u.c.pending.is_(True)))
