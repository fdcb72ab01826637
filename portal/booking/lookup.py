"""Reading visits: one by id, a payment's timeline, the filtered and paginated list, and
whether a visit needs an admin's attention (flagged, or awaiting payment close to its
start)."""

import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import attention
from portal.booking.errors import NotFound
from portal.booking.models import MasterBooking
from portal.config import policy
from portal.db import contains_text, utcnow
from portal.extensions import db


def get_visit(visit_id):
    visit = db.session.get(MasterBooking, visit_id)
    if visit is None:
        raise NotFound("visit")
    return visit


def attempts(payment):
    return list(payment.attempts)


def list_visits(
    patient_id=None, status=None, needs_attention=None, search=None, page=1, per_page=20
):
    """Newest first. ``status``: one status or a list; ``search``: visit number, patient name
    or email (case-insensitive). Returns a Flask-SQLAlchemy ``Pagination``."""
    query = sa.select(MasterBooking).order_by(
        MasterBooking.created_at.desc(), MasterBooking.id.desc()
    )
    if patient_id is not None:
        query = query.where(MasterBooking.patient_id == patient_id)
    if status:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(MasterBooking.status.in_(statuses))
    clause = attention.attention_clause(utcnow(), policy().attention_window)
    if needs_attention is True:
        query = query.where(clause)
    elif needs_attention is False:
        query = query.where(sa.not_(clause))
    text = " ".join((search or "").split()).lower()
    if text:
        query = query.where(
            sa.or_(
                contains_text(MasterBooking.number, text),
                MasterBooking.patient_id.in_(
                    sa.select(User.id).where(
                        sa.or_(contains_text(User.name, text), contains_text(User.email, text))
                    )
                ),
            )
        )
    return db.paginate(query, page=max(int(page or 1), 1), per_page=per_page, error_out=False)


def visit_needs_attention(visit, now=None):
    """Any rule of ``portal.booking.attention`` holds for the visit."""
    return bool(attention.reasons(visit, now=now))
