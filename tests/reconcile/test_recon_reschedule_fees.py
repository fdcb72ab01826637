"""Reschedule fees paid online are Razorpay payments kept on their ``reschedules`` row, not
in ``payments``: a run matches them like a visit's payment (paid normally, given back,
paid late into the wallet), and a fee captured only at the gateway is found by its order
and applied by a sync (the booking moves, or the fee goes to the wallet)."""

from datetime import timedelta

import sqlalchemy as sa

from portal.booking import reschedule_payment, visits
from portal.booking.models import ATTENTION_RECONCILIATION, IndividualBooking, Reschedule
from portal.dashboard.queries import dashboard
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.service import balance
from portal.reconcile import resolve
from portal.reconcile import run as recon
from portal.reconcile.window import day_window
from portal.refunds.models import Refund
from portal.transactions.filters import MovementFilter
from portal.transactions.models import MoneyMovement
from portal.transactions.queries import summary
from tests.booking.factories import at
from tests.reconcile.helpers import LOST_CAPTURE, admin, case_for, later, run_day
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    quoted_move,
    quoted_provider_cancel,
    settle_refunds,
)

START, NEW = at(4, 10), at(7, 11)
ASKED = START - hours(60)  # the 10 % tier
DAY = ASKED.date()  # the clinic day the fee is paid on


def _booked_and_asked(world, users, gateway, clock):
    """A paid consultation, and a move of it asked for with the fee paid online (the
    checkout opened, not paid yet)."""
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(ASKED)
    resched = quoted_move(
        patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    return patient, item, resched


def _paid_only_at_gateway(gateway, resched):
    """The fee paid, its webhooks lost and the tab closed: the gateway payment's id."""
    gateway.sandbox.set_faults(drop_events=LOST_CAPTURE)
    params = gateway.pay(resched.razorpay_order_id)
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")
    return params["razorpay_payment_id"]


def _fresh(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def test_a_fee_paid_online_matches_its_reschedule(world, users, gateway, clock):
    _, item, resched = _booked_and_asked(world, users, gateway, clock)
    done = reschedule_payment.complete_callback(gateway.pay(resched.razorpay_order_id))
    gateway.deliver()
    assert done.status == "DONE"
    later(clock)
    run = run_day(world, DAY)
    assert run.status == "finished", run.error
    assert (run.matched, run.discrepancies, run.new_discrepancies) == (1, 0, 0)
    case = case_for(done.razorpay_payment_id)
    assert (case.kind, case.status, case.our_type, case.our_id, case.visit_id) == (
        "payment",
        "matched",
        "reschedule",
        resched.id,
        item.master_id,
    )
    assert (case.our_amount, case.gateway_amount) == (resched.total, resched.total)
    _money_in_agrees()


def _money_in_agrees():
    """The dashboard's money in over its 30 days is the console's over the same days
    (both count reschedule fees paid through Razorpay; the dashboard left them out)."""
    today = utcnow().astimezone(CLINIC_TZ).date()
    console = summary(MovementFilter(start=today - timedelta(days=29), end=today))
    assert dashboard().series["money in"].window(30)[1] == console.money_in > 0


def test_a_fee_given_back_matches_its_payment_and_its_refund(world, users, gateway, clock):
    _, item, resched = _booked_and_asked(world, users, gateway, clock)
    done = reschedule_payment.complete_callback(gateway.pay(resched.razorpay_order_id))
    gateway.deliver()
    doctor = users(_fresh(IndividualBooking, item.id).providers[0].user_id)
    quoted_provider_cancel(doctor, item.id, "Called to surgery")
    settle_refunds(gateway)
    fee_refund = db.session.scalars(
        sa.select(Refund).where(Refund.reschedule_id == resched.id)
    ).one()
    assert (fee_refund.status, fee_refund.razorpay_payment_id) == (
        "PROCESSED",
        done.razorpay_payment_id,
    )
    later(clock)
    start, end = day_window(START.date() - timedelta(days=4), ASKED.date())
    run = recon.execute(recon.start_run(start, end, trigger=recon.ADMIN, actor=admin(world)).id)
    assert run.status == "finished", run.error
    # The visit's payment and the fee's (both refunded at the gateway), and their refunds.
    assert (run.matched, run.discrepancies) == (4, 0)
    assert case_for(done.razorpay_payment_id).our_type == "reschedule"
    assert case_for(fee_refund.razorpay_refund_id).status == "matched"


def test_a_fee_captured_only_at_the_gateway_is_found_and_synced(world, users, gateway, clock):
    _, item, resched = _booked_and_asked(world, users, gateway, clock)
    pay_id = _paid_only_at_gateway(gateway, resched)
    later(clock)  # the sweep has not run: the request still waits for its fee
    run = run_day(world, DAY)
    case = case_for(pay_id)
    assert (case.status, case.reason, case.our_type, case.visit_id) == (
        "discrepancy",
        "status_differs",
        "reschedule",
        item.master_id,
    )
    assert (case.gateway_status, case.our_status) == ("captured", "PENDING")
    assert run.new_discrepancies == 1
    assert _fresh(IndividualBooking, item.id).visit.attention == ATTENTION_RECONCILIATION
    resolve.sync(admin(world), case.id)
    assert _fresh(IndividualBooking, item.id).start_at == NEW
    assert _fresh(Reschedule, resched.id).status == "DONE"
    case = case_for(pay_id)
    assert (case.status, case.resolution) == ("matched", "synced")
    run = run_day(world, DAY)
    assert case_for(pay_id).status == "matched" and run.new_discrepancies == 0


def _expired_by_another_booking(world, users, clock, resched):
    """The checkout ran out and, before the sweep, another patient took the held time: the
    request is expired there without asking the gateway."""
    clock.move_to(resched.expires_at + timedelta(minutes=1))
    other = users(world.patients[1])
    visits.add_item(
        other,
        patient_id=other.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=NEW,
    )
    assert _fresh(Reschedule, resched.id).status == "EXPIRED"


def test_a_fee_paid_after_its_request_expired_is_synced_to_the_wallet(world, users, gateway, clock):
    patient, item, resched = _booked_and_asked(world, users, gateway, clock)
    _expired_by_another_booking(world, users, clock, resched)
    pay_id = _paid_only_at_gateway(gateway, resched)
    later(clock)
    run_day(world, DAY)
    case = case_for(pay_id)
    assert (case.status, case.reason, case.our_status) == (
        "discrepancy",
        "status_differs",
        "EXPIRED",
    )
    resolve.sync(admin(world), case.id)
    assert balance(chart.patient_wallet(patient.id)) == resched.total
    assert _fresh(IndividualBooking, item.id).start_at == START
    assert _fresh(Reschedule, resched.id).razorpay_payment_id == pay_id
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("matched", "synced")


def test_a_late_fee_put_in_the_wallet_by_its_webhook_matches(world, users, gateway, clock):
    patient, _, resched = _booked_and_asked(world, users, gateway, clock)
    _expired_by_another_booking(world, users, clock, resched)
    params = gateway.pay(resched.razorpay_order_id)
    gateway.deliver()
    assert balance(chart.patient_wallet(patient.id)) == resched.total
    # Money in on the transactions console, as the ledger has it (it came in, then went
    # to the wallet).
    fee_row = db.session.scalars(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == "reschedule", MoneyMovement.source_id == resched.id
        )
    ).one()
    assert (fee_row.bucket, fee_row.amount) == ("in", resched.total)
    _money_in_agrees()
    later(clock)
    run = run_day(world, DAY)
    case = case_for(params["razorpay_payment_id"])
    assert (case.status, case.our_type, case.our_status) == (
        "matched",
        "reschedule",
        "SUCCESSFUL",
    )
    assert run.new_discrepancies == 0


def _clearing_debits_on(day):
    """Money in on a clinic day as the ledger has it (gateway clearing debited)."""
    lo = at(day, 0)
    rows = db.session.scalars(
        sa.select(LedgerEntry.amount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerAccount.code == chart.GATEWAY_CLEARING,
            LedgerEntry.amount > 0,
            LedgerTransaction.created_at >= lo,
            LedgerTransaction.created_at < lo + timedelta(days=1),
        )
    )
    return sum(rows)


def test_a_late_fee_is_money_in_on_the_day_it_was_paid(world, users, gateway, clock):
    """Asked for on Tuesday 23:50, expired, paid on Wednesday 00:06 into the wallet: money
    in on Wednesday on the console and the dashboard, as the ledger and reconciliation
    date it (by the credit), not on the request's day."""
    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(at(1, 23, 50))  # Tuesday, 58 h ahead: the 10 % tier
    resched = quoted_move(
        patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    _expired_by_another_booking(world, users, clock, resched)
    gateway.pay(resched.razorpay_order_id)  # paid late: the fee goes to the wallet
    gateway.deliver()
    row = _fresh(Reschedule, resched.id)
    assert row.status == "EXPIRED" and row.razorpay_payment_id
    wednesday = utcnow().astimezone(CLINIC_TZ).date()
    assert wednesday == at(2, 12).astimezone(CLINIC_TZ).date()
    assert _clearing_debits_on(2) == resched.total
    tuesday = wednesday - timedelta(days=1)
    assert summary(MovementFilter(start=wednesday, end=wednesday)).money_in == resched.total
    assert summary(MovementFilter(start=tuesday, end=tuesday)).money_in == 0
    daily = dashboard().series["money in"]
    assert (daily.window(1)[1], daily.window(2)[1]) == (resched.total, resched.total)


def test_a_fee_that_went_to_the_wallet_is_overdue_from_its_credit_not_its_request(
    world, users, gateway, clock
):
    """The settlements' overdue clock dated such a fee by its request: NOT_SETTLED came up
    as much as a day early. It runs from the credit, as the ledger dates the money."""
    from portal.settlements.overdue import overdue_unsettled

    patient = users(world.patients[0])
    item = book_and_pay(
        world, patient, gateway, [(world.consult, [world.doctors[0]], START)]
    ).items[0]
    clock.move_to(at(1, 23, 50))
    resched = quoted_move(
        patient, item.id, NEW, pay_with="gateway", callback_url="http://portal.test/cb/__ID__"
    ).reschedule
    _expired_by_another_booking(world, users, clock, resched)
    gateway.pay(resched.razorpay_order_id)
    gateway.deliver()
    row = _fresh(Reschedule, resched.id)
    credited = utcnow()
    assert row.status == "EXPIRED" and row.created_at < credited - timedelta(minutes=10)
    # Asked on Tuesday (23:50), credited on Wednesday (past midnight): dated by the
    # request it would be due on Thursday (T+2 working days), overdue from Friday; by the
    # credit, due on Friday, overdue from Saturday.
    assert [d.astimezone(CLINIC_TZ).date() for d in (row.created_at, credited)] == [
        at(1, 0).astimezone(CLINIC_TZ).date(),
        at(2, 0).astimezone(CLINIC_TZ).date(),
    ]
    friday_night = at(4, 23, 59)
    fees = [u for u in overdue_unsettled(friday_night) if u.our_type == "reschedule"]
    assert fees == []
    later = overdue_unsettled(at(5, 0, 1))  # Saturday
    assert [u.captured_at for u in later if u.our_type == "reschedule"] == [
        _credit_time(resched.id, row.razorpay_payment_id)
    ]


def _credit_time(reschedule_id, payment_id):
    key = reschedule_payment.unapplied_key(reschedule_id, payment_id)
    return db.session.scalar(
        sa.select(LedgerTransaction.created_at).where(LedgerTransaction.idempotency_key == key)
    )


def test_a_fee_captured_for_the_wrong_amount_matches_its_own_record(
    app, world, users, gateway, clock
):
    """The wrong amount captured on a fee's order went to the wallet with no record a run
    could find (the request still waits for its fee): its ``FeeCapture`` row is ours, for
    the amount captured, and matches; it is money at Razorpay awaiting settlement too."""
    from portal.booking.models import FeeCapture
    from portal.settlements.overdue import overdue_unsettled
    from tests.booking.factories import captured_event, post_webhook

    _, item, resched = _booked_and_asked(world, users, gateway, clock)
    paid = gateway.pay(resched.razorpay_order_id)
    gateway.sandbox.webhooks.pending = []
    pay_id = paid["razorpay_payment_id"]
    post_webhook(app, captured_event(gateway, pay_id, 100), "evt_fee_wrong")
    assert _fresh(Reschedule, resched.id).status == "PENDING_PAYMENT"
    # Razorpay's settlements leave it out (the run reads them): the overdue clock below.
    gateway.sandbox.set_faults(unsettle=[pay_id])
    later(clock)
    run = run_day(world, DAY)
    assert run.status == "finished", run.error
    case = case_for(pay_id)
    assert (case.status, case.our_type, case.our_id, case.visit_id, case.our_status) == (
        "matched",
        "reschedule",
        resched.id,
        item.master_id,
        "SUCCESSFUL",
    )
    assert (case.our_amount, case.gateway_amount) == (100, 100)
    assert run.new_discrepancies == 0
    captured_at = db.session.scalar(sa.select(FeeCapture.captured_at))
    overdue = overdue_unsettled(captured_at + timedelta(days=3, minutes=1))
    fees = [(u.reference, u.our_id, u.amount) for u in overdue if u.our_type == "reschedule"]
    assert fees == [(pay_id, resched.id, 100)]


def test_a_wrong_amount_captured_only_at_the_gateway_is_synced_to_its_record(
    world, users, gateway, clock
):
    """Its webhooks lost, the run finds it by its order (the request waits for the fee):
    a discrepancy; the sync puts it in the wallet and records it, and the case matches."""
    patient, item, resched = _booked_and_asked(world, users, gateway, clock)
    gateway.sandbox.set_faults(drop_events=LOST_CAPTURE)
    pay_id = gateway.pay(resched.razorpay_order_id)["razorpay_payment_id"]
    gateway.sandbox.store.payments[pay_id]["amount"] = 100  # Razorpay captured ₹1
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")
    later(clock)
    run_day(world, DAY)
    case = case_for(pay_id)
    assert (case.status, case.our_type) == ("discrepancy", "reschedule")
    resolve.sync(admin(world), case.id)
    assert balance(chart.patient_wallet(patient.id)) == 100
    assert _fresh(Reschedule, resched.id).status == "PENDING_PAYMENT"
    case = case_for(pay_id)
    assert (case.status, case.resolution, case.our_amount) == ("matched", "synced", 100)
    _money_in_agrees()
