"""The audit log viewer (read only): entries filtered by actor, action, object and a
range of clinic dates, newest first, a keyset page at a time. :class:`AuditFilter` is
plain data so the CSV export can apply the same filters (``AuditFilter.apply``).
``change_text`` is how an entry's Before/After reads in the CSV, ``facts_text`` on the pages
(money in ₹)."""

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.audit.models import AuditEntry
from portal.db import db
from portal.domain.rates import format_inr
from portal.domain.timezone import CLINIC_TZ
from portal.pagination import Order, keyset_page

ORDER = (Order(AuditEntry.at, descending=True), Order(AuditEntry.id, descending=True))
MSG_BACKWARDS = "The end date is before the start date."
MSG_TOO_LONG = "Choose a range of at most one year."
MSG_NO_ACTOR = "No user has that email or id."


def change_text(value):
    """An entry's Before or After as JSON text, written as read (not ``\\uXXXX`` escapes):
    a reason or a name in Hindi stays readable on the page and in the UTF-8 CSV alike.
    The templates' ``json_text`` too (the jobs page's payloads)."""
    return (
        "" if value is None else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    )


# The facts that are money wherever the log records them (integer paise): a payout's
# snapshot, a payment's or refund's amount, a checkout's wallet and gateway parts, a
# settlement's fees and tax, a wallet's balance, an override and what it replaced, a
# booked item's total, a wallet adjustment's 24-hour window.
MONEY_FACTS = frozenset(
    {
        "amount", "fee", "fees", "tax", "gross", "tds", "net", "payable", "balance",
        "total_gross", "discount", "wallet", "gateway", "penalty", "refund", "override",
        "calculated", "extra", "adjusted", "total", "window_total",
    }
)  # fmt: skip


def facts_text(facts):
    """An entry's Before or After as people read it on a page: "gross: ₹6,650.00; net: …"
    (the audit pages printed "gross": 665000, the payout's history had its own rule).
    Text as written (Hindi as Hindi), anything else as ``change_text``'s JSON. The CSV
    keeps ``change_text``: the value as recorded, in paise."""
    if not isinstance(facts, dict):
        return change_text(facts)
    return "; ".join(f"{key}: {_fact(key, value)}" for key, value in sorted(facts.items()))


def _fact(key, value):
    if key in MONEY_FACTS and isinstance(value, int) and not isinstance(value, bool):
        return format_inr(value, always_show_paise=True)
    return value if isinstance(value, str) else change_text(value)


@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    action: str | None = None  # exact, or every action under a prefix ending in "."
    object_type: str | None = None
    object_id: str | None = None
    date_from: date | None = None  # clinic dates, both included
    date_to: date | None = None

    def problems(self):
        """``{field: message}`` for a range the viewer refuses (pure)."""
        if self.date_from and self.date_to:
            if self.date_to < self.date_from:
                return {"date_to": MSG_BACKWARDS}
            if self.date_to >= year_after(self.date_from):
                return {"date_to": MSG_TOO_LONG}
        return {}

    def apply(self, query):
        if self.actor_id is not None:
            query = query.where(AuditEntry.actor_id == self.actor_id)
        if self.action:
            if self.action.endswith("."):
                query = query.where(AuditEntry.action.startswith(self.action, autoescape=True))
            else:
                query = query.where(AuditEntry.action == self.action)
        if self.object_type:
            query = query.where(AuditEntry.object_type == self.object_type)
        if self.object_id:
            query = query.where(AuditEntry.object_id == str(self.object_id))
        if self.date_from:
            query = query.where(AuditEntry.at >= clinic_midnight(self.date_from))
        if self.date_to:
            query = query.where(AuditEntry.at < clinic_midnight(self.date_to + timedelta(days=1)))
        return query

    @property
    def active(self):
        return any(v not in (None, "") for v in vars(self).values())


def year_after(day):
    """The same date a year later (29 February → 1 March): a range may end the day before
    it, so 1 April – 31 March is one year and 1 April – 1 April is more."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def clinic_midnight(day):
    """The instant a clinic date starts (an aware datetime)."""
    return datetime.combine(day, time(0), tzinfo=CLINIC_TZ)


def entries_page(filters=AuditFilter(), *, after=None, before=None, per_page=50):
    return keyset_page(
        filters.apply(sa.select(AuditEntry)),
        ORDER,
        after=after,
        before=before,
        per_page=per_page,
        options=(joinedload(AuditEntry.actor),),
    )


def actions():
    """Every action the log holds, for the filter's choices (an index scan)."""
    return db.session.scalars(
        sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)
    ).all()


def object_types():
    return db.session.scalars(
        sa.select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type)
    ).all()
