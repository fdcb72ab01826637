"""Every discrepancy class, produced through the sandbox's faults (never by editing our
rows), found by a run, resolved both ways; a re-run of the window adds nothing."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import ADMIN, User
from portal.audit.models import AuditEntry
from portal.booking import lookup
from portal.booking.models import ATTENTION_RECONCILIATION
from portal.extensions import db
from portal.notify.models import Notification
from portal.policies import service as policy_service
from portal.reconcile import resolve
from portal.reconcile.matching import CAPTURE_WINDOW
from portal.reconcile.models import ReconCase, ReconRun
from portal.reconcile.window import clinic_day
from tests.booking.factories import NOW, at, quoted_checkout
from tests.reconcile.helpers import (
    LOST_CAPTURE,
    admin,
    case_for,
    cases,
    gateway_time_off,
    later,
    longer_notes,
    paid,
    paid_only_at_gateway,
    payment_id,
    run_day,
)
from tests.refunds.helpers import quoted_cancel, quoted_move, settle_refunds


def alerts():
    return db.session.scalars(
        sa.select(Notification).where(Notification.kind == "alert.RECONCILIATION_DISCREPANCY")
    ).all()


def test_a_clean_day_matches_and_a_rerun_adds_nothing(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    assert (run.matched, run.discrepancies, run.new_discrepancies) == (1, 0, 0)
    case = case_for(payment_id(visit))
    assert (case.kind, case.status, case.visit_id) == ("payment", "matched", visit.id)
    stamp = case.updated_at
    again = run_day(world)
    assert again.status == "finished" and again.matched == 1
    assert len(cases()) == 1 and case_for(payment_id(visit)).updated_at == stamp
    assert not alerts()


def test_a_payment_approved_minutes_after_it_was_created_matches(world, users, gateway, clock):
    """Review rv_rzp: Razorpay's ``created_at`` is when the patient gave the payment
    details; the capture (our ``paid_at``) follows once the bank authorised it, here a UPI
    collect approved on the phone 3 minutes later. The same payment, the same amount,
    captured on both sides: matched, not a HIGH "time differs" discrepancy."""
    gateway.sandbox.store.delays["payment_approval"] = 180
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    [ours] = [p for p in visit.payments if p.razorpay_payment_id]
    created = gateway.sandbox.store.payments[pay_id]["created_at"]
    assert int(ours.paid_at.timestamp()) - created >= 180
    later(clock)
    run = run_day(world)
    assert (run.matched, run.discrepancies) == (1, 0)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("matched", None)
    assert not alerts()


def test_a_payment_created_the_day_before_its_capture_matches_on_both_days(
    world, users, gateway, clock
):
    """A late authorisation: created 23:00 IST, captured 08:00 IST the next day. The
    gateway lists payments by creation, ours are read by capture, so each day's run holds
    it on one side only: the creation's day finds our row by its id, the capture's day
    asks the gateway for it by id (it lies beyond the lists' 15-minute margin). Both
    match it; neither calls it missing on a side."""
    gateway.sandbox.store.delays["payment_approval"] = 9 * 3600
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    created = gateway.sandbox.store.payments[pay_id]["created_at"]
    assert clinic_day(datetime.fromtimestamp(created, UTC)) == NOW.date() - timedelta(days=1)
    later(clock)
    for day in (NOW.date(), NOW.date() - timedelta(days=1)):
        run = run_day(world, day)
        assert (run.status, run.matched, run.discrepancies) == ("finished", 1, 0), day
        assert (case_for(pay_id).status, case_for(pay_id).reason) == ("matched", None)
    assert len(cases()) == 1 and not alerts()


def test_a_capture_only_at_the_gateway_is_found_flagged_and_synced(world, users, gateway, clock):
    visit_id, pay_id = paid_only_at_gateway(world, users, gateway)
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(pay_id)
    assert (case.status, case.reason, case.visit_id) == ("discrepancy", "status_differs", visit_id)
    assert (case.gateway_status, case.our_status) == ("captured", "PENDING")
    assert lookup.get_visit(visit_id).attention == ATTENTION_RECONCILIATION
    assert run.new_discrepancies == 1 and len(alerts()) == 1  # one admin, one HIGH alert
    assert alerts()[0].priority == "HIGH"
    # A re-run adds nothing: no second case, no second alert.
    run_day(world)
    assert len(cases()) == 1 and len(alerts()) == 1
    resolve.sync(admin(world), case.id)
    db.session.expire_all()
    assert lookup.get_visit(visit_id).status == "CONFIRMED"
    case = case_for(pay_id)
    assert (case.status, case.resolution) == ("matched", "synced")
    assert db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "reconcile.case_synced")
    )
    # The sync made our capture time the sync's: later runs leave the case alone.
    run = run_day(world)
    assert case_for(pay_id).status == "matched" and run.new_discrepancies == 0


def _fully_refunded(world, users, gateway, visit_id, patient):
    """The patient cancels the visit with a full refund: the gateway's payment now says
    'refunded' (captured all the same)."""
    visit = lookup.get_visit(visit_id)
    quoted_cancel(users(patient), visit_id, [visit.items[0].id])
    settle_refunds(gateway)


def test_a_synced_capture_stays_resolved_after_the_visit_is_fully_refunded(
    world, users, gateway, clock
):
    visit_id, pay_id = paid_only_at_gateway(world, users, gateway)
    later(clock)
    run_day(world)
    resolve.sync(admin(world), case_for(pay_id).id)
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("matched", "synced")
    _fully_refunded(world, users, gateway, visit_id, world.patients[1])
    assert gateway.sandbox.store.payments[pay_id]["status"] == "refunded"
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    # captured → refunded is the same capture: the sync's time difference is still no news
    case = case_for(pay_id, kind="payment")
    assert (case.status, case.resolution) == ("matched", "synced")
    assert run.new_discrepancies == 0 and len(alerts()) == 1  # the first run's only


def test_an_accepted_case_stays_resolved_after_the_visit_is_fully_refunded(
    world, users, gateway, clock
):
    visit = paid(world, users, gateway)
    pay_id = gateway_time_off(gateway, visit, 61)
    later(clock)
    run_day(world)
    resolve.accept(admin(world), case_for(pay_id).id, "Gateway clock was off that morning")
    _fully_refunded(world, users, gateway, visit.id, world.patients[0])
    assert gateway.sandbox.store.payments[pay_id]["status"] == "refunded"
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(pay_id, kind="payment")
    assert (case.status, case.resolution) == ("resolved", "accepted")
    assert run.new_discrepancies == 0


def test_a_capture_only_at_the_gateway_accepted_with_a_note(world, users, gateway, clock):
    visit_id, pay_id = paid_only_at_gateway(world, users, gateway)
    later(clock)
    run_day(world)
    case = case_for(pay_id)
    with pytest.raises(resolve.ResolveError, match="Detailed note"):
        resolve.accept(admin(world), case.id, "too short")
    resolve.accept(admin(world), case.id, "Refunded by hand at the desk")
    case = case_for(pay_id)
    assert (case.status, case.resolution, case.note) == (
        "resolved",
        "accepted",
        "Refunded by hand at the desk",
    )
    entry = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "reconcile.case_accepted")
    )
    assert entry.after["status"] == "resolved" and entry.actor_id == world.admin
    run_day(world)
    assert case_for(pay_id).status == "resolved"  # stays resolved: the gateway is unchanged


def test_an_amount_altered_at_the_gateway(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    amount = gateway.sandbox.store.payments[pay_id]["amount"]
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 100}})
    later(clock)
    run_day(world)
    case = case_for(pay_id)
    assert (case.status, case.reason) == ("discrepancy", "amount_differs")
    assert (case.our_amount, case.gateway_amount) == (amount, amount + 100)
    with pytest.raises(resolve.ResolveError, match="still differ"):
        resolve.sync(admin(world), case.id)
    assert case_for(pay_id).status == "discrepancy"
    resolve.accept(admin(world), case.id, "Gateway adjusted the amount; confirmed by email")
    assert case_for(pay_id).status == "resolved"
    # The gateway changes again: the case opens again.
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 200}})
    run = run_day(world)
    assert case_for(pay_id).status == "discrepancy" and run.new_discrepancies == 1


def test_a_stray_payment_is_missing_on_our_side(world, users, gateway, clock):
    stray = gateway.sandbox.stray_payment(12_345)
    later(clock)
    run_day(world)
    case = case_for(stray["id"])
    assert (case.status, case.reason, case.visit_id) == ("discrepancy", "missing_ours", None)
    with pytest.raises(resolve.ResolveError, match="Not a payment of ours"):
        resolve.sync(admin(world), case.id)
    resolve.accept(admin(world), case.id, "Test payment made from the dashboard")
    assert case_for(stray["id"]).status == "resolved"


def test_a_payment_the_gateway_does_not_have(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    gateway.sandbox.set_faults(hide=[pay_id])
    later(clock)
    run_day(world)
    case = case_for(pay_id)
    assert (case.status, case.reason, case.visit_id) == ("discrepancy", "missing_gateway", visit.id)
    with pytest.raises(resolve.ResolveError, match="no such record"):
        resolve.sync(admin(world), case.id)
    resolve.accept(admin(world), case.id, "Gateway support says it was purged")
    assert case_for(pay_id).status == "resolved"


def test_timestamps_beyond_the_tolerance(world, users, gateway, clock):
    """A payment's gateway time is its creation, ours its capture: the gateway saying it
    was created 61 s after we captured it is off (a clock, or not this payment)."""
    visit = paid(world, users, gateway)
    pay_id = gateway_time_off(gateway, visit, 61)
    later(clock)
    run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "time_differs")
    # Our capture was final already: a sync changes nothing, so the time still differs
    # (review finding: the demo's 10-minute case was "synced" as matched).
    with pytest.raises(resolve.ResolveError, match="still differ"):
        resolve.sync(admin(world), case_for(pay_id).id)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "time_differs")
    gateway_time_off(gateway, visit, 59)
    run_day(world)
    assert case_for(pay_id).status == "matched"  # within 60 s again: the case closes
    # Created longer before our capture than Razorpay ever captures a payment: off too.
    gateway_time_off(gateway, visit, -CAPTURE_WINDOW - 61)
    run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "time_differs")


def test_the_tolerance_is_the_policys_as_edited_on_the_policy_page(world, users, gateway, clock):
    """The tolerance is ``Policy.reconciliation_tolerance`` (the /admin/policy page's
    "Timestamps match within"), not a setting of its own: 10 minutes there makes a
    2-minute gap a match."""
    version = policy_service.propose(
        admin(world), {"reconciliation_tolerance": 600}, reason="Gateway clocks drift"
    )
    # A control (a wider one hides discrepancies): a second administrator decides it.
    assert version.status == "PENDING"
    checker = User(email="checker@example.com", name="Checker", role=ADMIN, phone=None)
    db.session.add(checker)
    db.session.commit()
    policy_service.approve(checker, version.id)
    visit = paid(world, users, gateway)
    pay_id = gateway_time_off(gateway, visit, 120)
    later(clock)
    run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("matched", None)
    gateway_time_off(gateway, visit, 601)
    run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "time_differs")


def test_a_record_listed_twice_is_a_duplicate(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    gateway.sandbox.set_faults(duplicate=[pay_id])
    later(clock)
    run_day(world)
    assert len(cases()) == 1
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "duplicate")
    resolve.accept(admin(world), case_for(pay_id).id, "Listing glitch, one payment only")
    assert case_for(pay_id).status == "resolved"


def _moved_free_of_charge(users, world, visit):
    """The patient moves the visit days ahead (no fee, done at once): booking_rescheduled
    re-checks the visit's open cases."""
    quoted_move(users(world.patients[0]), visit.items[0].id, at(3, 11))
    db.session.expire_all()


def test_a_duplicate_listing_stays_a_discrepancy_after_a_free_reschedule(
    world, users, gateway, clock
):
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    gateway.sandbox.set_faults(duplicate=[pay_id])
    later(clock)
    run_day(world)
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "duplicate")
    _moved_free_of_charge(users, world, visit)
    # An event on the visit changes nothing about the gateway listing it twice.
    assert (case_for(pay_id).status, case_for(pay_id).reason) == ("discrepancy", "duplicate")


def test_an_order_paid_twice_stays_a_discrepancy_after_a_free_reschedule(
    world, users, gateway, clock
):
    visit = paid(world, users, gateway)
    order_id = visit.payments[0].razorpay_order_id
    store = gateway.sandbox.store
    store.orders[order_id]["status"] = "attempted"  # Razorpay lets a second payment through
    gateway.sandbox.set_faults(drop_events=LOST_CAPTURE)  # we never hear of it
    second = store.pay_order(order_id)["id"]
    gateway.deliver()
    gateway.sandbox.set_faults(drop_events="")
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    assert (case_for(second).status, case_for(second).reason) == ("discrepancy", "duplicate")
    _moved_free_of_charge(users, world, visit)
    # Found by the order, our row matches the first payment: the second is still a duplicate.
    assert (case_for(second).status, case_for(second).reason) == ("discrepancy", "duplicate")


def test_many_classes_in_one_run_raise_one_alert(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    paid_only_at_gateway(world, users, gateway)
    gateway.sandbox.stray_payment(5_000)
    gateway.sandbox.set_faults(duplicate=[payment_id(visit)])
    later(clock)
    run = run_day(world)
    assert run.new_discrepancies == 3 and run.discrepancies == 3
    assert len(alerts()) == 1
    assert "3 new discrepancies" in alerts()[0].title
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReconRun)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReconCase)) == 3


def test_a_settlement_missing_a_payment_is_not_settled(world, users, gateway, clock):
    from datetime import timedelta

    from portal.settlements.ingest import ingest

    settled = paid(world, users, gateway)
    missing = paid(world, users, gateway, hour=12, patient=1)
    missing_id = payment_id(missing)
    # The gateway's settlement of the day leaves one capture out.
    gateway.sandbox.set_faults(unsettle=[missing_id])
    gateway.sandbox.settle_day(gateway.sandbox.today())
    ingest()
    clock.shift(timedelta(days=4))  # Friday: past T+2 working days (SETTLEMENT_WORKING_DAYS)
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(missing_id, kind="settlement")
    assert (case.status, case.reason, case.visit_id) == ("discrepancy", "not_settled", missing.id)
    assert case_for(payment_id(settled), kind="settlement") is None  # covered: no case
    assert lookup.get_visit(missing.id).attention == ATTENTION_RECONCILIATION
    assert run.new_discrepancies == 1 and len(alerts()) == 1
    # A re-run adds nothing; accepting with a note closes it for good.
    again = run_day(world)
    assert again.new_discrepancies == 0 and len(cases(kind="settlement")) == 1
    resolve.accept(admin(world), case.id, "Razorpay support: paid in the next day's batch")
    run_day(world)
    assert case_for(missing_id, kind="settlement").status == "resolved"


def test_recon_rows_that_arrive_late_are_read_by_a_later_ingest(world, users, gateway, clock):
    """The settlement day's recon report lacks a payment when the settlement is first read
    (Razorpay's rows late); the next fetch, within the lookback, reads the day again and
    adds the row: the payment is settled (no NOT_SETTLED case), its console row carries the
    fee, and the settlement is posted once, as it was."""
    from datetime import timedelta

    from portal.ledger.check import SETTLEMENT_KIND
    from portal.ledger.models import LedgerTransaction
    from portal.settlements.ingest import ingest
    from portal.settlements.models import SettlementItem
    from portal.transactions.models import MoneyMovement

    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    gateway.sandbox.set_faults(unsettle=[pay_id])  # the report lacks it for now
    raw = gateway.sandbox.settle_day(gateway.sandbox.today())
    first = ingest()
    assert first.stored == [raw["id"]]
    assert (
        db.session.scalar(sa.select(SettlementItem).where(SettlementItem.entity_id == pay_id))
        is None
    )
    gateway.sandbox.set_faults(unsettle=[])  # the rows are complete now
    again = ingest()  # the next daily fetch (the 7-day lookback covers the settlement)
    assert again.stored == [] and again.completed == [raw["id"]]
    assert ingest().completed == []  # complete: not read again
    clock.shift(timedelta(days=4))  # Friday: past T+2 working days
    run = run_day(world)
    assert run.status == "finished", run.error
    db.session.expire_all()
    item = db.session.scalar(sa.select(SettlementItem).where(SettlementItem.entity_id == pay_id))
    assert item is not None and item.fee == raw["fees"]
    assert case_for(pay_id, kind="settlement") is None
    row = db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == "payment", MoneyMovement.reference == pay_id
        )
    )
    assert row.gateway_fee == raw["fees"] and row.settlement_reference == raw["id"]
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(LedgerTransaction.kind == SETTLEMENT_KIND)
        )
        == 1
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(AuditEntry.action == "settlement.items_added")
        )
        == 1
    )


def test_a_wrong_amount_capture_is_checked_for_settlement(app, world, users, gateway, clock):
    """A capture of the wrong amount paid for nothing (its own row, ``unapplied``, the
    money in the wallet); it is money at Razorpay all the same (the ledger, console and
    dashboard count it), so a Razorpay that never settles it is NOT_SETTLED, dated by its
    capture."""
    from datetime import timedelta

    from portal.db import utcnow
    from portal.payments.models import Payment
    from portal.settlements.overdue import overdue_unsettled
    from tests.booking.factories import captured_event, post_webhook
    from tests.payments.test_payments_checkout import CALLBACK, hold

    patient = users(world.patients[0])
    visit_id = hold(world, patient)
    result = quoted_checkout(patient, visit_id, callback_url=CALLBACK)
    pay_id = gateway.pay(result.payment.razorpay_order_id)["razorpay_payment_id"]
    post_webhook(app, captured_event(gateway, pay_id, 100), "evt_wrong_amount_settle")
    db.session.expire_all()
    p = db.session.scalar(sa.select(Payment).where(Payment.razorpay_payment_id == pay_id))
    assert (p.status, p.captured_amount, p.unapplied) == ("SUCCESSFUL", 100, True)
    assert overdue_unsettled(utcnow() + timedelta(days=2)) == []  # T+2 is on time
    # Razorpay never settles it (its settlement leaves it out; the run reads them): days pass.
    gateway.sandbox.set_faults(unsettle=[pay_id])
    clock.shift(timedelta(days=4))
    [late] = overdue_unsettled(utcnow())
    assert (late.reference, late.our_type, late.our_id, late.amount) == (
        pay_id,
        "payment",
        p.id,
        100,
    )
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(pay_id, kind="settlement")
    assert case is not None and (case.status, case.reason) == ("discrepancy", "not_settled")


def test_a_stale_row_written_after_an_accept_keeps_the_resolution(world, users, gateway, clock):
    """A run's write of a case it read before an admin accepted it keeps the resolution
    unless a side's record changed (cases.KEEPS_A_RESOLUTION: written once as SQL text for
    PostgreSQL's bulk path and once as an expression for SQLite's; this runs each on its
    own database)."""
    from portal.reconcile import cases as recon_cases

    visit_id, pay_id = paid_only_at_gateway(world, users, gateway)
    later(clock)
    run_day(world)
    case = case_for(pay_id)
    table = ReconCase.__table__
    stale = {c.name: getattr(case, c.name) for c in table.columns if c.name != "id"}
    resolve.accept(admin(world), case.id, "Checked with the bank by phone")
    recon_cases.upsert([stale])  # as read before the accept: no resolution
    db.session.expire_all()
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("resolved", "accepted")
    recon_cases.upsert([{**stale, "theirs_key": "a changed record"}])
    db.session.expire_all()
    assert (case_for(pay_id).status, case_for(pay_id).resolution) == ("discrepancy", None)


def test_resolving_the_last_case_of_a_visit_clears_the_flag_it_raised(world, users, gateway, clock):
    """Review finding: visits stayed "Needs attention" after every case was resolved (6
    flagged, 0 open discrepancies), each to be resolved a second time with a note. The
    reconciliation flag goes with the visit's last open discrepancy, audited."""
    visit = paid(world, users, gateway)
    pay_id = payment_id(visit)
    lost_visit_id, lost_pay_id = paid_only_at_gateway(world, users, gateway)
    other = paid(world, users, gateway, hour=12, patient=2)
    other_pay_id = payment_id(other)
    amount = gateway.sandbox.store.payments[pay_id]["amount"]
    gateway.sandbox.set_faults(alter={pay_id: {"amount": amount + 100}}, duplicate=[other_pay_id])
    later(clock)
    run_day(world)
    for visit_id in (visit.id, lost_visit_id, other.id):
        assert lookup.get_visit(visit_id).attention == ATTENTION_RECONCILIATION
    resolve.accept(admin(world), case_for(pay_id).id, "Gateway adjusted the amount by email")
    db.session.expire_all()
    assert lookup.get_visit(visit.id).attention is None
    cleared = db.session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.action == "attention.clear", AuditEntry.object_id == str(visit.id)
        )
    )
    assert cleared.before == {"attention": ATTENTION_RECONCILIATION}
    resolve.sync(admin(world), case_for(lost_pay_id).id)
    db.session.expire_all()
    assert lookup.get_visit(lost_visit_id).status == "CONFIRMED"
    assert lookup.get_visit(lost_visit_id).attention is None
    # A flag raised for another reason since is not reconciliation's to clear.
    flagged = lookup.get_visit(other.id)
    flagged.attention = "PAYMENT_FAILED"
    db.session.commit()
    resolve.accept(admin(world), case_for(other_pay_id).id, "Listing glitch, one payment only")
    db.session.expire_all()
    assert lookup.get_visit(other.id).attention == "PAYMENT_FAILED"


def test_a_run_that_finds_the_records_agree_now_clears_the_flag(world, users, gateway, clock):
    """Left last time: a case a later run closed (the gateway's record corrected, or ours
    caught up) left its visit "Needs attention" for an admin to clear by hand. The run
    takes the reconciliation flag down once the visit has no open discrepancy, audited; a
    visit with a case still open, or flagged since for another reason, keeps its flag."""
    fixed, still, other = (
        paid(world, users, gateway, hour=h, patient=p) for h, p in ((10, 0), (12, 2), (14, 1))
    )
    refs = {v.id: payment_id(v) for v in (fixed, still, other)}
    store = gateway.sandbox.store.payments
    altered = {ref: {"amount": store[ref]["amount"] + 100} for ref in refs.values()}
    gateway.sandbox.set_faults(alter=altered)
    later(clock)
    run_day(world)
    for visit in (fixed, still, other):
        assert lookup.get_visit(visit.id).attention == ATTENTION_RECONCILIATION
    flagged = lookup.get_visit(other.id)
    flagged.attention = "PAYMENT_FAILED"  # raised since for another reason
    db.session.commit()
    # Razorpay corrects two of its records; the third stays altered.
    gateway.sandbox.set_faults(alter={refs[still.id]: altered[refs[still.id]]})
    run = run_day(world)
    assert run.status == "finished", run.error
    assert [case_for(refs[v.id]).status for v in (fixed, still, other)] == [
        "matched",
        "discrepancy",
        "matched",
    ]
    db.session.expire_all()
    assert lookup.get_visit(fixed.id).attention is None
    [cleared] = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "attention.clear")
    ).all()
    assert cleared.object_id == str(fixed.id) and cleared.actor_id is None
    assert cleared.before == {"attention": ATTENTION_RECONCILIATION}
    assert "run" in cleared.after["note"]
    assert lookup.get_visit(still.id).attention == ATTENTION_RECONCILIATION
    assert lookup.get_visit(other.id).attention == "PAYMENT_FAILED"


def test_the_accept_note_is_as_long_as_the_policy_asks(world, users, gateway, clock):
    """The note's length is the policy's ``note_min_length`` (POLICY.md's 10 its floor), as
    a payout's reason or a wallet adjustment's note; the message says the number (re-read
    finding: reconciliation still typed 10)."""
    visit_id, pay_id = paid_only_at_gateway(world, users, gateway)
    later(clock)
    run_day(world)
    longer_notes(world, 12)
    case = case_for(pay_id)
    with pytest.raises(resolve.ResolveError) as refused:
        resolve.accept(admin(world), case.id, "Eleven char")
    assert str(refused.value) == (
        "Detailed note required for audit trail (at least 12 characters)."
    )
    assert case_for(pay_id).status == "discrepancy"
    done, [(refused_id, message)] = resolve.resolve_many(
        admin(world), [case.id], "accept", " Eleven char "
    )
    assert (done, refused_id, message) == (0, case.id, str(refused.value))
    resolve.accept(admin(world), case.id, "Twelve chars")
    assert case_for(pay_id).status == "resolved"
