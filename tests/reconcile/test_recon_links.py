"""Payment links in a run: a link's payment whose webhooks were all lost is ours, found by
the link's notes on the order Razorpay made when the link was paid (a link's row never
learns that order: Razorpay makes it only at the payment). It is a status difference on
our link's row, which flags the visit, never a stray (review finding: it was reported
``missing_ours`` with no visit, and the visit stayed unpaid and unflagged)."""

import pytest

from portal import jobs
from portal.booking import links, lookup, visits
from portal.booking.models import ATTENTION_RECONCILIATION
from portal.extensions import db
from portal.payments.models import Payment
from portal.reconcile import resolve
from tests.booking.factories import at
from tests.reconcile.conftest import (  # noqa: F401
    _ledger_stays_sound,
    clock,
    gateway,
    users,
    world,
)
from tests.reconcile.helpers import (
    LOST_CAPTURE,
    admin,
    case_for,
    later,
    link_paid_only_at_gateway,
    run_day,
)


@pytest.mark.parametrize(
    "notes_on_payment", [True, False], ids=["notes-on-the-payment", "notes-only-on-the-order"]
)
def test_a_link_payment_whose_webhooks_are_lost_is_ours_and_flags_its_visit(
    world, users, gateway, clock, notes_on_payment
):
    visit_id, row_id, pay_id = link_paid_only_at_gateway(
        world, users, gateway, notes_on_payment=notes_on_payment
    )
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(pay_id)
    assert (case.status, case.reason, case.visit_id) == ("discrepancy", "status_differs", visit_id)
    assert (case.our_type, case.our_id) == ("payment", row_id)
    assert (case.our_status, case.gateway_status) == ("PENDING", "captured")
    assert lookup.get_visit(visit_id).attention == ATTENTION_RECONCILIATION
    assert run.new_discrepancies == 1
    # A re-run finds the same row: the same case, nothing new.
    assert run_day(world).new_discrepancies == 0
    assert case_for(pay_id).reason == "status_differs"
    # Sync applies the capture to the link's row: the visit confirmed, the case closed.
    resolve.sync(admin(world), case.id)
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert (visit.status, visit.attention) == ("CONFIRMED", None)
    row = db.session.get(Payment, row_id)
    assert (row.status, row.razorpay_payment_id) == ("SUCCESSFUL", pay_id)
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("matched", "synced")
    assert run_day(world).new_discrepancies == 0 and case_for(pay_id).status == "matched"


def _paid_outside(gateway, notes, amount):
    """A captured payment for an order the portal never made, whose notes say ``notes``
    (its webhooks dropped: only a run sees it)."""
    store = gateway.sandbox.store
    gateway.sandbox.set_faults(drop_events=LOST_CAPTURE)
    order = store.create_order({"amount": amount, "receipt": "elsewhere", "notes": notes})
    paid = store.pay_order(order["id"])
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")
    return paid["id"]


def test_notes_that_name_a_row_of_ours_wrongly_leave_the_payment_a_stray(
    world, users, gateway, clock
):
    """Our id in the notes counts only for a link's row of the visit the notes name (SQLite
    may hand a rolled-back link row's id to another visit's row), as for webhooks."""
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
    number = lookup.get_visit(item.master_id).number
    other_visit = _paid_outside(
        gateway, {"visit": "V999999", "portal_payment": str(link.id)}, link.amount
    )
    not_a_link = _paid_outside(
        gateway, {"visit": number, "portal_payment": str(link.id + 1000)}, link.amount
    )
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    for pay_id in (other_visit, not_a_link):
        case = case_for(pay_id)
        assert (case.reason, case.visit_id, case.our_id) == ("missing_ours", None, None)
    assert lookup.get_visit(item.master_id).attention is None


def test_a_lost_link_payment_is_ours_after_the_link_expired_here(world, users, gateway, clock):
    """The link expired on our side unchecked (Razorpay unreachable at its expiry until
    the visit's wait for it ended, so the visit lapsed) while its payment, captured at the
    gateway, was never heard of: the expired row is found all the same, and a sync
    captures it as any late capture (here the slot still free: the visit revived).
    (Before the expiry asked Razorpay, every such link expired here, and a new one was
    sent: ``tests/payments/test_link_paid_webhooks_lost.py``.)"""
    visit_id, row_id, pay_id = link_paid_only_at_gateway(world, users, gateway)
    clock.move_to(at(3, 8, 1))  # past the wait: the first start (10:00) less 2 h
    gateway.sandbox.set_faults(error_rate=1.0, error_status=503, match="/v1/payment_links")
    jobs.run_periodic(links.EXPIRE_LINKS)
    gateway.sandbox.set_faults(error_rate=0.0, match="")
    db.session.expire_all()
    assert db.session.get(Payment, row_id).status == "EXPIRED"
    assert lookup.get_visit(visit_id).status == "EXPIRED"
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(pay_id)
    assert (case.reason, case.visit_id, case.our_id) == ("status_differs", visit_id, row_id)
    assert (case.our_status, case.gateway_status) == ("EXPIRED", "captured")
    assert lookup.get_visit(visit_id).attention == ATTENTION_RECONCILIATION
    resolve.sync(admin(world), case.id)
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    [late] = [p for p in visit.payments if p.razorpay_payment_id == pay_id]
    assert (late.id, late.status) != (row_id, "EXPIRED") and late.status == "SUCCESSFUL"
    assert visit.status == "CONFIRMED" and not late.unapplied
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("matched", "synced")
