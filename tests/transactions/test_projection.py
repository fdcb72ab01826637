"""The read table follows the records through the real services: a paid visit, a provider's
cancellation (gateway refund and penalty), a failed payment; a rolled-back change leaves no
row. And one movement's detail page: timeline, Razorpay's record beside ours (or a message
when Razorpay is down), the audit trail."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.catalog.models import Provider
from portal.db import unit_of_work
from portal.domain.states import PaymentStatus
from portal.extensions import db
from portal.payments.models import ORDER, Payment
from portal.transactions import models as mm
from portal.transactions.filters import MovementFilter
from portal.transactions.models import MoneyMovement
from portal.transactions.queries import summary
from tests.booking.factories import NOW, at
from tests.refunds.helpers import book_and_pay, quoted_provider_cancel, settle_refunds

START = at(4, 10)
CONSULT = (50_000, 2_500, 450)  # F, P, GST
TOTAL = sum(CONSULT)


def rows_by_type():
    out = {}
    for m in db.session.scalars(sa.select(MoneyMovement).order_by(MoneyMovement.id)):
        out.setdefault(m.type, []).append(m)
    return out


@pytest.fixture
def paid(world, users, gateway):
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], START)])
    db.session.commit()
    return patient, visit


def test_a_paid_visit_and_a_providers_cancellation_are_every_movement(
    world, users, gateway, clock, paid
):
    patient, visit = paid
    [pay] = rows_by_type()[mm.PAYMENT_ONLINE]
    assert (pay.status, pay.bucket, pay.failed) == (PaymentStatus.SUCCESSFUL, "in", False)
    assert (pay.amount, pay.net, pay.gateway_fee) == (TOTAL, TOTAL, None)
    assert (pay.fee, pay.platform_fee, pay.gst) == CONSULT
    assert (pay.patient_id, pay.party_name) == (patient.id, patient.name)
    assert (pay.visit_id, pay.visit_number) == (visit.id, visit.number)
    assert pay.reference.startswith("pay_")

    provider = db.session.get(Provider, world.doctors[0])
    doctor = db.session.get(type(patient), provider.user_id)
    clock.move_to(START - timedelta(hours=2))
    quoted_provider_cancel(doctor, visit.items[0].id, "Emergency surgery")
    [refund] = rows_by_type()[mm.REFUND_GATEWAY]
    assert (refund.status, refund.bucket, refund.amount) == ("PENDING", None, TOTAL)
    settle_refunds(gateway)

    kinds = rows_by_type()
    [refund] = kinds[mm.REFUND_GATEWAY]
    assert (refund.status, refund.bucket) == ("PROCESSED", "refund")
    assert refund.reference.startswith("rfnd_") and refund.visit_number == visit.number
    [penalty] = kinds[mm.PROVIDER_PENALTY]
    assert (penalty.amount, penalty.provider_id, penalty.patient_id) == (
        25_000,
        provider.id,
        None,
    )
    assert penalty.party_name == provider.display_name and penalty.visit_id == visit.id

    today = START.date()
    s = summary(MovementFilter(start=NOW.date(), end=today))
    assert (s.money_in, s.refunds, s.payouts, s.net) == (TOTAL, TOTAL, 0, 0)


def test_a_failed_payment_is_marked_and_a_rollback_leaves_no_row(paid):
    _patient, visit = paid
    with unit_of_work():
        db.session.add(
            Payment(master_id=visit.id, kind=ORDER, amount=TOTAL, status=PaymentStatus.FAILED)
        )
    failed = db.session.scalar(sa.select(MoneyMovement).where(MoneyMovement.failed.is_(True)))
    assert failed.status == "FAILED" and failed.bucket is None

    before = db.session.scalar(sa.select(sa.func.count()).select_from(MoneyMovement))
    with pytest.raises(RuntimeError), unit_of_work():
        db.session.add(Payment(master_id=visit.id, kind=ORDER, amount=1))
        db.session.flush()
        raise RuntimeError("the use case fails")
    # Inside a committed use case, a failed inner step (SAVEPOINT) leaves no row either.
    with unit_of_work():
        db.session.add(Payment(master_id=visit.id, kind=ORDER, amount=2))
        with pytest.raises(RuntimeError), unit_of_work():
            db.session.add(Payment(master_id=visit.id, kind=ORDER, amount=3))
            db.session.flush()
            raise RuntimeError("the inner step fails")
    amounts = set(db.session.scalars(sa.select(MoneyMovement.amount)))
    assert 2 in amounts and 1 not in amounts and 3 not in amounts
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MoneyMovement)) == before + 1


def test_the_detail_page_shows_timeline_razorpays_record_and_audit(
    app, paid, client, make_user, login
):
    _patient, visit = paid
    pay = db.session.scalar(sa.select(MoneyMovement).where(MoneyMovement.bucket == "in"))
    movement_id, reference = pay.id, pay.reference
    login(make_user("admin", email="finance@example.com"))
    html = client.get(f"/admin/transactions/{movement_id}").get_data(as_text=True)
    theirs = html.split('id="theirs"')[1].split("</section>")[0]
    assert reference in theirs and "captured" in theirs  # fetched from the sandbox
    timeline = html.split('id="timeline"')[1].split("</section>")[0]
    assert "order payment created" in timeline and "ledger: visit_confirmed" in timeline
    assert 'id="audit"' in html

    saved = app.config["RAZORPAY_BASE_URL"], app.config.get("SANDBOX_INPROCESS")
    app.config.update(RAZORPAY_BASE_URL="http://127.0.0.1:9", RAZORPAY_RETRIES=0)
    app.config["SANDBOX_INPROCESS"] = False
    app.extensions.pop("gateway_adapters", None)
    try:
        answer = client.get(f"/admin/transactions/{movement_id}")
    finally:
        app.config["RAZORPAY_BASE_URL"], app.config["SANDBOX_INPROCESS"] = saved
        app.config.pop("RAZORPAY_RETRIES", None)
        app.extensions.pop("gateway_adapters", None)
    assert answer.status_code == 200
    assert "Razorpay could not be reached" in answer.get_data(as_text=True)


def test_a_manual_wallet_adjustment_is_a_movement_with_its_ledger_posting(
    app, paid, client, make_user, login
):
    from portal.wallet import adjustments as adj

    patient, _visit = paid
    admin = make_user("admin", email="adjuster@example.com")
    made = adj.create_adjustment(
        db.session.get(type(patient), admin.id),
        patient.id,
        adj.CREDIT,
        5_000,
        "Goodwill credit after a long wait at the desk",
        "Sorry for the wait",
    )
    row = db.session.scalar(sa.select(MoneyMovement).where(MoneyMovement.type == mm.ADJUSTMENT))
    assert (row.source, row.source_id, row.amount, row.net) == (
        "wallet_adjustment",
        made.id,
        5_000,
        5_000,
    )
    assert (row.status, row.patient_id, row.bucket) == (made.status, patient.id, None)
    login(admin)
    html = client.get(f"/admin/transactions/{row.id}").get_data(as_text=True)
    timeline = html.split('id="timeline"')[1].split("</section>")[0]
    assert "adjustment asked" in timeline and "ledger: " in timeline


def test_a_rebuild_never_writes_back_a_status_that_changed_meanwhile(
    app, ctx, make_user, monkeypatch
):
    """``flask transactions rebuild`` run while the portal is live (review finding): it read
    a record, and upserted its row later; a record that changed in between (a ₹15,000
    adjustment approved by the second admin) had its fresh row overwritten by the stale
    copy, for good. The approval here commits from another session right after the
    rebuild projected the adjustment, before the rebuild writes it."""
    from portal.domain.states import AdjustmentStatus
    from portal.transactions import projection
    from portal.wallet import adjustments as adj
    from portal.wallet.models import WalletAdjustment

    first, second = make_user("admin"), make_user("admin", email="checker@example.com")
    first = db.session.get(type(first), first.id)
    patient = make_user("patient")
    made = adj.create_adjustment(
        first,
        patient.id,
        adj.CREDIT,
        15_000_00,  # over ₹10,000: waits for a second admin
        "Goodwill credit after the clinic's billing mistake",
        "Goodwill credit for a billing mistake",
    )
    assert made.status == AdjustmentStatus.PENDING_APPROVAL
    adjustment_id, checker_id = made.id, second.id
    db.session.commit()
    original = projection.PROJECTORS[WalletAdjustment]

    def approved_meanwhile(obj):
        row = original(obj)  # read before the approval, as the rebuild does
        if obj.id == adjustment_id and row["status"] == AdjustmentStatus.PENDING_APPROVAL:
            with app.app_context():  # the second admin's request, in a session of its own
                adj.approve_adjustment(db.session.get(type(second), checker_id), adjustment_id)
        return row

    monkeypatch.setitem(projection.PROJECTORS, WalletAdjustment, approved_meanwhile)
    projection.rebuild()
    db.session.expire_all()
    status = db.session.get(WalletAdjustment, adjustment_id).status
    row = db.session.scalar(
        sa.select(MoneyMovement).where(
            MoneyMovement.source == "wallet_adjustment", MoneyMovement.source_id == adjustment_id
        )
    )
    assert status == AdjustmentStatus.APPLIED
    assert row.status == status, f"console says {row.status}, the adjustment is {status}"
    # A rebuild with nothing changing meanwhile writes every row as before.
    monkeypatch.setitem(projection.PROJECTORS, WalletAdjustment, original)
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    assert projection.rebuild() >= 1
    db.session.expire_all()
    row = db.session.scalar(sa.select(MoneyMovement).where(MoneyMovement.type == mm.ADJUSTMENT))
    assert (row.status, row.amount, row.net) == (AdjustmentStatus.APPLIED, 15_000_00, 15_000_00)


def _names():
    db.session.expire_all()
    return {
        (m.source, m.source_id): m.party_name for m in db.session.scalars(sa.select(MoneyMovement))
    }


def test_a_row_keeps_the_name_at_the_time_live_and_rebuilt(world, users, gateway, clock, paid):
    """docs/transactions.md: a row shows the patient or provider by "the name at the time",
    and the rebuild writes what the live projection wrote. The projectors read the current
    name (review finding): after a rename, a row projected again (a refund's webhook, a
    settlement) and every row ``flask transactions rebuild`` wrote took the new one, so the
    console no longer showed the name on the invoice. A patient's row on a visit now takes
    the name the visit was invoiced to (``visits.billed_to_name``); any other row keeps the
    name it was first written with."""
    from portal.transactions import projection

    patient, visit = paid
    provider = db.session.get(Provider, world.doctors[0])
    then, provider_then = patient.name, provider.display_name
    doctor = db.session.get(type(patient), provider.user_id)
    patient.name, provider.display_name = "Renamed Patient", "Dr Renamed"
    db.session.commit()

    # Live: rows written after the rename, of this visit and of the provider before it.
    clock.move_to(START - timedelta(hours=2))
    quoted_provider_cancel(doctor, visit.items[0].id, "Emergency surgery")
    settle_refunds(gateway)
    kinds = rows_by_type()
    [pay], [refund], [penalty] = (
        kinds[mm.PAYMENT_ONLINE],
        kinds[mm.REFUND_GATEWAY],
        kinds[mm.PROVIDER_PENALTY],
    )
    assert pay.party_name == refund.party_name == then  # the name on the invoice
    assert penalty.party_name == "Dr Renamed"  # first written after the rename
    live, key = _names(), ("ledger", penalty.source_id)

    # A rebuild over the rows writes the same names ...
    provider.display_name = "Dr Renamed Again"
    patient = db.session.get(type(patient), patient.id)
    patient.name = "Renamed Twice"
    db.session.commit()
    projection.rebuild()
    assert _names() == live
    # ... and so does one into an emptied table, for every row on the visit.
    db.session.execute(sa.delete(MoneyMovement))
    db.session.commit()
    projection.rebuild()
    rebuilt = _names()
    assert {k: v for k, v in rebuilt.items() if k != key} == {
        k: v for k, v in live.items() if k != key
    }
    # No record keeps a provider's name: a row written afresh takes today's.
    assert rebuilt[key] == "Dr Renamed Again" and provider_then != rebuilt[key]
