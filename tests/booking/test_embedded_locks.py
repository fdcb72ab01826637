"""Two threads at once, as the embedded mode (``make run``) has them: a request, the
in-process job thread and the scheduler thread, each with its own connection. On SQLite
these showed the embedded mode's lock defects (docs/architecture.md, "The embedded mode"):

* lock order: a webhook's job (or an admin's deactivation) had written, then waited for
  the process lock a patient's hold held while the hold waited for SQLite's write lock:
  10 s, then "database is locked" for the patient;
* reads in autocommit: the holds sweep read a visit, the webhook's job confirmed it, and
  the sweep confirmed it again from what it had read (a second invoice number); a late
  capture's revival and a hold of the same time both committed (a double booking).

On PostgreSQL the same steps meet the database's own locks and must end the same way."""

import threading
import time
from datetime import timedelta

import sqlalchemy as sa

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking import payment_events, visits
from portal.booking.models import MasterBooking
from portal.booking.tasks import expire_holds
from portal.catalog import time_lock
from portal.catalog.models import Provider
from portal.extensions import db
from portal.payments.models import Payment, PaymentAttempt
from tests.booking.factories import at, quoted_checkout
from tests.threads import run_together


def _hold(world, patient, doctor, start):
    """A patient's hold as a request makes it (``claims.claiming()``: the process lock on
    SQLite, then its checks, then its writes): ("held", item id, seconds) or ("failed",
    the error, seconds)."""
    user = db.session.get(User, world.patients[patient])
    started = time.monotonic()
    try:
        item = visits.add_item(
            user, patient_id=user.id, service_id=world.consult,
            provider_ids=[world.doctors[doctor]], clinic_id=world.clinic, start_at=start,
        )  # fmt: skip
        return ("held", item.id, round(time.monotonic() - started, 1))
    except Exception as exc:  # noqa: BLE001 -- returned to the test
        return ("failed", repr(exc)[:120], round(time.monotonic() - started, 1))


def _deliver(gateway, job_thread, hold_locked):
    """The webhook job's thread, once the hold holds its lock: the sandbox delivers, the
    portal stores the events and runs their jobs (inline, in this thread)."""
    job_thread["id"] = threading.get_ident()
    assert hold_locked.wait(10)
    started = time.monotonic()
    gateway.deliver()
    return ("delivered", round(time.monotonic() - started, 1))


def test_admin_deactivating_a_provider_account_and_a_patient_hold_do_not_stall(
    app, world, monkeypatch
):
    """accounts._set_active writes the audit row (INSERT: SQLite's write lock) and only
    then sends account_deactivating, whose catalog receiver calls time_lock.hold_to_end()
    (SQLITE_LOCK). A patient's hold (claims.claiming(): SQLITE_LOCK first) that reaches
    its first write meanwhile waits for the write lock, which the admin's transaction
    keeps while it waits for SQLITE_LOCK: a circle that only the hold's busy_timeout
    breaks (10 s, then "database is locked", a 500 for the patient)."""
    doctor_user = db.session.scalar(
        sa.select(Provider.user_id).where(Provider.id == world.doctors[0])
    )
    db.session.remove()
    hold_locked, admin_wrote = threading.Event(), threading.Event()

    real_check_slot = visits._check_slot

    def check_slot(*args, **kwargs):  # the hold, under SQLITE_LOCK, before its first write
        hold_locked.set()
        admin_wrote.wait(3)  # (with a fix the admin may never get there first)
        time.sleep(0.2)  # the admin's thread is now blocked on SQLITE_LOCK
        return real_check_slot(*args, **kwargs)

    real_hold_to_end = time_lock.hold_to_end

    def hold_to_end():  # the admin's transaction has written its audit row by now
        admin_wrote.set()
        return real_hold_to_end()

    monkeypatch.setattr(visits, "_check_slot", check_slot)
    monkeypatch.setattr(time_lock, "hold_to_end", hold_to_end)

    def hold():
        return _hold(world, patient=0, doctor=1, start=at(1, 10))

    def deactivate():
        assert hold_locked.wait(10)
        admin = db.session.get(User, world.admin)
        started = time.monotonic()
        accounts.deactivate_user(admin, doctor_user)
        return ("deactivated", round(time.monotonic() - started, 1))

    hold_result, admin_result = run_together(app, hold, deactivate)
    print("hold:", hold_result, "admin:", admin_result)
    assert hold_result[0] == "held", hold_result


def test_a_late_capture_webhook_job_and_a_patient_hold_do_not_stall(
    app, world, users, gateway, clock, monkeypatch
):
    """The webhook's job (jobs.run_outbox_item → process_webhook_event: a nested unit of
    work, BEGIN IMMEDIATE and the UPDATE claiming the event: SQLite's write lock) handles
    a capture that arrived after the hold expired: payment_events._late takes
    claims.serialized() (SQLITE_LOCK) to revive the visit. A second patient's hold in a
    request holds SQLITE_LOCK and reaches its first write: each waits for the other."""
    from datetime import timedelta

    from portal.booking import claims, lookup
    from portal.booking.tasks import expire_holds

    patient = users(world.patients[0])
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    order = quoted_checkout(
        patient, visit_id, callback_url="http://portal.test/visits/callback"
    ).payment.razorpay_order_id
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    gateway.pay(order)  # captured at Razorpay; its webhooks wait in the sandbox
    db.session.remove()

    hold_locked, job_at_lock = threading.Event(), threading.Event()
    job_thread = {}
    real_check_slot, real_serialized = visits._check_slot, claims.serialized

    def check_slot(*args, **kwargs):
        hold_locked.set()
        job_at_lock.wait(3)  # (with a fix the job may never get there first)
        time.sleep(0.2)  # the job's thread is now blocked on SQLITE_LOCK
        return real_check_slot(*args, **kwargs)

    def serialized():
        if threading.get_ident() == job_thread.get("id"):
            job_at_lock.set()
        return real_serialized()

    monkeypatch.setattr(visits, "_check_slot", check_slot)
    monkeypatch.setattr(claims, "serialized", serialized)

    def hold():
        return _hold(world, patient=1, doctor=1, start=at(1, 11))

    def webhook():
        return _deliver(gateway, job_thread, hold_locked)

    hold_result, webhook_result = run_together(app, hold, webhook)
    print("hold:", hold_result, "webhook:", webhook_result)
    with app.app_context():
        print("visit:", lookup.get_visit(visit_id).status)
        db.session.remove()
    assert job_at_lock.is_set(), "the job never reached _late's lock"
    assert hold_result[0] == "held", hold_result


def test_a_reschedule_fee_webhook_job_and_a_patient_hold_do_not_stall(
    app, world, gateway, clock, monkeypatch
):
    """The common path, not a late one: every reschedule fee's webhook job
    (process_webhook_event: BEGIN IMMEDIATE + the event's UPDATE) calls
    reschedule_payment.payment_captured, which opens ``claims.claiming()`` (SQLITE_LOCK)
    while the job's transaction holds SQLite's write lock."""
    from portal.booking import claims
    from tests.refunds.helpers import move_paid_at_gateway

    move_paid_at_gateway(world, gateway, clock)  # fee paid at Razorpay, webhook pending
    db.session.remove()

    hold_locked, job_at_lock = threading.Event(), threading.Event()
    job_thread = {}
    real_check_slot, real_claiming = visits._check_slot, claims.claiming

    def check_slot(*args, **kwargs):
        hold_locked.set()
        job_at_lock.wait(3)  # (with a fix the job may never get there first)
        time.sleep(0.2)  # the job's thread is now blocked on SQLITE_LOCK
        return real_check_slot(*args, **kwargs)

    def claiming():
        if threading.get_ident() == job_thread.get("id"):
            job_at_lock.set()
        return real_claiming()

    monkeypatch.setattr(visits, "_check_slot", check_slot)
    monkeypatch.setattr(claims, "claiming", claiming)

    def hold():
        return _hold(world, patient=1, doctor=1, start=at(3, 11))

    def webhook():
        return _deliver(gateway, job_thread, hold_locked)

    hold_result, webhook_result = run_together(app, hold, webhook)
    print("hold:", hold_result, "webhook:", webhook_result)
    assert job_at_lock.is_set(), "the job never reached payment_captured's lock"
    assert hold_result[0] == "held", hold_result


def test_the_holds_sweep_and_the_webhook_job_confirm_a_visit_once(
    app, world, users, gateway, clock, monkeypatch
):
    """The patient pays as the order's 30-minute hold runs out. The sweep asks Razorpay, finds the
    capture and calls capture() (outermost: its reads in autocommit); meanwhile the webhook's
    job captures the same payment and commits. The sweep's first write then waits for that
    commit and goes on from what it read before: it confirms the visit a second time."""
    patient = users(world.patients[0])
    visit_id = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=at(1, 10),
    ).master_id  # fmt: skip
    order = quoted_checkout(
        patient, visit_id, callback_url="http://portal.test/visits/callback"
    ).payment.razorpay_order_id
    gateway.pay(order)  # captured at Razorpay at the last minute; its webhooks not yet in
    clock.shift(timedelta(minutes=31))  # the order's hold has run out: the sweep looks at it
    db.session.remove()

    sweep_read, job_done = threading.Event(), threading.Event()
    sweep_thread = {}
    real_seen = payment_events._seen

    def seen(visit, razorpay_payment_id):
        answer = real_seen(visit, razorpay_payment_id)
        if threading.get_ident() == sweep_thread.get("id"):
            sweep_read.set()  # the sweep has read the visit and its payments
            job_done.wait(3)  # (with a fix the job waits for this one instead)
        return answer

    monkeypatch.setattr(payment_events, "_seen", seen)

    def sweep():  # the scheduler thread's booking.expire_holds
        sweep_thread["id"] = threading.get_ident()
        return expire_holds()

    def webhook():  # the job thread's gateway.process_webhook (run inline here)
        assert sweep_read.wait(20)
        gateway.deliver()
        job_done.set()
        return "delivered"

    print(run_together(app, sweep, webhook))
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        confirms = db.session.scalars(
            sa.select(AuditEntry.after).where(
                AuditEntry.action == "visit.confirm", AuditEntry.object_id == str(visit_id)
            )
        ).all()
        attempts = db.session.scalars(
            sa.select(PaymentAttempt.event)
            .join(Payment, Payment.id == PaymentAttempt.payment_id)
            .where(Payment.master_id == visit_id)
            .order_by(PaymentAttempt.id)
        ).all()
        print("invoice:", visit.invoice_no, "status:", visit.status)
        print("confirms:", confirms)
        print("attempts:", attempts)
        db.session.remove()
    assert len(confirms) == 1, confirms
    assert confirms[0]["invoice_no"] == visit.invoice_no


def test_a_late_capture_revival_and_a_hold_of_the_same_time_never_both_win(
    app, world, users, gateway, clock, monkeypatch
):
    """A capture after the hold expired revives the visit (payment_events._late). On
    SQLite the revival let the process lock go at the end of its ``claims.serialized()``
    block, before the webhook job committed the revived claims; a hold of the same
    doctor's time checked in that gap (it saw no live claim), waited for the write lock,
    and committed after the revival: two live claims of one doctor's time (found by a
    review driving ``make run`` over HTTP)."""
    from portal.booking.models import SlotClaim

    start = at(4, 10)
    patient = users(world.patients[0])
    item = visits.add_item(
        patient, patient_id=patient.id, service_id=world.consult,
        provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=start,
    )  # fmt: skip
    order = quoted_checkout(
        patient, item.master_id, callback_url="http://portal.test/cb"
    ).payment.razorpay_order_id
    clock.shift(timedelta(minutes=31))
    assert expire_holds() == 1
    gateway.pay(order)  # captured at Razorpay after the hold ran out; webhooks pending
    db.session.commit()
    db.session.remove()

    revived, hold_read = threading.Event(), threading.Event()
    real_extra_capture, real_in_the_way = payment_events._extra_capture, visits._claims_in_the_way

    def extra_capture(*args, **kwargs):  # the revival's claims are made, not committed
        if not revived.is_set():
            revived.set()
            hold_read.wait(3)  # (once fixed, the hold waits for this commit instead)
        return real_extra_capture(*args, **kwargs)

    def in_the_way(*args, **kwargs):  # the hold has read the claims in its way
        rows = real_in_the_way(*args, **kwargs)
        if threading.current_thread().name == "hold":
            hold_read.set()
        return rows

    monkeypatch.setattr(payment_events, "_extra_capture", extra_capture)
    monkeypatch.setattr(visits, "_claims_in_the_way", in_the_way)

    def webhook_job():
        gateway.deliver()
        return "delivered"

    def hold():
        threading.current_thread().name = "hold"
        assert revived.wait(20)
        other = db.session.get(User, world.patients[1])
        try:
            visits.add_item(
                other, patient_id=other.id, service_id=world.consult,
                provider_ids=[world.doctors[0]], clinic_id=world.clinic, start_at=start,
            )  # fmt: skip
            return "held"
        except Exception as exc:  # noqa: BLE001 -- the lost race is the expected answer
            return type(exc).__name__

    results = run_together(app, webhook_job, hold, timeout=60)
    with app.app_context():
        live = db.session.scalars(
            sa.select(SlotClaim).where(
                SlotClaim.subject == f"provider:{world.doctors[0]}", SlotClaim.live.is_(True)
            )
        ).all()
        claimed = sorted({c.booking_id for c in live})
        db.session.remove()
    assert len(claimed) == 1, (results, claimed)
    assert results[1] == "SlotUnavailable", results
