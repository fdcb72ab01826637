"""Races across capabilities on PostgreSQL (a review round's, session 24): two use cases on
one visit, run or case at the same moment, each in its own connection. Each asserts the
right outcome: money once, the ledger sound, no 500, the loser told clearly."""

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.booking import lookup
from portal.db import unit_of_work
from portal.extensions import db
from portal.ledger.check import verify_ledger
from tests.booking.factories import NOW, at, build_world, quoted_desk_payment, start_gateway
from tests.refunds.helpers import (
    book_and_pay,
    consult_and_lab,
    move_paid_at_gateway,
    quoted_admin_cancel,
)
from tests.threads import lock_waiters, run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    yield gw
    gw.close()


def _second_admin():
    user = User(email="admin2@example.com", name="Admin Two", role="admin", password_hash=None)
    db.session.add(user)
    db.session.commit()
    return user.id


def _outcome(x):
    return f"error: {x!r}" if isinstance(x, Exception) else x


# --- 1. completing an item while money work locks its visit: a deadlock, a 500 ---------------


@pytest.mark.parametrize("other", ["further_refund", "approve_override", "cancel_same_item"])
def test_completing_an_item_while_an_admin_refunds_another_item_of_the_visit(
    pg_app, pg_gateway, clock, monkeypatch, other
):
    """Visit: A cancelled (by the clinic, an override above the calculated amount waiting
    for a second admin), B started today. The provider completes B (the visit becomes
    COMPLETED) at the moment an admin asks a further refund on A, or a second admin
    approves A's override. Completion locks the item then updates the visit; the refund
    locks the visit then every item: PostgreSQL's deadlock detector aborts one of them
    (an unhandled OperationalError: a 500). Both should succeed, one after the other."""
    from portal.payouts import completion
    from portal.refunds import approvals

    with pg_app.app_context():
        world = build_world()
        admin2 = _second_admin()
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(
            world,
            patient,
            pg_gateway,
            consult_and_lab(world),
        )
        a, b = visit.items[0].id, visit.items[1].id
        visit_id = visit.id
        admin = db.session.get(User, world.admin)
        clock.move_to(at(4, 10) - timedelta(hours=30))  # 75 % - Rs 100: an override is above
        c = quoted_admin_cancel(
            admin,
            a,
            "Doctor unavailable that day",
            mode="patient",
            override=visit.items[0].paid_amount,
        )
        approval_id = db.session.scalar(
            sa.select(approvals.RefundApproval.id).where(approvals.RefundApproval.booking_id == a)
        )
        if other == "further_refund":  # no approval pending for a further refund
            approvals.reject_override(db.session.get(User, admin2), approval_id)
        assert c.refund < visit.items[0].paid_amount
        clock.move_to(at(4, 11) - timedelta(minutes=10))
        completion.start_booking(admin, b)
        clock.move_to(at(4, 11))  # completed from its start, not before
        db.session.remove()

    locked, real_post = threading.Event(), completion.post_earning

    def post_then_wait(booking):
        out = real_post(booking)
        locked.set()
        wait_for_lock_waiters(db.engine)  # the refund now holds the visit, waits for B
        return out

    monkeypatch.setattr(completion, "post_earning", post_then_wait)

    def complete():
        try:
            completion.complete_booking(db.session.get(User, world.admin), b)
            return "completed"
        finally:
            locked.set()

    def refund():
        locked.wait(10)
        if other == "further_refund":
            approvals.request_further_refund(
                db.session.get(User, world.admin), a, 100_00, "Goodwill for the trouble caused"
            )
        elif other == "approve_override":
            approvals.approve_override(db.session.get(User, admin2), approval_id)
        else:  # an admin cancels B, which is being completed: must be told it started
            from portal.refunds.common import CancellationError

            try:
                quoted_admin_cancel(
                    db.session.get(User, admin2), b, "Patient did not come", mode="clinic"
                )
            except CancellationError as exc:
                return f"refused: {exc.message}"
        return "refunded"

    results = [_outcome(r) for r in run_together(pg_app, complete, refund)]
    expected = (
        "refused: This appointment has already started"
        if other == "cancel_same_item"
        else "refunded"
    )
    assert results == ["completed", expected], results
    with pg_app.app_context():
        assert lookup.get_visit(visit_id).status == "COMPLETED"
        assert verify_ledger() == []
        db.session.remove()


# --- providers owed money, for the payout runs --------------------------------------------


def _payout_providers(n, schedule="WEEKLY", payable=1_000_00):
    """``n`` providers on ``schedule`` with a validated fund account and ``payable`` paise
    owed (posted as earnings). Returns their ids."""
    from portal.catalog.models import Provider
    from portal.ledger import accounts as chart
    from portal.ledger.service import credit, debit, post
    from portal.payouts.models import FundAccount

    ids = []
    for i in range(n):
        user = User(email=f"doc{i}@example.com", name=f"Doc {i}", role="provider")
        db.session.add(user)
        db.session.flush()
        provider = Provider(
            user_id=user.id, display_name=f"Dr {i}", commission_bps=500, payout_schedule=schedule
        )
        db.session.add(provider)
        db.session.flush()
        db.session.add(
            FundAccount(
                provider_id=provider.id,
                kind="bank_account",
                holder_name="Asha Rao",
                ifsc="HDFC0001234",
                account_last4="5678",
                razorpay_contact_id=f"cont_{i}",
                razorpay_fund_account_id=f"fa_{i}",
                status="VALIDATED",
                current=True,
            )
        )
        post(
            "booking_completed",
            [
                debit(chart.UNEARNED_FEES, payable),
                credit(chart.provider_payable(provider.id), payable),
            ],
            reference=("provider", provider.id),
            idempotency_key=f"earn:{provider.id}",
        )
        ids.append(provider.id)
    db.session.commit()
    return ids


# --- 3. the provider cancels while the reschedule fee's capture is being applied -------------


@pytest.mark.parametrize("first", ["capture", "cancel"])
def test_provider_cancel_racing_the_reschedule_fee_capture(pg_app, clock, first):
    """Whichever commits first, the patient gets the reschedule fee back exactly once
    (given back by the provider's cancellation, or put in the wallet by the capture), the
    item ends CANCELLED with no live claim, and the ledger is sound."""
    from dataclasses import replace

    from portal.booking import reschedule_payment
    from portal.booking.models import IndividualBooking, Reschedule, SlotClaim
    from portal.ledger import accounts as chart
    from portal.ledger.service import balance
    from portal.refunds import cancel as refunds_cancel
    from portal.refunds import previews, shown
    from portal.refunds.models import Refund

    gateway = start_gateway(pg_app, deliver_webhooks=False)
    try:
        with pg_app.app_context():
            world = build_world()
            paid = move_paid_at_gateway(world, gateway, clock)
            item_id, patient_id, resched_id = paid.item_id, paid.patient_id, paid.resched_id
            fee, payment_id = paid.fee, paid.payment_id
            doctor_user = db.session.scalar(
                sa.select(User).where(User.email == "provider1@example.com")
            ).id
            # The doctor's page: before the move when the cancel goes first, at the new
            # time when the capture (which applies the move) does (its required ``shown``).
            item = db.session.get(IndividualBooking, item_id)
            page = shown.shown_for(item, previews.preview_provider(item))
            if first == "capture":
                new_start = db.session.get(Reschedule, resched_id).new_start
                page = replace(page, start=int(new_start.timestamp()))
            db.session.remove()
        inside = threading.Event()

        def capture():
            try:
                if first == "capture":
                    with unit_of_work():
                        reschedule_payment.payment_captured(resched_id, payment_id, fee)
                        inside.set()
                        wait_for_lock_waiters(db.engine)
                else:
                    inside.wait(10)
                    reschedule_payment.payment_captured(resched_id, payment_id, fee)
                return "captured"
            finally:
                inside.set()

        def cancel():
            try:
                who = db.session.get(User, doctor_user)
                if first == "cancel":
                    with unit_of_work():
                        refunds_cancel.cancel_as_provider(
                            who, item_id, "Called away to surgery", shown=page
                        )
                        inside.set()
                        wait_for_lock_waiters(db.engine)
                else:
                    inside.wait(10)
                    refunds_cancel.cancel_as_provider(
                        who, item_id, "Called away to surgery", shown=page
                    )
                return "cancelled"
            finally:
                inside.set()

        results = [_outcome(r) for r in run_together(pg_app, capture, cancel)]
        assert results == ["captured", "cancelled"], results
        with pg_app.app_context():
            item = db.session.get(IndividualBooking, item_id)
            resched = db.session.get(Reschedule, resched_id)
            fee_refunds = db.session.scalars(
                sa.select(Refund).where(Refund.reschedule_id == resched_id)
            ).all()
            wallet = balance(chart.patient_wallet(patient_id))
            live = db.session.scalars(
                sa.select(SlotClaim).where(
                    SlotClaim.booking_id == item_id, SlotClaim.live.is_(True)
                )
            ).all()
            problems = verify_ledger()
            db.session.remove()
        assert item.status == "CANCELLED" and not live, (item.status, live)
        fee_back = sum(r.amount for r in fee_refunds) + wallet
        assert fee_back == fee, (
            resched.status,
            [(r.destination, r.amount) for r in fee_refunds],
            wallet,
        )
        assert problems == []
    finally:
        gateway.close()


# --- 4. the payment link is paid while the desk records a cash payment -----------------------


@pytest.mark.parametrize("first", ["link", "desk"])
def test_link_capture_racing_a_desk_payment(pg_app, clock, first):
    """One of them pays the visit; the other is refused with the visit's message (desk) or
    its money goes to the wallet with the visit flagged (a late link payment): the visit
    is confirmed once, and the ledger is sound."""
    from portal.booking import links, payment_events, visits
    from portal.booking.errors import BookingError
    from portal.ledger import accounts as chart
    from portal.ledger.models import LedgerTransaction
    from portal.ledger.service import balance
    from portal.payments.models import Payment

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
        inside = threading.Event()

        def capture():
            try:
                if first == "link":
                    with unit_of_work():
                        payment_events.capture(
                            db.session.get(Payment, link_id),
                            razorpay_payment_id="pay_LINK0001",
                            amount=amount,
                            method="upi",
                        )
                        inside.set()
                        wait_for_lock_waiters(db.engine)
                else:
                    inside.wait(10)
                    payment_events.capture(
                        db.session.get(Payment, link_id),
                        razorpay_payment_id="pay_LINK0001",
                        amount=amount,
                        method="upi",
                    )
                return "captured"
            finally:
                inside.set()

        def desk():
            try:
                if first == "desk":
                    with unit_of_work():
                        quoted_desk_payment(db.session.get(User, world.admin), visit_id, "R-77")
                        inside.set()
                        wait_for_lock_waiters(db.engine)
                else:
                    inside.wait(10)
                    quoted_desk_payment(db.session.get(User, world.admin), visit_id, "R-77")
                return "desk"
            except BookingError as exc:
                return f"refused: {exc.message}"
            finally:
                inside.set()

        results = [_outcome(r) for r in run_together(pg_app, capture, desk)]
        with pg_app.app_context():
            confirmations = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(LedgerTransaction)
                .where(LedgerTransaction.kind == "visit_confirmed")
            )
            wallet = balance(chart.patient_wallet(world.patients[0]))
            status = lookup.get_visit(visit_id).status
            problems = verify_ledger()
            db.session.remove()
        assert status == "CONFIRMED" and confirmations == 1, (results, status, confirmations)
        if first == "link":
            assert results[0] == "captured" and results[1].startswith("refused"), results
            assert wallet == 0
        else:
            assert results == ["captured", "desk"], results
            assert wallet == amount  # the late link payment is kept for the patient
        assert problems == []
    finally:
        gateway.close()


# --- 5. a provider's cancellation penalty posts while the weekly run pays them ---------------


def test_a_penalty_posted_during_the_weekly_run_does_not_cost_the_provider_their_payout(
    pg_app, monkeypatch, clock
):
    """Provider owed ₹1,000. The weekly run locks the provider row and reads the payable
    (₹1,000); the provider's cancellation penalty (₹250, which takes no lock on the
    provider) commits; the run's posting of ₹1,000 is then refused by its own
    non-negative guard and the provider is skipped ("The payable changed while the payout
    was being made; try again.") and carried forward a whole cycle with ₹750 due, though
    ₹750 is above the ₹500 minimum. Right: pay ₹750 (read the payable under the lock the
    guard takes, or re-read it when the guard refuses)."""
    from portal.ledger import accounts as chart
    from portal.ledger.service import balance, credit, debit, post
    from portal.payouts import create, runs
    from portal.payouts.models import Payout, PayoutRun

    monkeypatch.setattr(create, "enqueue", lambda *a, **k: None)  # no RazorpayX here
    with pg_app.app_context():
        (pid,) = _payout_providers(1)
        db.session.remove()

    balance_read, penalty_done = threading.Event(), threading.Event()
    real_tds = create.tds_for_next

    def tds_after_the_penalty(*a, **k):  # runs right after the payable was read
        balance_read.set()
        penalty_done.wait(10)
        return real_tds(*a, **k)

    monkeypatch.setattr(create, "tds_for_next", tds_after_the_penalty)

    def run():
        return runs.run_cycle("WEEKLY", runs.ist_today()).key

    def penalty():
        balance_read.wait(10)
        try:
            with unit_of_work():
                post(
                    "provider_penalty",
                    [
                        debit(chart.provider_payable(pid), 250_00),
                        credit(chart.PENALTY_REVENUE, 250_00),
                    ],
                    reference=("cancellation", 1),
                    idempotency_key="penalty:1",
                )
            return "penalty"
        finally:
            penalty_done.set()

    results = [_outcome(r) for r in run_together(pg_app, run, penalty)]
    with pg_app.app_context():
        payouts = [(p.gross, p.status) for p in db.session.scalars(sa.select(Payout))]
        skipped = [s["reason"] for r in db.session.scalars(sa.select(PayoutRun)) for s in r.skipped]
        left = balance(chart.provider_payable(pid))
        problems = verify_ledger()
        db.session.remove()
    assert problems == []
    assert payouts == [(750_00, "QUEUED")] and left == 0, (results, payouts, skipped, left)


# --- 6. an admin accepts a reconciliation case while a run rewrites it -----------------------


def test_a_case_accepted_while_a_run_writes_keeps_the_admins_resolution(pg_app, monkeypatch, clock):
    """A capture only the gateway knows is PENDING (within the grace). Past the grace a
    run turns it into a DISCREPANCY; between reading the stored cases (no lock) and its
    upsert (ON CONFLICT DO UPDATE, unconditional), an admin accepts the case with a note.
    The run's upsert then writes DISCREPANCY over RESOLVED and clears the resolution, the
    note and who resolved it (and alerts). docs/reconciliation / resolve.py: "A resolved
    case stays as it is on later runs until the gateway's record changes again". The accept
    now locks the case's visit first, as the run does, so it waits for the run and lands on
    the case as written (a case without a visit: tests/reconcile's suspense tests)."""
    from portal.reconcile import cases as recon_cases
    from portal.reconcile import resolve
    from portal.reconcile.models import ReconCase
    from tests.reconcile import helpers as rh

    gateway = start_gateway(pg_app)
    try:
        with pg_app.app_context():
            world = build_world()
            _visit_id, pay_id = rh.paid_only_at_gateway(
                world, lambda uid: db.session.get(User, uid), gateway
            )
            clock.shift(20)
            rh.run_day(world)
            case = rh.case_for(pay_id, kind="payment")
            assert case.status == "pending", case.status
            case_id = case.id
            rh.later(clock)  # past the grace: the next run makes it a discrepancy
            db.session.remove()

        read, accepted = threading.Event(), threading.Event()
        real_existing = recon_cases.existing

        def existing_then_wait(kind, refs):
            found = real_existing(kind, refs)
            if kind == "payment":
                read.set()
                # The accept locks the case's visit first, as the run did before this read,
                # so it waits for the run: go on once it has accepted or is seen waiting
                # (waiting out the 10 s here raced the accept's lock timeout: a flake).
                deadline = time.monotonic() + 10
                while not accepted.is_set() and time.monotonic() < deadline:
                    if lock_waiters(db.engine):
                        break
                    time.sleep(0.01)
            return found

        monkeypatch.setattr(recon_cases, "existing", existing_then_wait)

        def run():
            return rh.run_day(world).status

        def accept():
            read.wait(10)
            try:
                resolve.accept(
                    db.session.get(User, world.admin), case_id, "Checked with the bank: settled"
                )
                return "accepted"
            finally:
                accepted.set()

        results = [_outcome(r) for r in run_together(pg_app, run, accept)]
        with pg_app.app_context():
            case = db.session.get(ReconCase, case_id)
            seen = (case.status, case.resolution, case.note)
            db.session.remove()
        assert results == ["finished", "accepted"], results
        assert seen == ("resolved", "accepted", "Checked with the bank: settled"), seen
    finally:
        gateway.close()


# --- 7. the last two items of a visit completed at the same moment ---------------------------


def test_two_items_completed_at_once_leave_the_visit_completed(
    pg_app, pg_gateway, clock, monkeypatch
):
    """A visit of two started items (a consultation and a lab test); their providers mark
    them completed at the same moment. Each completion locked only its own item and derived
    the visit's status from the items as committed, so each saw the other item still
    STARTED: the visit stayed CONFIRMED with every item COMPLETED (POLICY: "all closed
    with at least one completed → COMPLETED"). Completions now lock the visit first."""
    from portal.payouts import completion

    with pg_app.app_context():
        world = build_world()
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(
            world,
            patient,
            pg_gateway,
            consult_and_lab(world),
        )
        visit_id, (b, c) = visit.id, [i.id for i in visit.items]
        clock.move_to(at(4, 10, 30))
        admin = db.session.get(User, world.admin)
        completion.start_booking(admin, b)
        completion.start_booking(admin, c)
        clock.move_to(at(4, 11))  # both completed from their starts (10:00, 11:00)
        db.session.commit()
        db.session.remove()

    with pg_app.app_context():
        engine = db.engine
    first = threading.Lock()
    real = completion.refresh_status

    def refresh_then_wait(visit):
        out = real(visit)
        # The first to derive the visit's status holds on until the other is on its way
        # (waiting for a lock: the visit's, now): before, both derived it from the other
        # item still STARTED and both committed CONFIRMED.
        if first.acquire(blocking=False):
            wait_for_lock_waiters(engine)
        return out

    monkeypatch.setattr(completion, "refresh_status", refresh_then_wait)

    def complete(item_id):
        def body():
            completion.complete_booking(db.session.get(User, world.admin), item_id)
            return "completed"

        return body

    results = [_outcome(r) for r in run_together(pg_app, complete(b), complete(c))]
    assert results == ["completed", "completed"], results
    with pg_app.app_context():
        visit = lookup.get_visit(visit_id)
        seen = (visit.status, sorted(i.status for i in visit.items))
        db.session.remove()
    assert seen == ("COMPLETED", ["COMPLETED", "COMPLETED"]), seen


# --- 8. (checked, fine) two second admins decide one override at once -------------------------


@pytest.mark.parametrize("second", ["approve", "reject"])
def test_two_admins_deciding_one_override_at_once(pg_app, pg_gateway, clock, second):
    from portal.refunds import approvals
    from portal.refunds.common import CancellationError
    from portal.refunds.models import Refund

    with pg_app.app_context():
        world = build_world()
        a2 = _second_admin()
        a3 = User(email="admin3@example.com", name="Admin Three", role="admin")
        db.session.add(a3)
        db.session.commit()
        a3 = a3.id
        patient = db.session.get(User, world.patients[0])
        visit = book_and_pay(
            world, patient, pg_gateway, [(world.consult, [world.doctors[0]], at(4, 10))]
        )
        item = visit.items[0]
        clock.move_to(at(4, 10) - timedelta(hours=30))
        quoted_admin_cancel(
            db.session.get(User, world.admin),
            item.id,
            "Doctor unavailable that day",
            override=item.paid_amount,
        )
        approval_id = db.session.scalar(sa.select(approvals.RefundApproval.id))
        item_id, paid = item.id, item.paid_amount
        db.session.remove()
    barrier = threading.Barrier(2)

    def decide(admin_id, how):
        def body():
            barrier.wait()
            try:
                fn = approvals.approve_override if how == "approve" else approvals.reject_override
                return fn(db.session.get(User, admin_id), approval_id).status
            except CancellationError as exc:
                return f"refused: {exc.message}"

        return body

    results = [_outcome(r) for r in run_together(pg_app, decide(a2, "approve"), decide(a3, second))]
    assert sorted(results)[-1].startswith("refused"), results
    assert any(r in ("APPROVED", "REJECTED") for r in results), results
    with pg_app.app_context():
        refunded = sum(
            r.amount
            for r in db.session.scalars(
                sa.select(Refund).where(Refund.booking_id == item_id, Refund.superseded.is_(False))
            )
        )
        assert refunded <= paid
        if "APPROVED" in results:
            assert refunded == paid
        assert verify_ledger() == []
        db.session.remove()


# --- 9. a fee paid for a move the desk replaced meanwhile: money to the wallet, patient never told


def test_fee_paid_for_a_request_the_desk_replaced_meanwhile_tells_the_patient(pg_app, clock):
    """The patient starts an online reschedule (new time held, Razorpay order open). While
    they pay, an admin moves the booking at the desk (the patient phoned), which replaces
    the pending request. The capture then finds the request EXPIRED ("Replaced by a newer
    reschedule request") and puts the fee in the wallet (`_unapplied`), but sends no event:
    the patient hears nothing. docs/refunds.md "Reschedule": "A payment that arrives for
    an expired, replaced or failed request moves nothing: the money goes to the wallet
    (`reschedule_unapplied`) and the patient is told" (the FAILED path does send
    `reschedule_failed`; the expired/replaced one does not)."""
    from portal.booking import reschedule as rs
    from portal.booking import reschedule_payment
    from portal.booking.models import Reschedule
    from portal.ledger import accounts as chart
    from portal.ledger.service import balance
    from portal.notify.models import Notification

    gateway = start_gateway(pg_app, deliver_webhooks=False)
    try:
        with pg_app.app_context():
            world = build_world()
            paid = move_paid_at_gateway(world, gateway, clock)
            item_id, patient_id, resched_id = paid.item_id, paid.patient_id, paid.resched_id
            fee, payment_id = paid.fee, paid.payment_id
            before = (
                db.session.scalar(
                    sa.select(sa.func.max(Notification.id)).where(
                        Notification.user_id == patient_id
                    )
                )
                or 0
            )
            db.session.remove()
        inside = threading.Event()

        def desk():
            try:
                with unit_of_work():
                    rs.reschedule(
                        db.session.get(User, world.admin),
                        item_id,
                        at(8, 11),
                        pay_with="desk",
                        receipt_no="R-9",
                        expected_fee=fee,  # the pending move's, quoted at this same moment
                        shown_start=at(4, 10),  # where the pending move left it
                    )
                    inside.set()
                    wait_for_lock_waiters(db.engine)
                return "moved"
            finally:
                inside.set()

        def capture():
            inside.wait(10)
            return reschedule_payment.payment_captured(resched_id, payment_id, fee).status

        results = [_outcome(r) for r in run_together(pg_app, desk, capture)]
        with pg_app.app_context():
            wallet = balance(chart.patient_wallet(patient_id))
            status = db.session.get(Reschedule, resched_id).status
            notes = [
                (n.kind, n.title, n.body)
                for n in db.session.scalars(
                    sa.select(Notification).where(
                        Notification.user_id == patient_id, Notification.id > before
                    )
                )
            ]
            problems = verify_ledger()
            db.session.remove()
        assert results == ["moved", "EXPIRED"], results
        assert wallet == fee and status == "EXPIRED" and problems == []
        told = [n for n in notes if "wallet" in (n[2] or "").lower()]
        assert told, notes
    finally:
        gateway.close()
