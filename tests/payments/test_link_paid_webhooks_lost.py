"""A payment link paid while every webhook about it was lost (review finding): the expiry
job ended the link without asking Razorpay, so the patient who paid got a new link (or the
visit lapsed, its slot freed), and the capture found later by reconciliation went to the
wallet as a late payment: the visit stayed unpaid. Before a pending link is ended the
gateway is now asked (``links.link_checks``): a paid link is captured through the
webhook's own path (``payment_events.capture``), a gateway that cannot answer leaves it
for a retry (until the visit's first start less the link window), and a cancel that
Razorpay refuses because the link was paid meanwhile still records the capture."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.booking import link_checks, links, lookup, visits
from portal.booking.errors import SlotUnavailable
from portal.extensions import db
from portal.gateway import GatewayError, get_payin
from portal.gateway.payin import RazorpayPayIn
from portal.ledger import accounts as chart
from portal.ledger.check import verify_ledger
from portal.ledger.cli import ledger_cli
from portal.ledger.service import balance
from portal.notify.models import Notification
from portal.outbox import OutboxItem
from portal.payments.models import Payment
from tests.booking.factories import at, quoted_desk_payment

FEE = 52_950  # one consultation


@pytest.fixture
def fast(app, gateway):
    """The gateway with a short timeout and no adapter retries, so an outage fails fast."""
    keys = ("RAZORPAY_TIMEOUT", "RAZORPAY_RETRIES")
    saved = {k: app.config[k] for k in keys if k in app.config}
    app.config.update(RAZORPAY_TIMEOUT=0.5, RAZORPAY_RETRIES=0)
    app.extensions.pop("gateway_adapters", None)
    yield gateway
    gateway.sandbox.set_faults(error_rate=0.0, match="")
    for k in keys:
        app.config.pop(k, None)
    app.config.update(saved)
    app.extensions.pop("gateway_adapters", None)


def _desk_visit(world, users, start, patient=0):
    admin, patient = users(world.admin), users(world.patients[patient])
    item = visits.add_item(
        admin,
        patient_id=patient.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0]],
        clinic_id=world.clinic,
        start_at=start,
    )
    link = links.create_payment_link(admin, item.master_id)
    return item.master_id, link, patient.id


def _paid_with_webhooks_lost(gateway, link):
    gateway.sandbox.set_faults(drop_webhooks=True)
    gateway.pay_link(link.link_url)
    gateway.deliver()  # every one of them lost
    assert gateway.sandbox.store.links[link.razorpay_link_id]["status"] == "paid"
    [captured] = [p for p in gateway.sandbox.store.payments.values() if p["status"] == "captured"]
    return captured["id"]


def _webhooks_arrive_after_all(gateway):
    hooks = gateway.sandbox.webhooks
    gateway.sandbox.set_faults(drop_webhooks=0.0)
    assert any(d.event == "payment_link.paid" for d in hooks.dropped)
    hooks.pending.extend(hooks.dropped)
    hooks.dropped.clear()
    gateway.deliver()


def _notice_kinds(user_id):
    return db.session.scalars(
        sa.select(Notification.kind)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id)
    ).all()


def _link_job():
    return db.session.scalar(sa.select(OutboxItem).where(OutboxItem.job == links.LINK_EXPIRED))


def _confirmed_by_the_link(visit_id, link_id, pay_id, patient_id, gateway):
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED" and all(i.status == "CONFIRMED" for i in visit.items)
    [payment] = visit.payments  # no new link, no late row
    assert (payment.id, payment.status, payment.razorpay_payment_id) == (
        link_id,
        "SUCCESSFUL",
        pay_id,
    )
    assert len(gateway.sandbox.store.links) == 1
    assert balance(chart.patient_wallet(patient_id)) == 0
    assert balance(chart.GATEWAY_CLEARING) == FEE
    kinds = _notice_kinds(patient_id)
    assert "booking.confirmed" in kinds
    assert not [k for k in kinds if k.startswith("payment.link")]
    return payment


def _ledger_check_green(app):
    assert verify_ledger() == []
    result = app.test_cli_runner().invoke(ledger_cli, ["check"])
    assert result.exit_code == 0, result.output
    assert "gateway clearing matches" in result.output


def test_a_paid_link_whose_webhooks_were_lost_is_confirmed_at_its_expiry(
    app, world, users, gateway, clock
):
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    pay_id = _paid_with_webhooks_lost(gateway, link)
    clock.shift(timedelta(hours=24, seconds=5))  # past the link's 24 h
    gateway.sandbox.advance(0)  # Razorpay does not expire a paid link
    assert links.expire_payment_links() == 1

    payment = _confirmed_by_the_link(visit_id, link.id, pay_id, patient_id, gateway)
    assert "link.expired" not in [a.event for a in payment.attempts]
    assert lookup.get_visit(visit_id).attention != "LINK_EXPIRED"
    assert _link_job().done_at is not None
    _ledger_check_green(app)

    # The webhooks arrive after all: nothing moves twice.
    attempts = len(payment.attempts)
    notices = len(_notice_kinds(patient_id))
    _webhooks_arrive_after_all(gateway)
    payment = _confirmed_by_the_link(visit_id, link.id, pay_id, patient_id, gateway)
    assert len(payment.attempts) == attempts and len(_notice_kinds(patient_id)) == notices
    assert links.expire_payment_links() == 0
    _ledger_check_green(app)


def test_a_paid_link_too_close_to_the_start_to_renew_is_confirmed_not_lapsed(
    app, world, users, gateway, clock
):
    """No new link could be made (the visit would lapse, its slot freed): still paid."""
    visit_id, link, patient_id = _desk_visit(world, users, at(0, 13))  # link: start − 2 h
    pay_id = _paid_with_webhooks_lost(gateway, link)
    clock.shift(timedelta(hours=3, seconds=5))
    assert links.expire_payment_links() == 1
    _confirmed_by_the_link(visit_id, link.id, pay_id, patient_id, gateway)
    _ledger_check_green(app)


def test_a_link_paid_after_the_check_read_it_unpaid_is_confirmed_when_the_cancel_is_refused(
    app, world, users, gateway, clock
):
    """The check read the link unpaid, the patient paid a moment later, and Razorpay then
    refused to cancel it (already paid): the capture is confirmed all the same."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    unpaid = get_payin().fetch_payment_link(link.razorpay_link_id)
    pay_id = _paid_with_webhooks_lost(gateway, link)
    clock.shift(timedelta(hours=24, seconds=5))
    real = type(get_payin()).fetch_payment_link
    reads = []

    def read_before_the_payment(self, link_id):
        reads.append(link_id)
        return unpaid if len(reads) == 1 else real(self, link_id)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(get_payin()), "fetch_payment_link", read_before_the_payment)
        assert links.expire_payment_links() == 1
    assert len(reads) >= 2  # asked again after the refused cancel
    _confirmed_by_the_link(visit_id, link.id, pay_id, patient_id, gateway)
    _ledger_check_green(app)


def test_an_unpaid_link_is_cancelled_at_razorpay_before_a_new_one_is_made(
    world, users, gateway, clock
):
    """As before: the link EXPIRED, a new one issued and sent. Our clock past the expiry
    before Razorpay's: the link, still payable there, is cancelled first, so no payment
    can arrive on it after the new one is made."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    gateway.sandbox.advance(-60)  # Razorpay's clock a minute behind ours
    clock.shift(timedelta(hours=24, seconds=5))
    assert gateway.sandbox.store.links[link.razorpay_link_id]["status"] == "created"
    assert links.expire_payment_links() == 1
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    old, new = (p for p in visit.payments if p.kind == "LINK")
    assert (old.id, old.status, new.status) == (link.id, "EXPIRED", "PENDING")
    assert gateway.sandbox.store.links[link.razorpay_link_id]["status"] == "cancelled"
    assert visit.status == "PENDING_PAYMENT" and visit.attention == "LINK_EXPIRED"
    assert _notice_kinds(patient_id)[-2:] == ["payment.link_expired", "payment.link_new"]
    assert balance(chart.patient_wallet(patient_id)) == 0


def test_a_gateway_that_cannot_answer_at_the_expiry_leaves_the_link_for_a_retry(
    app, world, users, fast, clock
):
    gateway = fast
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    pay_id = _paid_with_webhooks_lost(gateway, link)
    clock.shift(timedelta(hours=24, seconds=5))
    gateway.sandbox.set_faults(error_rate=1.0, error_status=503)
    assert links.expire_payment_links() == 1  # the job runs, and cannot ask

    db.session.expire_all()
    job = _link_job()
    assert job.done_at is None and job.attempts == 1
    visit = lookup.get_visit(visit_id)
    assert visit.status == "PENDING_PAYMENT" and all(i.status == "SCHEDULED" for i in visit.items)
    assert [p.status for p in visit.payments] == ["PENDING"]
    # The slot stays held meanwhile: another patient's booking of it is refused, where the
    # stale hold was let go (and the paid visit expired) before.
    other = users(world.patients[1])
    with pytest.raises(SlotUnavailable):
        visits.add_item(
            other,
            patient_id=other.id,
            service_id=world.consult,
            provider_ids=[world.doctors[0]],
            clinic_id=world.clinic,
            start_at=at(3, 10),
        )
    db.session.rollback()

    gateway.sandbox.set_faults(error_rate=0.0)
    jobs.run_outbox_item(job.id)  # the outbox's retry, the gateway back
    _confirmed_by_the_link(visit_id, link.id, pay_id, patient_id, gateway)
    _ledger_check_green(app)


def _until_the_outbox_would_give_up(clock, job_id):
    """The outbox's retries of the item, the clock moved on by each delay, until it is
    done or at its last attempt (``jobs.GaveUp`` raised by the run)."""
    item = db.session.get(OutboxItem, job_id)
    while item.done_at is None and item.attempts < jobs.MAX_ATTEMPTS:
        clock.shift(timedelta(seconds=jobs.retry_delay(item.attempts)))
        jobs.run_outbox_item(job_id)
        db.session.expire_all()
        item = db.session.get(OutboxItem, job_id)
    return item


def test_a_link_check_the_gateway_never_answers_ends_unchecked_before_the_outbox_gives_up(
    world, users, gateway, clock, monkeypatch
):
    """The wait (first start less the link window) ends long after the outbox's eight
    attempts (~20 h): the last attempt ends the link unchecked, as the wait's end would,
    where before the item gave up with the link PENDING, the visit unflagged, the patient
    untold and no cancel queued (its dedupe key kept anyone from queueing it again)."""

    def unreachable(self, link_id):
        raise GatewayError("Razorpay unreachable")

    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    monkeypatch.setattr(RazorpayPayIn, "fetch_payment_link", unreachable)
    clock.shift(timedelta(hours=24, seconds=5))
    assert links.expire_payment_links() == 1
    item = _until_the_outbox_would_give_up(clock, _link_job().id)

    assert item.done_at is not None and item.attempts == jobs.MAX_ATTEMPTS
    visit = lookup.get_visit(visit_id)
    assert db.session.get(Payment, link.id).status == "EXPIRED"
    assert visit.attention == "LINK_EXPIRED"
    cancel = db.session.scalars(
        sa.select(OutboxItem.payload).where(OutboxItem.job == link_checks.CANCEL_LINK)
    ).all()
    assert cancel == [{"payment_id": link.id}]
    assert "payment.link_expired" in _notice_kinds(patient_id)
    # The first start still far enough ahead: a new link, as at any expiry.
    assert [p.status for p in visit.payments] == ["EXPIRED", "PENDING"]


def test_a_whole_outage_through_the_last_attempt_ends_the_link_and_lapses_the_visit(
    world, users, fast, clock
):
    """Razorpay away for every attempt: no new link can be made on the last one either, so
    the visit lapses (flagged, the patient told) instead of the item giving up."""
    gateway = fast
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    clock.shift(timedelta(hours=24, seconds=5))
    gateway.sandbox.set_faults(error_rate=1.0, error_status=503)
    assert links.expire_payment_links() == 1
    item = _until_the_outbox_would_give_up(clock, _link_job().id)

    assert item.done_at is not None
    visit = lookup.get_visit(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LINK_EXPIRED"
    assert [p.status for p in visit.payments] == ["EXPIRED"]
    assert "payment.link_expired" in _notice_kinds(patient_id)


def test_past_the_link_window_an_unreachable_gateway_no_longer_holds_the_slot(
    world, users, fast, clock
):
    """The bound (decision, docs/booking.md): once the visit's first start is nearer than
    the link window (2 h) no new link could be made either, so the visit lapses as it did,
    unchecked; a capture found later is a late payment (revived, or the wallet)."""
    gateway = fast
    visit_id, link, _patient_id = _desk_visit(world, users, at(0, 13))  # link: start − 2 h
    clock.shift(timedelta(hours=3, seconds=5))
    gateway.sandbox.set_faults(error_rate=1.0, error_status=503)
    assert links.expire_payment_links() == 1
    db.session.expire_all()
    assert _link_job().done_at is not None
    visit = lookup.get_visit(visit_id)
    assert visit.status == "EXPIRED" and visit.attention == "LINK_EXPIRED"
    assert db.session.get(Payment, link.id).status == "EXPIRED"


def test_a_link_paid_just_before_the_desk_took_the_money_is_recorded_when_its_cancel_is_refused(
    world, users, gateway, clock
):
    """The desk payment ends the link and cancels it at Razorpay; the patient had paid it
    a moment before and its webhooks were lost. Razorpay refuses the cancel (paid): the
    capture is recorded then (paid twice: the link's money to the wallet, the visit
    flagged), not left at the gateway on no row."""
    visit_id, link, patient_id = _desk_visit(world, users, at(3, 10))
    admin = users(world.admin)
    pay_id = _paid_with_webhooks_lost(gateway, link)
    quoted_desk_payment(admin, visit_id, "R-1")
    db.session.expire_all()
    visit = lookup.get_visit(visit_id)
    assert visit.status == "CONFIRMED"
    late = [p for p in visit.payments if p.razorpay_payment_id == pay_id]
    assert len(late) == 1 and late[0].unapplied
    assert balance(chart.patient_wallet(patient_id)) == FEE
    assert visit.attention == "LATE_PAYMENT_TO_WALLET"
    assert db.session.get(Payment, link.id).status == "EXPIRED"
