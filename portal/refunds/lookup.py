"""Reading refunds and cancellations: the admin list, a visit's refunds, an item's
cancellation."""

import sqlalchemy as sa

from portal.extensions import db
from portal.refunds.models import Cancellation, Refund


def list_refunds(status=None, page=1, per_page=30):
    query = sa.select(Refund).order_by(Refund.created_at.desc(), Refund.id.desc())
    if status:
        query = query.where(Refund.status == status)
    return db.paginate(query, page=max(int(page or 1), 1), per_page=per_page, error_out=False)


def refunds_for_visit(visit_id):
    return db.session.scalars(
        sa.select(Refund).where(Refund.visit_id == visit_id).order_by(Refund.id)
    ).all()


def cancellation_for(item_id):
    return db.session.scalar(sa.select(Cancellation).where(Cancellation.booking_id == item_id))


def refunds_made(booking_id, approval_id=None):
    """The refunds a booking's cancellation (``approval_id`` None: its refund and any
    reschedule fees given back) or an approved further refund made, as first written:
    not the retries or wallet replacements of a failed one (those are told when they
    happen). Oldest first."""
    query = sa.select(Refund).where(
        Refund.booking_id == booking_id,
        Refund.cancellation_id.is_not(None),
        Refund.retry_of_id.is_(None),
    )
    if approval_id is None:
        query = query.where(Refund.approval_id.is_(None))
    else:
        query = query.where(Refund.approval_id == approval_id)
    return db.session.scalars(query.order_by(Refund.id)).all()
