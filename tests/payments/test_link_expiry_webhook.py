"""Razorpay's ``payment_link.expired`` webhook and the expiry sweep lead to one outcome
(POLICY.md, "Payment"; docs/booking.md "Payment links"): while the first start is far
enough ahead, the link is marked EXPIRED, the patient told, and one new link issued and
sent; else the visit lapses. Whichever of the two comes first does it, once.

The webhook used to end the link and expire the visit itself: Razorpay sends it at the
link's expiry, before the sweep's next minute, so a desk visit three days ahead whose
24 h link ran out lapsed, its slot freed, with no new link and no word to the patient."""

from datetime import timedelta

import sqlalchemy as sa

from portal.booking import links, lookup, visits
from portal.extensions import db
from portal.notify.models import MailMessage, Notification
from portal.payments.models import Payment
from tests.booking.factories import at


def _desk_visit(world, users, start):
    admin, patient = users(world.admin), users(world.patients[0])
    item = visits.add_item(
        admin,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )
    first = links.create_payment_link(admin, item.master_id)
    return item.master_id, first.id, patient.id


def _notice_kinds(user_id):
    return db.session.scalars(
        sa.select(Notification.kind)
        .where(Notification.user_id == user_id, Notification.kind.like("payment.link%"))
        .order_by(Notification.id)
    ).all()


def _renewed_once(gateway, visit_id, first_id, patient_id):
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    first = db.session.get(Payment, first_id)
    assert first.status == "EXPIRED"
    assert [a.event for a in first.attempts].count("link.expired") == 1
    assert visit.status == "PENDING_PAYMENT" and visit.attention == "LINK_EXPIRED"
    assert all(i.status == "SCHEDULED" for i in visit.items)
    links_made = [p for p in visit.payments if p.kind == "LINK"]
    assert [p.status for p in links_made] == ["EXPIRED", "PENDING"]  # one new link
    new = links_made[1]
    assert visit.hold_expires_at == new.expires_at
    assert len(gateway.sandbox.store.links) == 2  # and one at Razorpay
    assert _notice_kinds(patient_id) == ["payment.link_expired", "payment.link_new"]
    mails = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.subject.like("New payment link%"))
    ).all()
    assert len(mails) == 1 and new.link_url in mails[0].text
    return new


def test_link_expired_webhook_before_the_sweep_issues_one_new_link(world, users, gateway, clock):
    visit_id, first_id, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=5))  # past the first link's 24 h
    gateway.sandbox.advance(0)  # Razorpay expires the link: payment_link.expired
    gateway.deliver()  # before the sweep's next run
    new = _renewed_once(gateway, visit_id, first_id, patient_id)
    assert links.expire_payment_links() == 0  # the sweep then finds nothing to do
    gateway.deliver()
    assert _renewed_once(gateway, visit_id, first_id, patient_id).id == new.id


def test_link_expired_webhook_after_the_sweep_changes_nothing(world, users, gateway, clock):
    visit_id, first_id, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=5))
    gateway.sandbox.advance(0)  # the webhook is sent, but arrives after the sweep ran
    assert links.expire_payment_links() == 1
    new = _renewed_once(gateway, visit_id, first_id, patient_id)
    gateway.deliver()  # payment_link.expired for the first link (and the job queued again)
    assert _renewed_once(gateway, visit_id, first_id, patient_id).id == new.id
    links.expired_at_gateway(db.session.get(Payment, first_id))  # a repeated delivery
    assert _renewed_once(gateway, visit_id, first_id, patient_id).id == new.id


def test_link_expired_webhook_trusts_the_gateway_clock(world, users, gateway, clock):
    """Razorpay's clock a few seconds ahead of ours: its word ends the link, and the
    sweep does not handle it a second time later."""
    visit_id, first_id, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=-3))  # ours: 3 s before the expiry
    gateway.sandbox.advance(8)  # Razorpay's: 5 s after it
    gateway.deliver()
    new = _renewed_once(gateway, visit_id, first_id, patient_id)
    clock.shift(timedelta(minutes=1))
    assert links.expire_payment_links() == 0
    assert _renewed_once(gateway, visit_id, first_id, patient_id).id == new.id


def test_link_expired_webhook_too_close_to_the_start_lapses_the_visit(world, users, gateway, clock):
    visit_id, first_id, patient_id = _desk_visit(world, users, at(0, 13))  # link: start − 2 h
    clock.shift(timedelta(hours=3, seconds=5))
    gateway.sandbox.advance(0)
    gateway.deliver()
    assert links.expire_payment_links() == 0
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LINK_EXPIRED"
    assert [p.status for p in visit.payments] == ["EXPIRED"]
    assert not any(c.live for c in visit.items[0].claims)
    assert _notice_kinds(patient_id) == ["payment.link_expired"]  # "...has lapsed"
