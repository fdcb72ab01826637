"""The audit-log report: every entry with its actor, object, before and after, filtered by
actor, action and object as the audit viewer filters them, and a date range; "approval
steps only" keeps the maker-checker trail (requests, approvals, refusals, withdrawals):
the steps each approval source names (``approvals.sources.AUDIT_STEPS``)."""

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal.accounts.models import User
from portal.accounts.queries import user_by_email_or_id
from portal.approvals.sources import AUDIT_STEPS
from portal.audit.models import AuditEntry
from portal.audit.queries import MSG_NO_ACTOR, AuditFilter, change_text
from portal.exports import ExportError, ExportSpec, number, register, text, when
from portal.pagination import Order, keyset_page

from . import periods

ORDER = (
    Order(AuditEntry.at, descending=True, key=lambda r: r.AuditEntry.at),
    Order(AuditEntry.id, descending=True, key=lambda r: r.AuditEntry.id),
)


def parse(params):
    """Filter values from the query string: ``actor`` (a user's email or id),
    ``action`` (a name, or a prefix ending in "." such as ``refund.``),
    ``object_type`` / ``object_id``, ``date_from`` / ``date_to``, ``approvals``. The audit
    viewer's (/admin/audit) names and meanings, so its CSV link passes its filters on as
    they are and the file has the rows the viewer shows. The viewer parses its query
    string here too (``audit_filter``): one reading of the same text for both, so a value
    one accepts the other accepts alike (review finding: the viewer's date field read
    2026-3-2 and its CSV refused it; the viewer matched "login " as typed and the CSV
    trimmed it, so the file had rows the page did not show)."""
    start = periods.parse_day(params.get("date_from"), "date_from")
    end = periods.parse_day(params.get("date_to"), "date_to")
    # The viewer's rule and words (at most one year: 1 April – 31 March, not – 1 April), so
    # its CSV link is refused or answered as the viewer is.
    problems = AuditFilter(date_from=start, date_to=end).problems()
    if problems:
        field, message = next(iter(problems.items()))
        raise ExportError(message, field=field)
    actor = periods.clean_text(params.get("actor"), "actor")
    return {
        "actor": actor,
        "actor_id": _actor_id(actor),
        "action": periods.clean_text(params.get("action"), "action", limit=64),
        "object_type": periods.clean_text(params.get("object_type"), "object_type", limit=64),
        "object_id": periods.clean_text(params.get("object_id"), "object_id", limit=64),
        "start": start,
        "end": end,
        "approvals": (params.get("approvals") or "") in ("1", "on", "y", "true"),
    }


def _actor_id(text):
    """The viewer's rule (an exact email or a user id), refused as the viewer refuses it."""
    if not text:
        return None
    user = user_by_email_or_id(text)
    if user is None:
        raise ExportError(MSG_NO_ACTOR, field="actor")
    return user.id


def audit_filter(f):
    """The viewer's filter (``AuditFilter``) of ``parse``'s values: the viewer's page and
    this report's query both apply it, so they list the same entries."""
    return AuditFilter(
        actor_id=f["actor_id"],
        action=f["action"] or None,
        object_type=f["object_type"] or None,
        object_id=f["object_id"] or None,
        date_from=f["start"],
        date_to=f["end"],
    )


def describe(f):
    parts = [
        ("Actor", f["actor"] or "anyone"),
        ("Action", f["action"] or "any"),
        ("Object", " ".join(filter(None, (f["object_type"], f["object_id"]))) or "any"),
        ("From", f["start"].isoformat() if f["start"] else "the beginning"),
        ("To", f["end"].isoformat() if f["end"] else "today"),
    ]
    if f["approvals"]:
        parts.append(("Only", "approval steps"))
    return parts


def query(f):
    actor = aliased(User)
    q = sa.select(AuditEntry, actor.email.label("actor_email"), actor.name.label("actor_name"))
    q = q.outerjoin(actor, actor.id == AuditEntry.actor_id)
    # Actor, action, object and dates by the viewer's own rule (AuditFilter.apply), so the
    # two cannot drift apart; "approval steps only" is the report's alone.
    q = audit_filter(f).apply(q)
    if f["approvals"]:
        # The steps each approval source names (a guess by words in the names, "approv",
        # "override", "reject", left out a wallet adjustment's and a policy change's request).
        q = q.where(AuditEntry.action.in_(AUDIT_STEPS))
    return q


def page(f, after=None, before=None, per_page=50):
    return keyset_page(
        query(f), ORDER, after=after, before=before, per_page=per_page, scalars=False
    )


def _approval(row):
    after = row.AuditEntry.after or {}
    return after.get("approval_id") if isinstance(after, dict) else None


@register("audit")
def export(params):
    f = parse(params)
    return ExportSpec(
        name="audit-log",
        title="Audit log",
        columns=[
            number("Entry", lambda r: r.AuditEntry.id),
            when("At", lambda r: r.AuditEntry.at),
            text("Actor", lambda r: r.actor_name or "system"),
            text("Actor email", lambda r: r.actor_email),
            text("Action", lambda r: r.AuditEntry.action),
            text("Object", lambda r: r.AuditEntry.object_type),
            text("Object id", lambda r: r.AuditEntry.object_id),
            text("Approval", _approval),
            text("Before", lambda r: change_text(r.AuditEntry.before)),
            text("After", lambda r: change_text(r.AuditEntry.after)),
            text("IP", lambda r: r.AuditEntry.ip),
        ],
        query=query(f).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()),
        filters=describe(f),
    )
