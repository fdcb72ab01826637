"""What the account pages list (read only): users for the admin, patients to book for,
a patient's dependents."""

from functools import cache

import sqlalchemy as sa

from portal.accounts.models import PATIENT, AdminAccessRequest, Dependent, User, email_key
from portal.audit.models import AuditEntry
from portal.db import column_rows, contains_text, db
from portal.domain.ids import is_digits, parse_id
from portal.domain.states import ApprovalStatus
from portal.pagination import Order, keyset_page

USER_ORDER = (Order(User.name), Order(User.id))


def _matching(q):
    return sa.or_(
        contains_text(User.name, q),
        contains_text(User.email, q),
        User.phone.contains(q.replace(" ", ""), autoescape=True),
    )


def admin_requests_waiting():
    """(how many administrator invitations and reactivations wait for a second
    administrator, the ids of the accounts whose reactivation waits): the Users page says
    so where it would offer the action."""
    rows = db.session.scalars(
        sa.select(AdminAccessRequest.user_id).where(
            AdminAccessRequest.status == ApprovalStatus.PENDING
        )
    ).all()
    return len(rows), {user_id for user_id in rows if user_id is not None}


def users_page(*, q="", role="", after=None, before=None, per_page=20):
    """Users by name (then id), filtered by a search (name, email, phone) and a role;
    ``Page.total`` counts every match."""
    query = sa.select(User)
    if q:
        query = query.where(_matching(q))
    if role:
        query = query.where(User.role == role)
    return keyset_page(query, USER_ORDER, after=after, before=before, per_page=per_page, count=True)


def find_patients(q, limit=20):
    """Patients by name, email or mobile (digits match the stored +91 form)."""
    if not q:
        return []
    digits = "".join(c for c in q if c.isdigit())
    clauses = [contains_text(User.name, q), contains_text(User.email, q)]
    if len(digits) >= 4:
        clauses.append(User.phone.contains(digits[-10:], autoescape=True))
    return db.session.scalars(
        sa.select(User)
        .where(User.role == PATIENT, sa.or_(*clauses))
        .order_by(User.name, User.id)
        .limit(limit)
    ).all()


def user_by_email_or_id(text):
    """The user an admin typed (an email, or a user id), or None."""
    text = (text or "").strip()
    if not text:
        return None
    if is_digits(text):
        user_id = parse_id(text)
        return db.session.get(User, user_id) if user_id else None
    # As typed, else any compatibility form of it (``email_key``: a full-width letter).
    exact = sa.func.lower(User.email) == text.lower()
    return db.session.scalar(
        sa.select(User)
        .where(sa.or_(exact, User.email_key == email_key(text)))
        .order_by(sa.case((exact, 0), else_=1), User.id)
        .limit(1)
    )


@cache
def _dependents_of():
    return (
        sa.select(
            Dependent.id,
            Dependent.name,
            Dependent.relationship_.label("relationship_"),  # the column is "relationship"
            Dependent.date_of_birth,
        )
        .where(Dependent.guardian_id == sa.bindparam("guardian_id"))
        .order_by(Dependent.name, Dependent.id)
    )


def dependents_of(guardian_id):
    """A patient's dependents by name, as rows (``id``, ``name``, ``relationship_``,
    ``date_of_birth``): the family list, and the choice of whom a visit is for. Read as
    columns, built once: loading the account's ``dependents`` relation cost a tenth of the
    book page's CPU and more of the family page's."""
    return column_rows(_dependents_of(), {"guardian_id": guardian_id})


def dependent_ids_ever(guardian_id):
    """The ids of every dependent the guardian has had, on the family list now or removed
    (``dependents.remove_dependent`` deletes the row; the audit rows about it stay). A
    removed one is known by its ``dependent.*`` audit rows: those whose data names the
    guardian (``guardian_id``, which every such row records now), or whose actor is the
    guardian (how the rows written before it are found: a patient acts only on their own
    dependents, ``dependents._owned_dependent``). An administrator's row from before
    (adding a child at the desk) is found through the dependent's id, by the guardian's
    own row that removed it: no page lets an administrator remove one."""
    audit = AuditEntry.__table__
    theirs = sa.or_(
        audit.c.actor_id == guardian_id,
        audit.c.after["guardian_id"].as_integer() == guardian_id,
        audit.c.before["guardian_id"].as_integer() == guardian_id,
    )
    current = db.session.scalars(
        sa.select(Dependent.id).where(Dependent.guardian_id == guardian_id)
    ).all()
    recorded = db.session.scalars(
        sa.select(audit.c.object_id).where(audit.c.object_type == "dependent", theirs).distinct()
    ).all()
    return sorted(set(current) | {int(i) for i in recorded if i and i.isdigit()})
