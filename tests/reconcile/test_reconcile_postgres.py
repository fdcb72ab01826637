"""On the real PostgreSQL: reconciliation runs concurrent with the webhooks for the same
payments and refunds end with every case correct and no duplicates. Fails (never skips)
without PostgreSQL."""

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking import lookup, visits
from portal.extensions import db
from portal.gateway import get_payin
from portal.gateway.confirm import confirmed_refund
from portal.ledger.accounts import RECONCILIATION_SUSPENSE
from portal.ledger.check import verify_gateway_clearing
from portal.ledger.service import balance
from portal.payments.models import Payment
from portal.reconcile import ours, recheck, resolve
from portal.reconcile import run as recon
from portal.reconcile.models import ReconCase, ReconRun
from portal.reconcile.window import day_window
from portal.refunds import execute as refunds
from portal.refunds import lookup as refunds_lookup
from portal.refunds.models import Refund
from tests.booking.factories import NOW, at, build_world, quoted_checkout, start_gateway
from tests.reconcile.helpers import case_for, later, link_paid_only_at_gateway, paid, run_day
from tests.refunds.helpers import book_and_pay, quoted_cancel
from tests.threads import lock_waiters, run_together

pytestmark = pytest.mark.postgres
HELD = 6


@pytest.fixture
def pg_gateway(pg_app):
    gw = start_gateway(pg_app)
    saved = pg_app.config.get("RECON_PENDING_GRACE_SECONDS")
    # No grace: a capture the run sees at the gateway but not in our rows is a discrepancy
    # at once, so a run that read our side too early would leave a wrong case behind.
    pg_app.config["RECON_PENDING_GRACE_SECONDS"] = 0
    yield gw
    pg_app.config["RECON_PENDING_GRACE_SECONDS"] = saved
    gw.close()


def _hold(world, gateway):
    """Visits paid at the gateway whose webhooks and callbacks have not arrived yet, and a
    cancelled visit whose refund is processed at the gateway, its webhook not yet sent."""
    patient = db.session.get(User, world.patients[0])
    paid = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 9))])
    quoted_cancel(patient, paid.id, [paid.items[0].id])
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(paid.id)
    gateway.sandbox.advance(10)  # processed at the gateway; refund.processed is queued
    for n in range(HELD):
        buyer = db.session.get(User, world.patients[n % 3])
        item = visits.add_item(
            buyer,
            patient_id=buyer.id,
            service_id=world.consult,
            provider_ids=[world.doctors[n % 2]],
            clinic_id=world.clinic,
            start_at=at(1 + n // 2, 10 + n % 2),
        )
        result = quoted_checkout(buyer, item.master_id, 0, callback_url="http://portal.test/cb")
        gateway.pay(result.payment.razorpay_order_id)  # webhooks queued, callback never made
    return refund.id


def test_runs_concurrent_with_webhooks_end_with_every_case_correct(pg_app, pg_gateway, clock):
    with pg_app.app_context():
        world = build_world()
        refund_id = _hold(world, pg_gateway)
        # A run lists records up to the second before it starts (the sandbox's clock is
        # 10 s ahead after advance()).
        clock.shift(20)
        admin = db.session.get(User, world.admin)
        start, end = day_window(NOW.date(), NOW.date())
        runs = [recon.start_run(start, end, trigger=recon.ADMIN, actor=admin).id for _ in (1, 2)]
        db.session.remove()

    results = run_together(
        pg_app,
        lambda: recon.execute(runs[0]).status,
        lambda: recon.execute(runs[1]).status,
        lambda: pg_gateway.deliver(),
        timeout=120,
    )
    assert results[0] == "finished" and results[1] == "finished", results
    assert results[2] and all(status == 200 for _id, status in results[2]), results[2]

    with pg_app.app_context():
        assert db.session.get(Refund, refund_id).status == "PROCESSED"
        found = db.session.scalars(sa.select(ReconCase)).all()
        by_kind = {}
        for case in found:
            by_kind.setdefault(case.kind, []).append(case)
        # One case per gateway record: 1 + HELD payments and the refund, never twice.
        assert len(by_kind["payment"]) == HELD + 1 and len(by_kind["refund"]) == 1
        assert len({(c.kind, c.reference) for c in found}) == len(found)
        wrong = [(c.reference, c.status, c.reason) for c in found if c.status != "matched"]
        assert not wrong, wrong
        assert {r.status for r in db.session.scalars(sa.select(ReconRun))} == {"finished"}
        # And a run after the dust settles agrees, adding nothing.
        again = recon.execute(recon.start_run(start, end, trigger=recon.ADMIN).id)
        assert (again.matched, again.discrepancies, again.new_discrepancies) == (HELD + 2, 0, 0)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReconCase)) == len(found)


def test_two_requests_for_one_window_at_once_start_one_run(pg_app, monkeypatch):
    """Review rev-input: "Run" submitted twice started two runs of the same window. Now a
    request takes the window's lock and shows a run of it still running (or just
    started) instead: two at once on PostgreSQL make one run."""
    import time
    from datetime import date

    from tests.threads import lock_waiters

    with pg_app.app_context():
        world = build_world()
        admin_id = world.admin
        db.session.remove()
    arrived = []
    looked = recon.run_for_window

    def look_then_meet(*args, **kwargs):
        found = looked(*args, **kwargs)
        arrived.append(1)  # both have looked before either records a run (unless one waits)
        deadline = time.monotonic() + 10
        while len(arrived) < 2 and not lock_waiters(db.engine) and time.monotonic() < deadline:
            time.sleep(0.01)
        return found

    monkeypatch.setattr(recon, "run_for_window", look_then_meet)

    def request():
        asked = recon.request_run(
            db.session.get(User, admin_id), date(2026, 6, 1), date(2026, 6, 1)
        )
        return asked.run.id, asked.started

    results = run_together(pg_app, request, request, timeout=60)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r[0] for r in results} == {results[0][0]}, results
    assert sorted(r[1] for r in results) == [False, True], results
    with pg_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReconRun)) == 1
        db.session.remove()


def test_an_accept_committed_between_a_runs_read_and_write_is_taken_back(
    pg_app, pg_gateway, clock, monkeypatch
):
    """Two sessions: the run reads the stray payment's case open; an admin's accept (its
    own transaction, nothing locked by the run yet: the case has no visit) commits; the
    run's write reopens the case (the gateway's amount changed) and takes the posting back."""
    from portal.ledger.accounts import RECONCILIATION_SUSPENSE
    from portal.ledger.service import balance
    from portal.reconcile import cases, resolve
    from tests.reconcile.helpers import case_for, later, run_day

    with pg_app.app_context():
        world = build_world()
        stray = pg_gateway.sandbox.stray_payment(49_900)
        later(clock)
        run_day(world)
        case_id = case_for(stray["id"]).id
        pg_gateway.sandbox.set_faults(alter={stray["id"]: {"amount": 50_000}})
        read, accepted = cases.existing, []

        def existing_then_accepted(kind, references):
            found = read(kind, references)
            if kind == "payment" and stray["id"] in references and not accepted:
                accepted.extend(
                    run_together(
                        pg_app,
                        lambda: (
                            resolve.accept(
                                db.session.get(User, world.admin), case_id, "Not ours: to refund"
                            ).resolution
                        ),
                    )
                )
            return found

        monkeypatch.setattr(cases, "existing", existing_then_accepted)
        run_day(world)
        assert accepted == ["accepted"]
        case = case_for(stray["id"])
        assert (case.status, case.resolution) == ("discrepancy", None)
        assert balance(RECONCILIATION_SUSPENSE) == 0


@pytest.fixture
def pg_fast(pg_app):
    keys = ("RAZORPAY_TIMEOUT", "RAZORPAY_RETRIES", "REFUND_MAX_ATTEMPTS")
    saved = {k: pg_app.config[k] for k in keys if k in pg_app.config}
    pg_app.config.update(RAZORPAY_TIMEOUT=0.4, RAZORPAY_RETRIES=0, REFUND_MAX_ATTEMPTS=1)
    pg_app.extensions.pop("gateway_adapters", None)
    gw = start_gateway(pg_app)
    yield gw
    gw.close()
    for k in keys:
        pg_app.config.pop(k, None)
    pg_app.config.update(saved)
    pg_app.extensions.pop("gateway_adapters", None)


def _accept_meanwhile(monkeypatch, app, name, admin_id, case_id):
    """An admin's accept of ``case_id``, its own transaction, run when the event's listener
    first calls ``recheck.<name>`` (``lock_case``: it has read the case's id, nothing
    locked yet; ``match``: it has read the case open and found it agreeing) until the
    accept commits or waits on a lock the listener holds. Returns the accept's outcome:
    call it once the listener has committed."""
    original, outcome, threads = getattr(recheck, name), [None], []

    def accept():
        with app.app_context():
            try:
                user = db.session.get(User, admin_id)
                outcome[0] = resolve.accept(user, case_id, "Made on the dashboard").resolution
            except Exception as exc:  # noqa: BLE001 -- returned to the test
                outcome[0] = exc
            finally:
                db.session.remove()

    def meanwhile(*args, **kwargs):
        if not threads:
            threads.append(threading.Thread(target=accept))
            threads[0].start()
            while threads[0].is_alive() and not lock_waiters(db.engine):
                time.sleep(0.01)
        return original(*args, **kwargs)

    monkeypatch.setattr(recheck, name, meanwhile)

    def result():
        assert threads, f"the listener never called recheck.{name}"
        threads[0].join(timeout=20)
        assert not threads[0].is_alive(), "the accept never finished"
        return outcome[0]

    return result


def _counted_once(case_id, accepted):
    """The accept either committed first (the listener then found it accepted, and matched
    it: its posting taken back) or waited and was refused (the listener matched it first):
    either way the money is counted once and a matched case holds no accept."""
    case = db.session.get(ReconCase, case_id)
    assert (case.status, case.resolution) == ("matched", None), (case.status, case.resolution)
    assert accepted == "accepted" or isinstance(accepted, resolve.ResolveError), accepted
    assert balance(RECONCILIATION_SUSPENSE) == 0
    assert verify_gateway_clearing(get_payin().account_position()) == []


@pytest.mark.parametrize("meanwhile", ["lock_case", "match"])
def test_an_accept_racing_a_refund_webhook_that_matches_the_open_case_is_not_counted_twice(
    pg_app, pg_fast, clock, monkeypatch, meanwhile
):
    """Review finding (rv_recon2). A refund "we never made" (missing_ours: our create went
    unanswered, its webhooks lost). Its late refund.processed webhook finds our row by its
    notes and processes it; the listener read the case open and matched it without a row
    lock (only accepted cases were locked), while an admin's accept (which locks the
    visit, not the refund the webhook holds, then the case) read our refund not processed
    yet, posted it out of clearing into suspense and committed. The listener's write then
    said matched over resolution accepted, and kept the posting: the refund left clearing
    twice. The listener now locks every case it reads and reads it again under the lock."""
    gateway = pg_fast
    with pg_app.app_context():
        world = build_world()

        def users(uid):
            return db.session.get(User, uid)

        visit = paid(world, users, gateway)
        gateway.sandbox.set_faults(
            timeout_next=1,
            timeout_seconds=1.0,
            match="refund",
            drop_events="refund.created,refund.processed",
        )
        quoted_cancel(users(world.patients[0]), visit.id, [visit.items[0].id])
        db.session.expire_all()
        [refund] = refunds_lookup.refunds_for_visit(visit.id)
        assert (refund.status, refund.razorpay_refund_id) == ("FAILED", None)
        [at_gateway] = list(gateway.sandbox.store.refunds.values())
        gateway.sandbox.advance(10)
        gateway.deliver()  # dropped
        later(clock)
        with monkeypatch.context() as before_notes:
            before_notes.setattr(ours, "refunds_by_notes", lambda sides: {})
            run_day(world)
        case = case_for(at_gateway["id"])
        assert (case.status, case.reason) == ("discrepancy", "missing_ours")
        case_id, admin_id, refund_id = case.id, world.admin, refund.id
        entity = confirmed_refund(get_payin(), {"id": at_gateway["id"]})
        db.session.remove()

    accepted = _accept_meanwhile(monkeypatch, pg_app, meanwhile, admin_id, case_id)
    with pg_app.app_context():
        refunds.refund_event(entity)  # the late refund.processed webhook
        db.session.remove()

    with pg_app.app_context():
        assert db.session.get(Refund, refund_id).status == "PROCESSED"
        _counted_once(case_id, accepted())
        db.session.remove()


@pytest.mark.parametrize("meanwhile", ["lock_case", "match"])
def test_an_accept_racing_the_late_capture_of_a_stray_that_is_ours_is_not_counted_twice(
    pg_app, pg_fast, clock, monkeypatch, meanwhile
):
    """The same race on a payment case with no visit: a payment link's capture whose
    webhooks were lost, written as a stray (missing_ours) before the run found it ours by
    the link's notes. Its late webhook captures it on our link's row, and the visit's
    listener finds the case by the payment's id; an accept of a case with no visit locks
    no visit the webhook holds, so it ran between the listener's read and its write,
    posting the payment into clearing as owed back to a stray payer, while the capture
    put it there too."""
    gateway = pg_fast
    with pg_app.app_context():
        world = build_world()

        def users(uid):
            return db.session.get(User, uid)

        visit_id, row_id, pay_id = link_paid_only_at_gateway(world, users, gateway)
        # Run at once (no grace: a capture we do not have is missing at once), so the late
        # webhook's capture time is within the tolerance and the listener matches the case.
        monkeypatch.setitem(pg_app.config, "RECON_PENDING_GRACE_SECONDS", 0)
        clock.shift(timedelta(seconds=10))  # a run lists up to the second before it started
        with monkeypatch.context() as before_notes:
            before_notes.setattr(ours, "links_by_notes", lambda sides, notes: ({}, set()))
            run_day(world)
        case = case_for(pay_id)
        assert (case.status, case.reason, case.visit_id) == ("discrepancy", "missing_ours", None)
        case_id, admin_id = case.id, world.admin
        # A brand-new ledger: no account is made yet, the accept's nor the capture's.
        # Made inside each use case, the capture's gateway_clearing was an uncommitted row
        # the accept's posting waited on while the capture waited for the accept's case:
        # a deadlock (40P01), a 500 on the admin's accept.
        db.session.remove()

    accepted = _accept_meanwhile(monkeypatch, pg_app, meanwhile, admin_id, case_id)
    with pg_app.app_context():
        store = gateway.sandbox.store
        store._event("razorpay", "payment.captured", payment=store.payments[pay_id])
        gateway.deliver()  # the late webhook
        db.session.remove()

    with pg_app.app_context():
        assert db.session.get(Payment, row_id).status == "SUCCESSFUL"
        assert lookup.get_visit(visit_id).status == "CONFIRMED"
        _counted_once(case_id, accepted())
        db.session.remove()
