"""A link failed five times (review finding): the link row is FAILED and the visit
expires (its slot freed), but the link was not cancelled at Razorpay:
``payment_events.failed`` moved the row to FAILED itself, so ``release_money_holds`` saw
no pending link to cancel, and the SMS link still took money for a visit that no longer
held its slot. The row's failure now queues ``payments.cancel_link`` itself."""

from portal.booking import lookup, visits
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance
from portal.payments.models import Payment
from tests.booking.factories import at
from tests.payments.test_link_paid_webhooks_lost import _desk_visit


def test_a_link_failed_five_times_is_cancelled_at_razorpay_when_the_visit_lapses(
    world, users, gateway, clock
):
    """Five declined tries on a link: the link row is FAILED and the visit expires (its
    slot freed). The link is not cancelled at Razorpay (``payment_events.failed`` moves the
    row to FAILED itself, so ``release_money_holds`` no longer sees a pending link), so the
    SMS link still takes money for a visit that no longer holds its slot."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    for _ in range(5):
        gateway.pay_link(link.link_url, outcome="failure")
    gateway.deliver()
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "EXPIRED"
    assert db.session.get(Payment, link.id).status == "FAILED"
    # The slot, freed, is booked by another patient; the first one's SMS link still pays.
    other = users(world.patients[1])
    visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(3, 10),
    )
    link_status = gateway.sandbox.store.links[link.razorpay_link_id]["status"]
    if link_status == "created":
        gateway.pay_link(link.link_url)
        gateway.deliver()
    db.session.expire_all()
    assert (link_status, balance(chart.patient_wallet(patient_id))) == ("cancelled", 0)
