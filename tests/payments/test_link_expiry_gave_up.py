"""A link expiry job that fails on every attempt for a reason no retry changes (review
finding: "the link expiry job whose attempts are exhausted leaves the link (and its visit)
PENDING"). Razorpay away is decided on the last attempt (``link_checks``'s wait, the
renewal lapsing: test_link_paid_webhooks_lost); an error in renewing, or in the check,
was not: every attempt rolled back, the outbox item gave up, and its dedupe key kept the
sweep and the webhook from queueing the link again. The link stayed PENDING, its visit
pending payment with its slot held (the hold sweep leaves a visit with a pending link to
the link sweep), and no admin was told. The give-up now ends the link and lapses the
visit, once, flagged for an admin with a HIGH alert."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.audit.models import AuditEntry
from portal.booking import link_checks, links, lookup, visits
from portal.extensions import db
from portal.ledger.check import verify_ledger
from portal.notify.models import Notification
from portal.notify.ops import retry_outbox_item
from portal.outbox import OutboxItem
from portal.payments.models import Payment
from tests.booking.factories import at
from tests.payments.test_link_paid_webhooks_lost import (
    _desk_visit,
    _link_job,
    _notice_kinds,
)

FLAG = "LINK_EXPIRY_FAILED"  # the visit's attention flag


def _renewal_breaks(monkeypatch):
    """Renewing raises an error no retry changes (a bug, bad data): not the gateway."""
    made = links.create_payment_link

    def create(admin, visit_id, *, renewing=False):
        if renewing:
            raise RuntimeError("renewal broke")
        return made(admin, visit_id, renewing=renewing)

    monkeypatch.setattr(links, "create_payment_link", create)


def _check_breaks(monkeypatch):
    def settle(payment):
        raise RuntimeError("check broke")

    monkeypatch.setattr(link_checks, "settle", settle)


def _until_it_gives_up(clock, job_id):
    """The outbox's attempts, the clock moved on by each delay, until the last failed."""
    item = db.session.get(OutboxItem, job_id)
    while item.done_at is None and item.attempts < jobs.MAX_ATTEMPTS:
        clock.shift(timedelta(seconds=jobs.retry_delay(item.attempts)))
        jobs.run_outbox_item(job_id, reraise=False)
        db.session.expire_all()
        item = db.session.get(OutboxItem, job_id)
    return item


def _book_the_same_time(world, users):
    other = users(world.patients[1])
    return visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(3, 10),
    )


def _expires(visit_id):
    return db.session.scalar(
        sa.select(sa.func.count(AuditEntry.id)).where(
            AuditEntry.action == "visit.expire", AuditEntry.object_id == str(visit_id)
        )
    )


@pytest.mark.parametrize("breaks", [_renewal_breaks, _check_breaks])
def test_a_link_expiry_that_always_fails_ends_the_link_when_the_outbox_gives_up(
    world, users, gateway, clock, monkeypatch, breaks
):
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    breaks(monkeypatch)
    clock.shift(timedelta(hours=24, seconds=5))
    assert links.expire_payment_links() == 1
    item = _until_it_gives_up(clock, _link_job().id)
    assert item.done_at is None and item.attempts == jobs.MAX_ATTEMPTS  # it gave up

    visit = lookup.get_visit(visit_id)
    assert db.session.get(Payment, link.id).status == "EXPIRED"
    assert visit.status == "EXPIRED" and all(i.status == "EXPIRED" for i in visit.items)
    assert visit.attention == FLAG
    assert _expires(visit_id) == 1
    cancel = db.session.scalars(
        sa.select(OutboxItem.payload).where(OutboxItem.job == link_checks.CANCEL_LINK)
    ).all()
    assert cancel == [{"payment_id": link.id}]  # nothing more to be paid on it
    assert "payment.link_expired" in _notice_kinds(patient_id)
    alerts = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.JOB_FAILED")
    ).all()
    assert alerts and {a.priority for a in alerts} == {"HIGH"}
    assert all(visit.number in a.title for a in alerts)
    _book_the_same_time(world, users)  # the slot is free again

    # An admin's "Retry now" of the item that gave up (the cause fixed or not) changes
    # nothing more: the visit lapsed once, the patient told once.
    notices = len(_notice_kinds(patient_id))
    monkeypatch.undo()
    outcome, _ = retry_outbox_item(users(world.admin), item.id)
    db.session.expire_all()
    assert db.session.get(OutboxItem, item.id).done_at is not None
    assert _expires(visit_id) == 1 and len(_notice_kinds(patient_id)) == notices
    assert lookup.get_visit(visit_id).attention == FLAG
    assert verify_ledger() == []
