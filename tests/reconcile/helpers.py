"""Helpers of the reconciliation tests: visits paid through the real services, discrepancies
made only through the sandbox's faults, and a run over the test day."""

from datetime import timedelta

import sqlalchemy as sa

from portal.accounts.models import ADMIN, User
from portal.booking import links, lookup, visits
from portal.extensions import db
from portal.payments.models import Payment
from portal.policies import service as policy_service
from portal.reconcile import run as recon
from portal.reconcile.models import ReconCase
from portal.reconcile.window import day_window
from tests.booking.factories import NOW, at, held_consult, quoted_checkout
from tests.refunds.helpers import book_and_pay

LOST_CAPTURE = "payment.authorized,payment.captured,order.paid"
LOST_LINK = LOST_CAPTURE + ",payment_link.paid"


def link_paid_only_at_gateway(world, users, gateway, *, notes_on_payment=True):
    """An admin sends a link, the patient pays it, every webhook is lost. Returns (visit
    id, our link's row id, the gateway payment id). ``notes_on_payment=False``: the
    gateway's payment carries no notes, only its order does (the link's), as at Razorpay
    (its sample ``payment_link.paid``: the payment's notes empty, the order's the link's)."""
    patient = users(world.patients[0])
    item = visits.add_item(
        admin(world),
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(3, 10),
    )
    link = links.create_payment_link(admin(world), item.master_id)
    gateway.sandbox.set_faults(drop_events=LOST_LINK)
    assert gateway.pay_link(link.link_url).status_code < 400
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")
    store = gateway.sandbox.store
    order_id = store.links[link.razorpay_link_id]["order_id"]
    [paid] = [p for p in store.payments.values() if p["order_id"] == order_id]
    assert paid["status"] == "captured"
    if not notes_on_payment:
        gateway.sandbox.set_faults(alter={paid["id"]: {"notes": {}}})
    db.session.expire_all()
    visit = lookup.get_visit(item.master_id)
    assert visit.status == "PENDING_PAYMENT" and visit.attention is None
    row = db.session.get(Payment, link.id)
    assert (row.status, row.razorpay_payment_id, row.razorpay_order_id) == ("PENDING", None, None)
    return item.master_id, link.id, paid["id"]


def admin(world):
    return db.session.get(User, world.admin)


def longer_notes(world, length):
    """The policy's shortest audit note raised to ``length`` (a control: a second
    administrator approves it)."""
    version = policy_service.propose(
        admin(world), {"note_min_length": length}, reason="Longer notes for the auditors"
    )
    checker = User(email="note-checker@example.com", name="Checker", role=ADMIN, phone=None)
    db.session.add(checker)
    db.session.commit()
    policy_service.approve(checker, version.id)


def paid(world, users, gateway, day=4, hour=10, patient=0):
    """A visit booked and paid normally (webhooks and the callback arrive)."""
    return book_and_pay(
        world,
        users(world.patients[patient]),
        gateway,
        [(world.consult, [world.doctors[0]], at(day, hour))],
    )


def paid_only_at_gateway(world, users, gateway, day=4, hour=11):
    """The patient pays, but every webhook is dropped and the checkout callback is lost:
    the payment is captured only at the gateway. Returns (visit id, gateway payment id)."""
    patient = users(world.patients[1])
    item = held_consult(world, day, hour, patient=1, doctor=1)
    result = quoted_checkout(patient, item.master_id, 0, callback_url="http://portal.test/cb")
    gateway.sandbox.set_faults(drop_events=LOST_CAPTURE)
    params = gateway.pay(result.payment.razorpay_order_id)  # the callback is never called
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")
    db.session.expire_all()
    assert lookup.get_visit(item.master_id).status != "CONFIRMED"
    return item.master_id, params["razorpay_payment_id"]


def payment_id(visit):
    [p] = [p for p in visit.payments if p.razorpay_payment_id]
    return p.razorpay_payment_id


def gateway_time_off(gateway, visit, seconds):
    """The fault "timestamps beyond the tolerance": the gateway says the visit's payment
    was created ``seconds`` after our capture of it (a payment's creation comes before its
    capture, by up to ``matching.CAPTURE_WINDOW``: negative, and within that, is no fault).
    Returns the gateway payment's id."""
    [p] = [p for p in visit.payments if p.razorpay_payment_id]
    captured = int(p.paid_at.timestamp())
    gateway.sandbox.set_faults(alter={p.razorpay_payment_id: {"created_at": captured + seconds}})
    return p.razorpay_payment_id


def later(clock, hours=2):
    """Past the grace a final gateway record gets before ours must have caught up."""
    clock.shift(timedelta(hours=hours))


def run_day(world, day=None, source=None):
    day = day or NOW.date()
    start, end = day_window(day, day)
    run = recon.start_run(start, end, trigger=recon.ADMIN, actor=admin(world))
    return recon.execute(run.id, source=source)


def cases(**filters):
    query = sa.select(ReconCase).order_by(ReconCase.id)
    for name, value in filters.items():
        query = query.where(getattr(ReconCase, name) == value)
    db.session.expire_all()
    return db.session.scalars(query).all()


def case_for(reference, kind=None):
    """The one case for ``reference`` (of ``kind`` when given: a payment also has a
    settlement case when it went unsettled); None for a kind it has no case of."""
    if kind is not None:
        found = cases(reference=reference, kind=kind)
        return found[0] if found else None
    [case] = cases(reference=reference)
    return case
