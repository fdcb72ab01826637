"""Reconciliation demo data (``flask demo load``, the embedded mode): visits paid through the
real services against the mounted sandbox, one of each discrepancy class made through the
sandbox's faults, and a run over the last three weeks, so the screen has open cases.

Only when the sandbox is mounted in this process (the embedded default) and no run exists
yet (a second load changes nothing). The sandbox's state is kept in its own database, so
the served demo's gateway knows these payments (docs/reconciliation.md).
"""

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from portal.accounts.models import ADMIN, PATIENT, User
from portal.booking import checkout, lookup, prices, visits
from portal.booking.errors import BookingError
from portal.catalog.models import Provider
from portal.catalog.slots import slot_step
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.payments.models import Payment
from portal.reconcile import run as recon
from portal.reconcile.models import ReconRun
from portal.reconcile.window import day_window
from portal.refunds import cancel as refunds_cancel
from portal.refunds import previews as refunds_previews

LOST_CAPTURE = "payment.authorized,payment.captured,order.paid"


def load(echo=print):
    app = current_app._get_current_object()
    sandbox = app.extensions.get("razorpay_sandbox")
    if sandbox is None or db.session.scalar(sa.select(ReconRun.id).limit(1)) is not None:
        return
    saved = {k: app.config.get(k) for k in ("SANDBOX_INPROCESS", "RECON_PENDING_GRACE_SECONDS")}
    # The adapters call the sandbox mounted here without a socket (no server runs yet); no
    # webhook can be delivered either, so every visit is paid through the checkout return.
    app.config.update(SANDBOX_INPROCESS=True, RECON_PENDING_GRACE_SECONDS=0)
    app.extensions.pop("gateway_adapters", None)
    sandbox.set_faults(drop_webhooks=True)
    try:
        made = _make(sandbox)
    except BookingError as exc:
        echo(f"Reconciliation demo skipped: {exc}")
        return
    finally:
        # The loader's own faults end here; the gateway's altered, hidden and duplicated
        # records stay (the sandbox's shared state): the served gateway answers as the run saw.
        sandbox.reset_faults(records=False)
        for key, value in saved.items():
            if value is None:
                app.config.pop(key, None)
            else:
                app.config[key] = value
        app.extensions.pop("gateway_adapters", None)
    echo(
        f"Reconciliation demo: run {made.id}, {made.matched} matched, "
        f"{made.discrepancies} discrepancies to resolve."
    )


def _slots(provider, service):
    """(start, clinic id): times a few weekdays ahead inside the provider's weekly hours, on
    the grid a patient may book (the windows are the demo's, inside the clinic's hours)."""
    step = slot_step(timedelta(minutes=service.duration_minutes))
    day = utcnow().astimezone(CLINIC_TZ).date() + timedelta(days=3)
    for _ in range(30):
        day += timedelta(days=1)
        for window in provider.availability:
            if window.weekday != day.weekday():
                continue
            first = datetime.combine(day, window.start_time, tzinfo=CLINIC_TZ)
            for k in range(6):
                yield (first + k * step).astimezone(UTC), window.clinic_id


def _make(sandbox):
    patient = db.session.scalar(sa.select(User).where(User.role == PATIENT).order_by(User.id))
    admin = db.session.scalar(sa.select(User).where(User.role == ADMIN).order_by(User.id))
    provider = db.session.scalar(
        sa.select(Provider).where(Provider.services.any()).order_by(Provider.id)
    )
    if patient is None or admin is None or provider is None:
        raise BookingError("no demo patient, admin or provider")
    service = provider.services[0]
    slots = _slots(provider, service)

    def book():
        for start, clinic_id in slots:
            try:
                item = visits.add_item(
                    patient,
                    patient_id=patient.id,
                    service_id=service.id,
                    provider_ids=[provider.id],
                    clinic_id=clinic_id,
                    start_at=start,
                )
            except BookingError:
                continue
            # As the pay button does: the amounts it states, which checkout confirms.
            shown = prices.pay_quote(lookup.get_visit(item.master_id))
            result = checkout.checkout(
                patient,
                item.master_id,
                0,
                callback_url="/",
                shown=(shown.wallet_used, shown.amount_due),
            )
            return item, result.payment.razorpay_order_id
        raise BookingError("no free demo slot")

    def paid():
        item, order_id = book()
        payment = sandbox.store.pay_order(order_id)
        checkout.complete_checkout_callback(
            {
                "razorpay_order_id": order_id,
                "razorpay_payment_id": payment["id"],
                "razorpay_signature": sandbox.store.checkout_signature(order_id, payment["id"]),
            }
        )
        return item, payment

    paid()  # matched
    paid()  # matched
    _item, lost = book()
    sandbox.store.pay_order(lost)  # captured at the gateway; webhooks and return lost
    _item, altered = paid()
    _item, listed_twice = paid()
    _item, hidden = paid()
    _item, late = paid()
    sandbox.stray_payment(49_900)
    cancelled, _payment = paid()
    shown = refunds_previews.preview_cancellation(patient, cancelled.master_id, [cancelled.id])
    refunds_cancel.cancel_items_as_patient(
        patient, cancelled.master_id, [cancelled.id], expected_refund=shown.total_refund
    )
    sandbox.advance(10)  # processed at the gateway, its webhook dropped
    sandbox.set_faults(
        drop_webhooks=True,
        alter={
            altered["id"]: {"amount": altered["amount"] + 10_000},
            # Created 10 minutes after our capture of it (a payment is created before
            # its capture: minutes before is no discrepancy, docs/reconciliation.md).
            late["id"]: {"created_at": _captured(late["id"]) + 600},
        },
        hide=[hidden["id"]],
        duplicate=[listed_twice["id"]],
    )
    time.sleep(1.1)  # a run lists records up to the second before it starts
    today = utcnow().astimezone(CLINIC_TZ).date()
    start, end = day_window(today - timedelta(days=20), today)
    run = recon.start_run(start, end, trigger=recon.ADMIN, actor=admin)
    return recon.execute(run.id)


def _captured(payment_id):
    """Our capture of a gateway payment, unix seconds."""
    paid_at = db.session.scalar(
        sa.select(Payment.paid_at).where(Payment.razorpay_payment_id == payment_id)
    )
    return int(paid_at.timestamp())
