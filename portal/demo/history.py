"""Three months of demo history (issue #16, "A demo worth opening"), made through the real
use cases, each at its own past moment (``portal.db.clock_moved_by``): visits booked and
paid at the desk or from the wallet, completed (earnings on the providers' payables),
cancelled by the patient (refunds to the wallet) or by the doctor (a penalty), moved to
another time, weekly payout runs and instant payouts (TDS once a provider's year passes
the threshold), and the notifications and mails all of it sends.

Desk and wallet payments, not online ones: they need no gateway (docs/demo.md). Payouts
do go through RazorpayX (the mounted sandbox, in-process while loading, its clock on the
history's moments) and end PROCESSED there, so nothing stays open at the gateway.

Idempotent: it runs once, when no demo patient has a visit yet."""

import logging
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial

import sqlalchemy as sa
from flask import current_app

from portal.accounts.models import PATIENT, User
from portal.booking import checkout, prices, visits
from portal.booking import reschedule as booking_reschedule
from portal.booking.models import IndividualBooking, MasterBooking
from portal.catalog.models import Provider, Service
from portal.db import clock_moved_by, unit_of_work, utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.gateway.sandbox.delivery import wsgi_transport
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.notify import reminders
from portal.payouts import completion, fund_accounts, runs
from portal.payouts.common import current_fund_account
from portal.refunds import cancel as refunds_cancel
from portal.refunds import previews as refunds_previews
from portal.refunds import shown as refunds_shown

WEEKS = 13
CALLBACK = "/me/visits"  # never followed: desk and wallet payments confirm at once

PATIENTS = (  # email, name, phone
    ("patient@demo.clinic", "Priya Sharma", "+919812345678"),
    ("rahul.verma@demo.clinic", "Rahul Verma", "+919845012345"),
    ("ananya.iyer@demo.clinic", "Ananya Iyer", "+919900112233"),
    ("farhan.sheikh@demo.clinic", "Farhan Sheikh", "+919822334455"),
    ("kiran.patil@demo.clinic", "Kiran Patil", "+919765432109"),
)
# provider email, service name, clinic name, local hour, visits a week
ROUTINE = (
    ("doctor@demo.clinic", "General consultation", "Indiranagar Family Clinic", 10, 1),
    ("kavya.hegde@demo.clinic", "Chemical peel (cosmetic)", "Indiranagar Family Clinic", 11, 2),
    ("anil.kumar@demo.clinic", "Heart consultation", "Jayanagar Health Centre", 9, 1),
    (
        "labs.bengaluru@demo.clinic",
        "Thyroid profile (T3, T4, TSH)",
        "Jayanagar Health Centre",
        15,
        1,
    ),
)
BANK = {"holder_name": "Demo Provider", "ifsc": "HDFC0001234", "account_number": "50100012345678"}


@dataclass
class _World:
    admin: User
    patients: list
    offers: list  # (provider, provider user, service, clinic, hour, per week)


def load_history(echo=print):
    """Create the history when it is not there yet (the mounted sandbox is needed for the
    payouts: the embedded mode)."""
    app = current_app._get_current_object()
    if "razorpay_sandbox" not in app.extensions:
        echo("Demo history skipped: it needs the embedded sandbox.")
        return
    counts = {"visits": 0, "completed": 0, "cancelled": 0, "moved": 0}
    with _quiet(), _no_fsync():
        world = _world()
        if world is None:
            echo("Demo history skipped: the demo catalog is not loaded.")
            return
        if db.session.scalar(
            sa.select(sa.func.count(MasterBooking.id)).where(
                MasterBooking.patient_id.in_([p.id for p in world.patients])
            )
        ):
            return
        with _sandbox_in_process(app) as sandbox:
            _validate_bank_accounts(world, sandbox)
            today = datetime.now(CLINIC_TZ).date()
            monday = today - timedelta(days=today.weekday())
            timeline = _Timeline()
            for week in range(WEEKS, 0, -1):
                _one_week(world, monday - timedelta(weeks=week), week, counts, sandbox, timeline)
            timeline.run()
        _settle_reminders(world)
    echo(
        f"Demo history: {counts['visits']} visits over {WEEKS} weeks "
        f"({counts['completed']} completed, {counts['cancelled']} cancelled, "
        f"{counts['moved']} moved), payouts and notifications."
    )


def _world():
    admin = db.session.scalar(sa.select(User).where(User.email == "admin@demo.clinic"))
    if admin is None:
        return None
    patients = []
    with unit_of_work():
        for email, name, phone in PATIENTS:
            user = db.session.scalar(sa.select(User).where(User.email == email))
            if user is None:  # demo people who never sign in: no password
                user = User(email=email, name=name, phone=phone, role=PATIENT)
                db.session.add(user)
            patients.append(user)
    offers = []
    for email, service_name, clinic_name, hour, per_week in ROUTINE:
        provider = db.session.scalar(
            sa.select(Provider).join(User, Provider.user_id == User.id).where(User.email == email)
        )
        service = db.session.scalar(sa.select(Service).where(Service.name == service_name))
        if provider is None or service is None:
            return None
        clinic = next((c for c in provider.clinics if c.name == clinic_name), None)
        if clinic is None:
            return None
        offers.append((provider, provider.user, service, clinic, hour, per_week))
    return _World(admin, patients, offers)


def _at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=CLINIC_TZ)


def _moved_to(moment):
    """The clock set so that "now" is ``moment``."""
    return clock_moved_by(moment - datetime.now(CLINIC_TZ))


class _Timeline:
    """The history's steps, run in the order of their moments whatever order the weeks plan
    them in: a week's visits are booked twelve days ahead, before the week before has had
    its payout run, and a step run before an earlier-dated one would act on a world without
    it (a payout run made before a penalty dated days earlier: a statement below zero)."""

    def __init__(self):
        self.steps = []

    def at(self, moment, step):
        self.steps.append((moment, len(self.steps), step))  # same moment: as planned

    def run(self):
        last = None
        for moment, _seq, step in sorted(self.steps, key=lambda s: s[:2]):
            # Never back: a step at the moment of the one before starts where it ended, so
            # the postings' dates follow the order they were made in.
            with _moved_to(max(moment, last or moment)):
                step()
                last = utcnow()


@dataclass
class _Visit:
    """One planned visit; ``item`` is its booking once the booking step has run."""

    patient: User
    provider: Provider
    provider_user: User
    service: Service
    clinic: object
    start: datetime
    paid_as: int
    item: object = None


def _one_week(world, monday, week, counts, sandbox, timeline):
    """Plan a week of visits: booked the Friday before, paid, then completed on the day;
    some cancelled or moved; the weekly payout run on the Monday after."""
    # Booked 12 days ahead: a move is free (over 72 h) and a cancellation refunds it all.
    booked_on = _at(monday - timedelta(days=12), 18)
    n = 0
    for provider, provider_user, service, clinic, hour, per_week in world.offers:
        for k in range(per_week):
            n += 1
            patient = world.patients[(week + n) % len(world.patients)]
            day = monday + timedelta(days=(n + k * 2) % 5)
            visit = _Visit(
                patient, provider, provider_user, service, clinic, _at(day, hour + k), week + n
            )
            story = _story(week, n)
            timeline.at(booked_on, partial(_book, world, visit))
            counts["visits"] += 1
            if story == "cancelled":
                timeline.at(booked_on + timedelta(hours=2), partial(_cancel_as_patient, visit))
                counts["cancelled"] += 1
                continue
            if story == "doctor cancelled":
                timeline.at(booked_on + timedelta(days=1), partial(_cancel_as_doctor, visit))
                counts["cancelled"] += 1
                continue
            start = visit.start
            if story == "moved":
                start = start + timedelta(days=1 if day.weekday() < 4 else -1)
                timeline.at(booked_on + timedelta(hours=1), partial(_move, visit, start))
                counts["moved"] += 1
            ends = start + timedelta(minutes=service.duration_minutes)
            timeline.at(ends, partial(_complete, visit, sandbox))
            counts["completed"] += 1
    run_at = _at(monday + timedelta(days=7), 7)
    # The last week's run falls on this Monday at 07:00: loaded before then, it is the
    # scheduler's to make, not a payout dated hours ahead of now.
    if run_at <= utcnow():
        timeline.at(run_at, partial(_pay_out, monday + timedelta(days=6), sandbox))


def _book(world, visit):
    visit.item = visits.add_item(
        visit.patient,
        patient_id=visit.patient.id,
        service_id=visit.service.id,
        provider_ids=[visit.provider.id],
        clinic_id=visit.clinic.id,
        start_at=visit.start,
    )
    _pay(world, visit.patient, visit.item.master_id, visit.paid_as)


def _cancel_as_patient(visit):
    # As the cancel page does: the refund it previews, which the cancellation confirms.
    ids = [visit.item.id]
    shown = refunds_previews.preview_cancellation(
        visit.patient, visit.item.master_id, ids, prefer_wallet=True
    )
    refunds_cancel.cancel_items_as_patient(
        visit.patient,
        visit.item.master_id,
        ids,
        prefer_wallet=True,
        reason="Plans changed",
        expected_refund=shown.total_refund,
    )


def _cancel_as_doctor(visit):
    # As the doctor's cancel page does: the start, refund and penalty it states, which the
    # cancellation confirms.
    item = db.session.get(IndividualBooking, visit.item.id)
    shown = refunds_shown.shown_for(item, refunds_previews.preview_provider(item))
    refunds_cancel.cancel_as_provider(
        visit.provider_user, visit.item.id, "Called to surgery", shown=shown
    )


def _move(visit, start):
    # As the patient's page does: the fee quoted (shown), then the move confirming it.
    item, shown = booking_reschedule.quote(visit.patient, visit.item.id)
    booking_reschedule.reschedule(
        visit.patient,
        visit.item.id,
        start.astimezone(CLINIC_TZ),
        pay_with="wallet",
        expected_fee=shown.total,
        shown_start=item.start_at,
    )


def _complete(visit, sandbox):
    completion.start_booking(visit.provider_user, visit.item.id)
    completion.complete_booking(visit.provider_user, visit.item.id)
    sandbox.settle()


def _pay_out(sunday, sandbox):
    runs.run_cycle("WEEKLY", sunday)
    sandbox.settle()


def _settle_reminders(world):
    """The reminders of visits now in the past: the scheduler never ran while the clock
    jumped, so they are withdrawn (the bookings are completed or cancelled) rather than
    left for the server's first minute to skip one by one."""
    ids = db.session.scalars(
        sa.select(IndividualBooking.id)
        .join(MasterBooking, IndividualBooking.master_id == MasterBooking.id)
        .where(MasterBooking.patient_id.in_([p.id for p in world.patients]))
    ).all()
    with unit_of_work():
        for booking_id in ids:
            reminders.sync_reminders(booking_id)


def _story(week, n):
    """Most visits happen; every few a cancellation, a doctor's cancellation or a move."""
    if (week * 7 + n) % 11 == 0:
        return "cancelled"
    if (week * 5 + n) % 23 == 0:
        return "doctor cancelled"
    if (week * 3 + n) % 9 == 0:
        return "moved"
    return "kept"


def _pay(world, patient, visit_id, n):
    """Every third visit from the wallet (topped up at the desk first), the rest at the
    desk."""
    if n % 3 == 0:
        visit = db.session.get(MasterBooking, visit_id)
        total = sum(i.total for i in visit.items)
        _top_up(patient, total)
        # As the pay button does: the amounts it states, which checkout confirms.
        shown = prices.pay_quote(visit, total)
        checkout.checkout(
            patient,
            visit_id,
            total,
            callback_url=CALLBACK,
            shown=(shown.wallet_used, shown.amount_due),
        )
    else:
        # As the admin's desk button does: the amount it states, which the payment confirms.
        shown = prices.desk_quote(db.session.get(MasterBooking, visit_id))
        checkout.record_desk_payment(
            world.admin, visit_id, f"DESK-{visit_id:05d}", confirmed_amount=shown.amount_due
        )


def _top_up(patient, amount):
    """Money the patient left at the desk for later (a manual wallet credit)."""
    with unit_of_work():
        post(
            "desk_top_up",  # not a wallet adjustment: those have their own rows and approvals
            [debit(chart.CASH_DESK, amount), credit(chart.patient_wallet(patient.id), amount)],
            reference=("user", patient.id),
            memo="Paid in at the clinic desk for a visit",
        )


def _validate_bank_accounts(world, sandbox):
    with _moved_to(_at(date.today() - timedelta(weeks=WEEKS + 1), 10)):
        for provider, user, *_rest in world.offers:
            if current_fund_account(provider.id) is None:
                fund_accounts.save_bank_account(user, provider.id, **BANK)
        sandbox.settle()


class _InProcess:
    """The mounted sandbox driven by hand: its webhooks go into this app without a socket
    (no server runs while the demo loads) and its time moves when we say (and is put back
    when the history is done: ``_sandbox_in_process``)."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def settle(self, rounds=6):
        db.session.commit()
        store = self.sandbox.store
        with store.lock:
            offset = store.offset
        for _ in range(rounds):
            self.sandbox.advance(30)
            results = self.sandbox.deliver_pending(force=True)
            if not results and not store.pending_steps():
                break
        # Moved ahead only to run that work: back on the history's clock, or the next
        # payouts would carry a gateway time minutes after ours (reconciliation: time differs).
        with store.lock:
            store.offset = offset


class _sandbox_in_process:
    def __init__(self, app):
        self.app = app

    def __enter__(self):
        app, sandbox = self.app, self.app.extensions["razorpay_sandbox"]
        self.saved = {k: app.config.get(k) for k in ("SANDBOX_INPROCESS", "RAZORPAYX_RATE_LIMIT")}
        self.transport = sandbox.webhooks.transport
        self.clock = sandbox.store.clock
        with sandbox.store.lock:
            self.offset = sandbox.store.offset
        # The gateway's records of the history (validations, payouts) carry the history's
        # moments, as ours do: the reconciliation run over the last weeks matches them.
        sandbox.store.clock = lambda: utcnow().timestamp()
        sandbox.stop()
        sandbox.webhooks.transport = wsgi_transport(app)
        app.config.update(SANDBOX_INPROCESS=True, RAZORPAYX_RATE_LIMIT=0)
        app.extensions.pop("gateway_adapters", None)
        return _InProcess(sandbox)

    def __exit__(self, *exc):
        app, sandbox = self.app, self.app.extensions["razorpay_sandbox"]
        # Back on real time. The offset is kept with the sandbox's shared state: a gateway
        # left minutes ahead made every later payment's time differ from ours (the
        # reconciliation demo, the served demo).
        sandbox.store.clock = self.clock
        with sandbox.store.lock:
            sandbox.store.offset = self.offset
        sandbox.webhooks.transport = self.transport
        app.config.update(self.saved)
        app.extensions.pop("gateway_adapters", None)
        return False


class _no_fsync:
    """SQLite need not wait for the disk at each of the history's thousand commits (most
    of the loading time otherwise); a crash while loading just means loading again."""

    @staticmethod
    def _off(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous = OFF")

    def __enter__(self):
        db.session.remove()
        db.engine.dispose()
        sa.event.listen(db.engine, "connect", self._off)

    def __exit__(self, *exc):
        db.session.remove()
        sa.event.remove(db.engine, "connect", self._off)
        db.engine.dispose()
        return False


class _quiet:
    """The mails of three months are written to the log in the embedded mode: not to the
    terminal of ``make run``."""

    def __enter__(self):
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        logging.disable(logging.NOTSET)
        return False


__all__ = ["load_history"]
