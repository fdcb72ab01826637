"""Refund classes through the sandbox's faults; runs that fail (a gateway that times out or
answers garbage mid-run) are marked failed with their reason and write no case."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.gateway import get_payin
from portal.ledger.accounts import RECONCILIATION_SUSPENSE
from portal.ledger.check import verify_gateway_clearing
from portal.ledger.service import balance
from portal.reconcile import ours, resolve
from portal.reconcile.history import case_history
from portal.reconcile.models import ReconCase
from portal.reconcile.window import WindowError, day_window
from portal.refunds import failed as refunds_failed
from portal.refunds import lookup as refunds_lookup
from portal.refunds.common import CancellationError
from portal.refunds.models import Refund
from portal.refunds.tasks import poll_refunds
from tests.reconcile.helpers import admin, case_for, cases, later, paid, payment_id, run_day
from tests.refunds.helpers import quoted_cancel, settle_refunds


def clearing_findings():
    return verify_gateway_clearing(get_payin().account_position())


def cancelled(world, users, gateway):
    visit = paid(world, users, gateway)
    patient = users(world.patients[0])
    quoted_cancel(patient, visit.id, [visit.items[0].id])
    db.session.expire_all()
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    return visit, refund


def test_a_refund_processed_only_at_the_gateway_is_synced(world, users, gateway, clock):
    gateway.sandbox.set_faults(drop_events="refund.processed")
    visit, refund = cancelled(world, users, gateway)
    gateway.sandbox.advance(10)
    gateway.deliver()
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PENDING"
    later(clock)
    run = run_day(world)
    assert run.status == "finished", run.error
    case = case_for(refund.razorpay_refund_id)
    assert (case.kind, case.status, case.reason) == ("refund", "discrepancy", "status_differs")
    assert (case.our_status, case.gateway_status, case.visit_id) == (
        "PENDING",
        "processed",
        visit.id,
    )
    assert case_for(payment_id(visit)).status == "matched"  # refunded, captured all the same
    resolve.sync(admin(world), case.id)
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert case_for(refund.razorpay_refund_id).status == "matched"
    run_day(world)
    assert len(cases()) == 2


def test_a_refund_processed_only_at_the_gateway_accepted(world, users, gateway, clock):
    gateway.sandbox.set_faults(drop_events="refund.processed")
    _visit, refund = cancelled(world, users, gateway)
    gateway.sandbox.advance(10)
    gateway.deliver()
    later(clock)
    run_day(world)
    case = case_for(refund.razorpay_refund_id)
    resolve.accept(admin(world), case.id, "Patient confirmed the money arrived")
    assert case_for(refund.razorpay_refund_id).status == "resolved"


def test_a_refund_made_on_its_retry_after_razorpay_errors_is_dated_by_that_request(
    world, users, gateway, clock
):
    """Razorpay answers 503 to the first attempt (the adapter's three tries: nothing made);
    the poll asks again under the same key two minutes later and Razorpay makes it then.
    Our side is dated by that request, not by when our row was created: matched."""
    visit = paid(world, users, gateway)
    gateway.sandbox.set_faults(fail_next=3, error_status=503, match="refund")
    quoted_cancel(users(world.patients[0]), visit.id, [visit.items[0].id])
    clock.shift(timedelta(minutes=2))
    poll_refunds()  # the retry that fell due: Razorpay makes it now
    settle_refunds(gateway)
    (refund,) = db.session.scalars(sa.select(Refund)).all()
    assert (refund.attempts, refund.status) == (2, "PROCESSED")
    assert refund.last_request_at - refund.first_request_at >= timedelta(minutes=2)
    assert len(gateway.sandbox.store.refunds) == 1
    later(clock, hours=3)
    run = run_day(world)
    assert run.status == "finished", run.error
    (case,) = cases(kind="refund")
    assert (case.status, case.reason) == ("matched", None)


def test_a_refund_made_on_the_dashboard_is_missing_on_our_side(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    refund = gateway.sandbox.refund_at_gateway(payment_id(visit), 10_000)
    gateway.sandbox.advance(10)
    gateway.deliver()
    later(clock)
    run_day(world)
    case = case_for(refund["id"])
    assert (case.kind, case.reason, case.our_id) == ("refund", "missing_ours", None)
    with pytest.raises(resolve.ResolveError, match="Not a refund of ours"):
        resolve.sync(admin(world), case.id)
    resolve.accept(admin(world), case.id, "Goodwill refund made by finance on the dashboard")
    assert case_for(refund["id"]).status == "resolved"


def test_a_webhook_that_lands_after_the_run_closes_its_case(world, users, gateway, clock):
    gateway.sandbox.set_faults(drop_webhooks=True)
    _visit, refund = cancelled(world, users, gateway)
    gateway.sandbox.advance(10)
    gateway.sandbox.set_faults(drop_webhooks=0.0)
    app_refund = db.session.get(Refund, refund.id)
    assert app_refund.status == "PENDING"
    later(clock)
    run_day(world)
    assert case_for(refund.razorpay_refund_id).status == "discrepancy"
    # The gateway tells us at last (the straggler poll, or a webhook sent again).
    from portal.refunds.execute import sync_refund

    sync_refund(refund.id)
    assert case_for(refund.razorpay_refund_id).status == "matched"


@pytest.fixture
def fast(app, gateway):
    """The gateway's timeouts short, no retries, a refund given up after one attempt."""
    keys = ("RAZORPAY_TIMEOUT", "RAZORPAY_RETRIES", "REFUND_MAX_ATTEMPTS")
    saved = {k: app.config[k] for k in keys if k in app.config}
    app.config.update(RAZORPAY_TIMEOUT=0.4, RAZORPAY_RETRIES=0, REFUND_MAX_ATTEMPTS=1)
    app.extensions.pop("gateway_adapters", None)
    yield gateway
    for k in keys:
        app.config.pop(k, None)
    app.config.update(saved)
    app.extensions.pop("gateway_adapters", None)


def _refund_made_unanswered(world, users, gateway):
    """A refund whose create went unanswered (FAILED, no Razorpay id) that Razorpay made
    and processed, its webhooks lost. Returns (our refund, Razorpay's)."""
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
    return refund, at_gateway


def test_an_accepted_missing_ours_refund_that_turns_out_ours_is_not_counted_twice(
    world, users, fast, clock, monkeypatch
):
    """Review finding: our refund's create went unanswered (FAILED, no Razorpay id) but
    Razorpay made and processed it; its webhooks were lost. The run listed it as a refund
    we never made (missing_ours) and the admin accepted it: clearing credited through
    suspense. Then the admin's "send to wallet" found it at Razorpay and our refund was
    processed, crediting clearing again; the accepted case kept its posting on every later
    run (the refund left clearing twice in the ledger, once at the gateway). A run finds
    such a refund by its notes now (the next test): here the case was written by a run
    before that, as cases accepted then were.

    Later review finding: the next run took the posting back, but until it ran (a day, for
    the daily run) the refund was counted twice: clearing short by it, suspense holding a
    refund that was ours. The refund's processing takes it back at once now."""
    gateway = fast
    refund, at_gateway = _refund_made_unanswered(world, users, gateway)
    later(clock)
    with monkeypatch.context() as before_notes:
        before_notes.setattr(ours, "refunds_by_notes", lambda sides: {})
        run_day(world)
    case = case_for(at_gateway["id"])
    assert (case.kind, case.status, case.reason) == ("refund", "discrepancy", "missing_ours")
    resolve.accept(admin(world), case.id, "Made on the dashboard by finance, per the log")
    assert clearing_findings() == []
    # The admin turns to the failed refund: Razorpay holds it, so it is ours after all.
    with pytest.raises(CancellationError):
        refunds_failed.refund_to_wallet(admin(world), refund.id, "Gateway keeps failing")
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PROCESSED"

    def counted_once():
        assert clearing_findings() == []
        assert balance(RECONCILIATION_SUSPENSE) == 0
        case = case_for(at_gateway["id"])
        assert (case.status, case.resolution, case.our_id) == ("matched", None, refund.id)
        [undone] = db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "reconcile.case_rematched",
                AuditEntry.object_id == str(case.id),
            )
        ).all()
        assert undone.after["because"] == "our record appeared"
        [*_, event] = case_history(case.id)
        assert (event.what, event.detail) == ("Matched again", "our record appeared")
        assert event.earlier.resolution == "accepted"

    counted_once()  # at once, not at the next run
    run_day(world)  # which finds nothing more to change
    counted_once()


def test_an_open_case_whose_refund_turns_out_ours_is_matched_by_its_processing(
    world, users, fast, clock, monkeypatch
):
    """The same refund's case still open when "send to wallet" finds it at Razorpay: its
    processing compares the case again, found by the gateway's id our refund now records
    (the case named no row of ours), and it matches. Before, only cases naming our row
    were compared, so the case stayed "missing ours" and an accept posted the refund out
    of clearing a second time."""
    refund, at_gateway = _refund_made_unanswered(world, users, fast)
    later(clock)
    with monkeypatch.context() as before_notes:
        before_notes.setattr(ours, "refunds_by_notes", lambda sides: {})
        run_day(world)
    with pytest.raises(CancellationError):
        refunds_failed.refund_to_wallet(admin(world), refund.id, "Gateway keeps failing")
    case = case_for(at_gateway["id"])
    assert (case.status, case.our_id) == ("matched", refund.id)
    with pytest.raises(resolve.ResolveError, match="matched already"):
        resolve.accept(admin(world), case.id, "Made on the dashboard by finance, per the log")
    assert clearing_findings() == []
    assert balance(RECONCILIATION_SUSPENSE) == 0


def test_an_accept_after_our_side_changed_unseen_is_refused_and_the_case_shows_it(
    world, users, fast, clock, monkeypatch
):
    """As above, but the gateway dates the refund 10 minutes off, so its processing does
    not match the case (a late webhook only ever matches): the case still says "missing
    ours". An accept posted from that, the refund out of clearing a second time (until
    the next run took it back). Now the accept compares our record as it is: changed since
    the run, the case is rewritten as it stands and the admin asked to look again; the
    accept then posts nothing (no money differs), and the next run leaves it."""
    refund, at_gateway = _refund_made_unanswered(world, users, fast)
    fast.sandbox.set_faults(
        alter={at_gateway["id"]: {"created_at": at_gateway["created_at"] + 600}}
    )
    later(clock)
    with monkeypatch.context() as before_notes:
        before_notes.setattr(ours, "refunds_by_notes", lambda sides: {})
        run_day(world)
    with pytest.raises(CancellationError):
        refunds_failed.refund_to_wallet(admin(world), refund.id, "Gateway keeps failing")
    case = case_for(at_gateway["id"])
    assert (case.status, case.reason, case.our_id) == ("discrepancy", "missing_ours", None)
    with pytest.raises(resolve.ResolveError, match="Our record changed since"):
        resolve.accept(admin(world), case.id, "Made on the dashboard by finance, per the log")
    case = case_for(at_gateway["id"])
    assert (case.status, case.reason, case.our_id) == ("discrepancy", "time_differs", refund.id)
    [*_, event] = case_history(case.id)
    assert event.what == f"Our record had changed when {admin(world).name} accepted"
    assert event.detail == "our record appeared; now time differs"
    assert clearing_findings() == []
    resolve.accept(admin(world), case.id, "Razorpay dates it by its own queue")
    assert (case_for(at_gateway["id"]).status, balance(RECONCILIATION_SUSPENSE)) == ("resolved", 0)
    assert clearing_findings() == []
    run_day(world)
    assert case_for(at_gateway["id"]).status == "resolved"
    assert clearing_findings() == []


def test_a_refund_whose_create_went_unanswered_is_found_by_its_notes(world, users, fast, clock):
    """The run finds our refund as the webhooks and "send to wallet" do, by its notes: a
    refund of ours that failed on our side while Razorpay processed it, not one we never
    made; a sync applies Razorpay's record to it and the case matches."""
    refund, at_gateway = _refund_made_unanswered(world, users, fast)
    later(clock)
    run_day(world)
    case = case_for(at_gateway["id"])
    assert (case.status, case.reason) == ("discrepancy", "status_differs")
    assert (case.our_id, case.our_status, case.visit_id) == (refund.id, "FAILED", refund.visit_id)
    resolve.sync(admin(world), case.id)
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "PROCESSED"
    assert case_for(at_gateway["id"]).status == "matched"
    run_day(world)
    assert case_for(at_gateway["id"]).status == "matched"
    assert clearing_findings() == []
    assert balance(RECONCILIATION_SUSPENSE) == 0


def _refund_failed_at_gateway(world, users, gateway):
    """A refund Razorpay failed (given up after one attempt, ``fast``), whose record the
    gateway then reports as processed: the patient got the money on the card after all.
    Returns (our refund, Razorpay's id, the amount)."""
    visit = paid(world, users, gateway)
    gateway.sandbox.set_faults(refund_outcome="failed")
    quoted_cancel(users(world.patients[0]), visit.id, [visit.items[0].id])
    settle_refunds(gateway)
    gateway.sandbox.set_faults(refund_outcome=None)
    [refund] = refunds_lookup.refunds_for_visit(visit.id)
    assert (refund.status, refund.superseded) == ("FAILED", False)
    rid = refund.razorpay_refund_id
    gateway.sandbox.set_faults(alter={rid: {"status": "processed"}})
    return refund, rid, refund.amount


def test_accepting_a_replaced_refund_the_gateway_processed_takes_it_out_of_clearing(
    world, users, fast, clock
):
    """Review finding: a refund sent to the wallet (Razorpay had failed it) that the
    gateway's record shows processed after all. Our row is replaced, so it can never be
    processed (a sync leaves it: "still differ, accept it"), yet an accept counted a failed
    refund of ours as one that may still move and posted nothing: clearing kept the money
    the gateway paid out, for good. A replaced refund moved no money of ours and never
    will: the accept takes the gateway's refund out of clearing, owed back in suspense."""
    refund, rid, amount = _refund_failed_at_gateway(world, users, fast)
    refunds_failed.refund_to_wallet(admin(world), refund.id, "Razorpay failed it twice")
    later(clock)
    run_day(world)
    case = case_for(rid)
    assert (case.status, case.reason, case.our_status) == (
        "discrepancy",
        "status_differs",
        "FAILED",
    )
    with pytest.raises(resolve.ResolveError, match="still differ"):
        resolve.sync(admin(world), case.id)
    resolve.accept(admin(world), case.id, "Paid on the card and to the wallet: recover it")
    assert clearing_findings() == []
    assert balance(RECONCILIATION_SUSPENSE) == -amount
    run_day(world)
    assert case_for(rid).status == "resolved"
    assert balance(RECONCILIATION_SUSPENSE) == -amount


def test_a_refund_replaced_after_its_case_was_accepted_is_taken_out_of_clearing_at_once(
    world, users, fast, clock
):
    """The other order: accepted while our refund could still be processed (an accept
    posts nothing then), then sent to the wallet. The wallet refund's processing posts the
    accepted case's difference at once: the next run would not (neither side's record
    changed)."""
    refund, rid, amount = _refund_failed_at_gateway(world, users, fast)
    later(clock)
    run_day(world)
    resolve.accept(admin(world), case_for(rid).id, "Razorpay shows it processed; checking")
    assert balance(RECONCILIATION_SUSPENSE) == 0
    refunds_failed.refund_to_wallet(admin(world), refund.id, "Razorpay failed it twice")
    assert clearing_findings() == []
    assert balance(RECONCILIATION_SUSPENSE) == -amount
    run_day(world)
    assert (case_for(rid).status, balance(RECONCILIATION_SUSPENSE)) == ("resolved", -amount)


def test_a_gateway_that_times_out_mid_run_fails_the_run(world, users, fast, clock):
    paid(world, users, fast)
    fast.sandbox.stray_payment(9_900)
    later(clock)
    fast.sandbox.set_faults(timeout_next=3, timeout_seconds=1.0, match="GET /v1/refunds")
    run = run_day(world)
    assert run.status == "failed"
    assert run.error.startswith("The gateway did not answer in time")
    assert run.finished_at is not None and run.duration_ms is not None
    assert not cases()  # the payments were compared, but nothing of a failed run is kept


def test_a_gateway_that_answers_garbage_mid_run_fails_the_run(world, users, fast, clock):
    paid(world, users, fast)
    later(clock)
    fast.sandbox.set_faults(garbage_next=3, match="GET /v1/payouts")
    run = run_day(world)
    assert run.status == "failed" and "gateway" in run.error
    assert not cases()


def test_a_record_that_is_not_one_fails_the_run(world, users, gateway, clock):
    visit = paid(world, users, gateway)
    gateway.sandbox.set_faults(alter={payment_id(visit): {"amount": "lots"}})
    later(clock)
    run = run_day(world)
    assert run.status == "failed"
    assert "not a record" in run.error and "amount" in run.error
    assert not db.session.scalar(sa.select(sa.func.count()).select_from(ReconCase))


def test_windows_are_whole_clinic_days_at_most_a_year():
    start, end = day_window(date(2026, 6, 1), date(2026, 6, 1))
    assert start.isoformat() == "2026-05-31T18:30:00+00:00"
    assert (end - start).days == 1
    start, end = day_window(date(2025, 6, 2), date(2026, 6, 1))
    assert (end - start).days == 365
    with pytest.raises(WindowError, match="at most a year"):
        day_window(date(2024, 1, 1), date(2025, 1, 2))
    with pytest.raises(WindowError, match="before the first"):
        day_window(date(2026, 6, 2), date(2026, 6, 1))
