"""The operations desk's reads and rules (portal.booking.desk, portal.booking.attention):
each filter and search of the appointments list, the attention rules and their resolution
with a note, the next action per row, the payments monitor."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.booking import attention, coupons, desk, lifecycle, links, visits
from portal.booking.desk import NO_PAYMENT, VisitFilter, appointments_page
from portal.booking.errors import BookingError, PermissionDenied
from portal.booking.models import ATTENTION_PAYMENT_FAILED, ATTENTION_RECONCILIATION
from portal.db import unit_of_work
from portal.domain.next_action import Action
from portal.domain.states import PaymentStatus
from portal.extensions import db
from portal.notify import sweeps, tasks
from portal.notify.models import Notification
from portal.payouts import completion
from portal.reconcile.models import CaseStatus, ReconCase
from portal.reconcile.queries import open_cases_by_visit
from tests.booking.factories import NOW, at, credit_wallet, quoted_checkout, quoted_desk_payment

CALLBACK = "http://portal.test/visits/callback"


def ids(**filters):
    return {v.id for v in appointments_page(VisitFilter(**filters), per_page=50).items}


def _visit(v_id):
    db.session.expire_all()
    return db.session.get(desk.MasterBooking, v_id)


@pytest.fixture
def three(world, users, gateway):
    """v1: patient 1, a draft (nothing asked), Tue 10:00 with doctor 1.
    v2: patient 1's child, a lab test Tue 11:00, payment link sent (pending).
    v3: patient 2, Wed 12:00 with doctor 2, paid at the desk (confirmed)."""
    admin, p1, p2 = users(world.admin), users(world.patients[0]), users(world.patients[1])
    p1.phone, p2.phone = "+919811111111", "+919800000002"
    db.session.commit()

    def add(actor, patient, service, provider, start, dependent=None):
        return visits.add_item(
            actor,
            patient_id=patient.id,
            service_id=service,
            provider_ids=[provider],
            clinic_id=world.clinic,
            start_at=start,
            dependent_id=dependent,
        ).master_id

    v1 = add(p1, p1, world.consult, world.doctors[0], at(1, 10))
    v2 = add(admin, p1, world.lab, world.lab_provider, at(1, 11), dependent=world.child)
    links.create_payment_link(admin, v2)
    v3 = add(admin, p2, world.consult, world.doctors[1], at(2, 12))
    quoted_desk_payment(admin, v3, "R-1")
    return v1, v2, v3


def test_each_filter(world, three):
    v1, v2, v3 = three
    assert ids() == {v1, v2, v3}
    tuesday, wednesday = (NOW + timedelta(days=1)).date(), (NOW + timedelta(days=2)).date()
    assert ids(date_from=tuesday, date_to=tuesday) == {v1, v2}
    assert ids(date_from=wednesday) == {v3}
    assert ids(date_to=tuesday - timedelta(days=1)) == set()
    assert ids(clinic_id=world.clinic) == {v1, v2, v3}
    assert ids(clinic_id=world.other_clinic) == set()
    assert ids(provider_id=world.doctors[1]) == {v3}
    assert ids(provider_id=world.lab_provider) == {v2}
    assert ids(service_kind="LAB_TEST") == {v2}
    assert ids(service_kind="CONSULTATION") == {v1, v3}
    assert ids(status="DRAFT") == {v1}
    assert ids(status="PENDING_PAYMENT") == {v2}
    assert ids(status="CONFIRMED") == {v3}
    assert ids(payment_status=NO_PAYMENT) == {v1}
    assert ids(payment_status="PENDING") == {v2}
    assert ids(payment_status="SUCCESSFUL") == {v3}
    assert ids(payment_status="FAILED") == set()
    # Item filters hold for one and the same appointment: doctor 2 on Tuesday is none.
    assert ids(provider_id=world.doctors[1], date_from=tuesday, date_to=tuesday) == set()
    assert ids(needs_attention=True) == set() and ids(needs_attention=False) == {v1, v2, v3}


def test_search_finds_holder_child_mobile_and_visit_number(world, three, users):
    v1, v2, v3 = three
    assert ids(search="Patient 1") == {v1, v2}  # the account holder
    assert ids(search="little") == {v2}  # the child ("Little One")
    assert ids(search="98000 00002") == {v3}  # a mobile number, typed with a space
    assert ids(search="+91 98000-00002") == {v3}
    assert ids(search="98000") == {v3}
    assert ids(search="9811111111") == {v1, v2}
    number = _visit(v2).number
    assert ids(search=number.lower()) == {v2}
    assert ids(search="nobody at all") == set()


def test_rows_show_fee_breakup_payment_status_and_next_action(three):
    v1, v2, v3 = three
    rows = {v.id: v for v in appointments_page(VisitFilter(), per_page=50).items}
    assert desk.payment_status(rows[v1]) == NO_PAYMENT
    assert desk.hint(rows[v1], NOW).action == Action.TAKE_PAYMENT
    assert desk.payment_status(rows[v2]) == "PENDING"
    assert desk.hint(rows[v2], NOW).action == Action.WAITING
    assert desk.hint(rows[v2], NOW + timedelta(days=3)).action == Action.RENEW_LINK
    assert desk.hint(rows[v3]).action == Action.COMPLETE
    paid = desk.figures(rows[v3])
    item = rows[v3].items[0]
    assert (paid.fee, paid.platform_fee, paid.gst) == (item.fee, item.platform_fee, item.gst)
    assert paid.total == item.total and paid.net == paid.paid == item.total and paid.due == 0
    draft = desk.figures(rows[v1])
    assert draft.net == 0 and draft.due == rows[v1].items[0].total


def test_a_visit_the_wallet_or_a_coupon_paid_needs_no_payment(world, users, gateway):
    """Review finding: a visit paid entirely from the wallet read "Take payment" (and
    payment NONE): the current payment was the newest *non-wallet* one, and it has none.
    Now a wallet part counts once used; a reserved or given-back one still defers to its
    order. A visit a coupon paid in full has no payment at all and needs none either."""
    admin, patient = users(world.admin), users(world.patients[0])
    coupons.create_coupon(admin, code="FREE100", kind="PERCENT", value=10_000)
    credit_wallet(patient.id, 500_000)

    def visit(hh):
        return visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(1, hh),
        ).master_id

    def pay(v_id, wallet):
        quoted_checkout(patient, v_id, wallet, callback_url=CALLBACK)

    wallet_only, part, again, free = visit(9), visit(10), visit(11), visit(12)
    pay(wallet_only, _visit(wallet_only).subtotal)
    pay(part, 10_000)  # ₹100 from the wallet, the rest an order still pending
    pay(again, 10_000)  # given up for the wallet alone: the order and its part end
    pay(again, _visit(again).subtotal)
    visits.apply_coupon(patient, free, "FREE100")
    pay(free, 0)

    rows = {v.id: v for v in appointments_page(VisitFilter(), per_page=50).items}
    for v_id in (wallet_only, again):
        assert rows[v_id].status == "CONFIRMED"
        assert desk.payment_status(rows[v_id]) == "SUCCESSFUL"
        assert desk.hint(rows[v_id], NOW).action == Action.COMPLETE
    assert desk.payment_status(rows[part]) == "PENDING"
    assert desk.hint(rows[part], NOW).action == Action.WAITING
    assert rows[free].status == "CONFIRMED" and not rows[free].payments
    assert desk.payment_status(rows[free]) == NO_PAYMENT
    assert desk.hint(rows[free], NOW).action == Action.COMPLETE
    # The filters read the same rule as the rows.
    assert ids(payment_status="SUCCESSFUL") == {wallet_only, again}
    assert ids(payment_status="PENDING") == {part}
    assert ids(payment_status="EXPIRED") == set()
    assert ids(payment_status=NO_PAYMENT) == {free}
    assert desk.payments_page().items == [p for p in _visit(part).payments if p.kind == "ORDER"]


def test_pending_payment_within_24_hours_needs_attention(three, clock):
    v1, v2, v3 = three
    assert v2 not in ids(needs_attention=True)  # 27 h ahead
    clock.shift(timedelta(hours=4))  # 23 h before it
    assert ids(needs_attention=True) == {v2}
    [reason] = attention.reasons(_visit(v2))
    assert reason.kind == attention.PENDING_SOON and not reason.resolvable
    assert not attention.reasons(_visit(v1))  # a draft has asked for nothing yet


def test_the_first_failed_payment_needs_attention_with_a_high_alert(world, users, gateway):
    patient, admin = users(world.patients[0]), users(world.admin)
    visit_id = visits.add_item(
        patient,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=at(3, 10),
    ).master_id
    order = quoted_checkout(patient, visit_id, callback_url=CALLBACK).payment.razorpay_order_id
    gateway.pay(order, outcome="failure")
    gateway.deliver()
    visit = _visit(visit_id)
    assert visit.attention == ATTENTION_PAYMENT_FAILED
    assert ids(needs_attention=True) == {visit_id}
    assert desk.hint(visit).action == Action.RETRY
    tasks.on_payment_attention(visit_id, ATTENTION_PAYMENT_FAILED)
    alert = db.session.scalar(sa.select(Notification).where(Notification.user_id == admin.id))
    assert alert.priority == "HIGH" and "Payment failed" in alert.title
    # Two more failures: intervention.
    for _ in range(2):
        gateway.pay(order, outcome="failure")
        gateway.deliver()
    assert desk.hint(_visit(visit_id)).action == Action.INTERVENE
    monitor = desk.payments_page()
    assert [p.master_id for p in monitor.items] == [visit_id]
    assert desk.last_error(monitor.items[0])
    rows = desk.timeline(_visit(visit_id))
    assert [r.retries for r in rows if r.status == "FAILED"] == [1, 2, 3]
    assert all(r.reference and r.reference.startswith("pay_") for r in rows if r.status == "FAILED")


def test_a_reconciliation_discrepancy_needs_attention_and_is_resolved_with_a_note(
    world, users, three
):
    v1, v2, v3 = three
    admin = users(world.admin)
    with unit_of_work():
        db.session.add(
            ReconCase(
                kind="payment",
                reference="pay_recon1",
                status=CaseStatus.DISCREPANCY,
                reason="amount_differs",
                visit_id=v3,
            )
        )
        lifecycle.needs_attention(_visit(v3), ATTENTION_RECONCILIATION)
    assert ids(needs_attention=True) == {v3}
    assert open_cases_by_visit([v1, v2, v3]) == {v3: 1}
    with pytest.raises(BookingError, match="Write a note"):
        attention.resolve_visit_flag(admin, v3, "   ")
    assert _visit(v3).attention == ATTENTION_RECONCILIATION  # nothing half-written
    attention.resolve_visit_flag(admin, v3, "Gateway fee difference, accepted")
    assert _visit(v3).attention is None and ids(needs_attention=True) == set()
    audit = db.session.scalar(
        sa.select(AuditEntry)
        .where(AuditEntry.action == "attention.resolve")
        .order_by(AuditEntry.id)
    )
    assert audit.actor_id == admin.id and audit.after["note"].startswith("Gateway fee")
    with pytest.raises(BookingError):
        attention.resolve_visit_flag(admin, v3, "again")
    patient = users(world.patients[0])
    with pytest.raises(PermissionDenied):  # the service refuses, not only the admin pages
        attention.resolve_visit_flag(patient, v3, "a patient clears it")


def test_a_no_show_needs_attention_until_decided_with_a_note(world, users, three, clock):
    v1, v2, v3 = three
    admin = users(world.admin)
    clock.move_to(at(2, 15))  # Wed 12:00–12:30 confirmed, never started, now 15:00
    assert sweeps.flag_no_shows() >= 1
    assert v3 in ids(needs_attention=True)
    reasons = attention.reasons(_visit(v3))
    [no_show] = [r for r in reasons if r.kind == attention.NO_SHOW]
    assert no_show.flag_id and no_show.resolvable
    with pytest.raises(BookingError):
        attention.resolve_flag(admin, no_show.flag_id, "", visit_id=v3)
    attention.resolve_flag(admin, no_show.flag_id, "Patient called: came late", visit_id=v3)
    flag = db.session.get(attention.AttentionFlag, no_show.flag_id)
    assert flag.resolved_by_id == admin.id and flag.note == "Patient called: came late"
    assert v3 not in ids(needs_attention=True)


def test_a_started_booking_never_completed_needs_attention_until_completed(
    world, users, three, clock
):
    """The no-show's sibling: started at 12:00, still STARTED at 15:00 (end + 2.5 h). The
    visit needs attention with a NOT_COMPLETED reason an admin can resolve; completing the
    booking clears it (a no-show flag, by contrast, stays open after a late start: the
    admin still decides what happened)."""
    v1, v2, v3 = three
    admin = users(world.admin)
    item = _visit(v3).items[0].id
    clock.move_to(at(2, 12))
    completion.start_booking(admin, item)
    clock.move_to(at(2, 15))
    assert sweeps.flag_no_shows() == 0
    assert sweeps.flag_not_completed() == 1
    assert v3 in ids(needs_attention=True)
    [reason] = attention.reasons(_visit(v3))
    assert reason.kind == attention.NOT_COMPLETED and reason.resolvable
    assert reason.booking_id == item and reason.flag_id
    completion.complete_booking(admin, item)
    assert attention.reasons(_visit(v3)) == []
    assert v3 not in ids(needs_attention=True)
    assert sweeps.flag_not_completed() == 0


def test_the_desk_hint_of_a_cancelled_visit_is_none():
    paid = SimpleNamespace(
        kind="ORDER", status=PaymentStatus.SUCCESSFUL, expires_at=None, attempt_count=1,
        failed_attempts=0, unapplied=False,
    )  # fmt: skip
    visit = SimpleNamespace(status="CANCELLED", payments=[paid], confirmed_at=NOW)
    assert desk.hint(visit, NOW).action == Action.NONE
    visit = SimpleNamespace(status="CANCELLED", payments=[], confirmed_at=None)
    assert desk.hint(visit, NOW).action == Action.NONE
