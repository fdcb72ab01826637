"""Review finding: "Create payment link" clicked twice at once (a double click, or two
admins on one visit page), on PostgreSQL. Each click made a Razorpay link and had it sent
by SMS and e-mail: 2 links (statuses ['EXPIRED', 'PENDING']) and 4 notifications, the
second click abandoning the first link, cancelled at Razorpay, so the SMS the patient
opened first led to a dead link. Now the clicks take the visit's lock one after the
other and the second finds the first link still payable: refused (``LinkPending``), no
second link, nothing sent again."""

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.booking import links, lookup, payment_events, visits
from portal.booking.errors import BookingError
from portal.booking.models import InvoiceCounter
from portal.extensions import db
from portal.payments.models import LINK, Payment
from tests.booking.factories import NOW, at, build_world, start_gateway
from tests.threads import run_together

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    yield gw
    gw.close()


def test_two_clicks_at_once_make_and_send_one_link(pg_app, pg_gateway, clock):
    with pg_app.app_context():
        world = build_world()
        admin = db.session.get(User, world.admin)
        visit_id = visits.add_item(
            admin,
            patient_id=world.patients[0],
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(2, 10),
        ).master_id
        db.session.commit()
        db.session.remove()
    store = pg_gateway.sandbox.store
    sent_before = len(store.notifications)

    def click():
        try:
            payment = links.create_payment_link(db.session.get(User, world.admin), visit_id)
            return ("made", payment.id)
        except links.LinkPending as exc:
            return ("pending", exc.payment.id, exc.message)
        except BookingError as exc:
            return ("refused", exc.message)

    results = run_together(pg_app, click, click)

    assert sorted(r[0] for r in results) == ["made", "pending"], results
    made = next(r for r in results if r[0] == "made")
    pending = next(r for r in results if r[0] == "pending")
    assert pending[1] == made[1]  # the second click points to the first's link
    assert "Resend to the patient" in pending[2]
    with pg_app.app_context():
        rows = db.session.scalars(sa.select(Payment).where(Payment.kind == LINK)).all()
        assert [(p.id, p.status) for p in rows] == [(made[1], "PENDING")]
        assert len(store.links) == 1
        [link] = store.links.values()
        assert link["status"] == "created" and link["id"] == rows[0].razorpay_link_id
    sent = store.notifications[sent_before:]
    assert len(sent) == 2, sent  # one SMS and one e-mail, of the one link


@pytest.mark.parametrize("second_id", ["pay_SAME00001", "pay_OTHER0001"])
def test_two_captures_at_once_issue_one_invoice_number(pg_app, second_id):
    """Two captures of one visit's link at the same moment (a repeated webhook, or the
    link paid twice): one invoice number, the year's counter at 1 (review r6: a guard, it
    held already)."""
    with time_machine.travel(NOW, tick=True):
        gateway = start_gateway(pg_app, deliver_webhooks=False)
        try:
            with pg_app.app_context():
                world = build_world()
                admin = db.session.get(User, world.admin)
                item = visits.add_item(
                    admin,
                    patient_id=world.patients[0],
                    service_id=world.consult,
                    provider_ids=[world.doctors[0]],
                    clinic_id=world.clinic,
                    start_at=at(4, 10),
                )
                visit_id = item.master_id
                link = links.create_payment_link(admin, visit_id)
                link_id, amount = link.id, link.amount
                db.session.remove()

            def capture(pid):
                def body():
                    payment_events.capture(
                        db.session.get(Payment, link_id),
                        razorpay_payment_id=pid,
                        amount=amount,
                        method="upi",
                    )
                    return "ok"

                return body

            results = run_together(pg_app, capture("pay_SAME00001"), capture(second_id))
            with pg_app.app_context():
                visit = lookup.get_visit(visit_id)
                counters = db.session.scalars(sa.select(InvoiceCounter)).all()
                numbers = [(c.financial_year, c.last_number) for c in counters]
                invoice = visit.invoice_no
                db.session.remove()
            assert invoice == "CP/26-27/000001", (results, invoice)
            assert numbers == [("2026-27", 1)], (results, numbers)
        finally:
            gateway.close()
