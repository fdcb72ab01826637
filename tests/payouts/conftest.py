"""Fixtures for the payout capability.

- The capability's modules are imported here until create_app's CAPABILITIES lists them.
- ``x``: a Razorpay-compatible sandbox served over real HTTP on a port of its own (so
  injected timeouts are real client timeouts), its RazorpayX webhooks delivered into the
  portal in-process, and the payout engine pointed at it (no rate limit, no sleeping).
- ``world``: builders for providers, bookings, earnings and penalties.
- After every test the ledger check must pass (autouse).
- ``mid_year``: the clock well inside a financial year (TDS is counted per year: a test
  whose payouts straddle 1 April 00:00 IST sees two years).
"""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from tests.threads import serve


@pytest.fixture
def mid_year():
    """Every clock at 20 November 2026, 10:00 IST, ticking (list it first: before ``x``)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine

    with time_machine.travel(datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Kolkata"))):
        yield


KEY_ID, KEY_SECRET = "rzp_test_payouts", "payouts_secret_123"
ACCOUNT_NUMBER = "7878780080316316"
X_WEBHOOK_SECRET = "whsec_payouts_x"


@dataclass
class X:
    url: str
    sandbox: object
    adapter: object

    def settle(self, seconds=10.0, rounds=6):
        """Let RazorpayX move on (queued → processing → final) and deliver its webhooks
        into the portal; repeated so retries started by a webhook also finish."""
        db.session.commit()  # the test's own session must not hold SQLite's lock
        for _ in range(rounds):
            self.sandbox.advance(seconds)
            results = self.sandbox.deliver_pending()
            if not results and not self.sandbox.store.pending_steps():
                break
        db.session.expire_all()

    def deliver(self):
        db.session.commit()
        results = self.sandbox.deliver_pending()
        db.session.expire_all()
        return results

    def payouts(self):
        return list(self.sandbox.store.payouts.values())


@pytest.fixture
def x(app):
    with sandbox_x(app) as served:
        yield served


@contextmanager
def sandbox_x(app):
    """The ``x`` fixture's sandbox for any app (``pg_app``'s tests use it too)."""
    from portal.gateway.payouts import RazorpayXPayouts
    from portal.gateway.sandbox import create_sandbox_app
    from portal.gateway.sandbox.delivery import wsgi_transport
    from portal.payouts import gateway as payouts_gateway
    from portal.payouts.ratelimit import TokenBucket

    sandbox_app = create_sandbox_app(
        {
            "KEY_ID": KEY_ID,
            "KEY_SECRET": KEY_SECRET,
            "X_ACCOUNT_NUMBER": ACCOUNT_NUMBER,
            "X_WEBHOOK_URL": "http://portal.test/webhooks/razorpayx",
            "X_WEBHOOK_SECRET": X_WEBHOOK_SECRET,
            "WEBHOOK_THREAD": False,
            "SEED": 11,
            "WEBHOOK_TRANSPORT": wsgi_transport(app),
        }
    )
    served = serve(sandbox_app)
    url = served.url
    adapter = RazorpayXPayouts(
        KEY_ID,
        KEY_SECRET,
        ACCOUNT_NUMBER,
        url,
        timeout=0.5,
        retries=0,
        backoff=0,
        sleep=lambda s: None,
    )
    saved = {
        k: app.config.get(k)
        for k in (
            "RAZORPAYX_WEBHOOK_SECRET",
            "PAYOUT_RETRY_BACKOFF_SECONDS",
            "PAYOUT_RESEND_BACKOFF_SECONDS",
        )
    }
    app.config["RAZORPAYX_WEBHOOK_SECRET"] = X_WEBHOOK_SECRET
    payouts_gateway.install(app, adapter=adapter, bucket=TokenBucket(None))
    sandbox = sandbox_app.extensions["razorpay_sandbox"]
    try:
        yield X(url, sandbox, adapter)
    finally:
        payouts_gateway.uninstall(app)
        for key, value in saved.items():
            if value is None:
                app.config.pop(key, None)
            else:
                app.config[key] = value
        sandbox.stop()
        adapter.close()
        served.stop()


@pytest.fixture
def immediate_retries(app):
    """Automatic retries and resends due at once (run inline after each commit)."""
    app.config["PAYOUT_RETRY_BACKOFF_SECONDS"] = 0
    app.config["PAYOUT_RESEND_BACKOFF_SECONDS"] = 0
    yield
    app.config.pop("PAYOUT_RETRY_BACKOFF_SECONDS", None)
    app.config.pop("PAYOUT_RESEND_BACKOFF_SECONDS", None)


@pytest.fixture(autouse=True)
def _ledger_balances_after_each_test(ledger_stays_sound):
    """Every payout test ends with a sound ledger (see tests/conftest.py)."""


# --- builders ---------------------------------------------------------------------------------


class World:
    def __init__(self, app, make_user, x=None):
        self.app = app
        self.make_user = make_user
        self.x = x
        self._clinic = None
        self._service = None
        self._patient = None
        self._n = 0

    # catalog
    def clinic(self):
        from portal.catalog.models import Clinic, Specialization

        if self._clinic is None:
            spec = Specialization(name="General medicine")
            clinic = Clinic(name="Indiranagar Clinic", city="Bengaluru", address="100 ft Rd")
            db.session.add_all([spec, clinic])
            db.session.flush()
            self._clinic, self._spec = clinic, spec
        return self._clinic

    def service(self, fee=100_000):
        from portal.catalog.models import Service

        self.clinic()
        service = Service(
            name=f"Consultation {fee}",
            fee_paise=fee,
            duration_minutes=30,
            specialization_id=self._spec.id,
        )
        db.session.add(service)
        db.session.flush()
        return service

    def provider(self, schedule="WEEKLY", commission_bps=500, name=None, pan=None):
        """A provider; ``pan``: the PAN on file (none by default: past the threshold their
        payouts deduct section 206AA's 20%, not 194J's 10%)."""
        from portal.accounts.models import User
        from portal.catalog.models import Provider

        user = self.make_user("provider", name=name)
        user = db.session.get(User, user.id)
        provider = Provider(
            user_id=user.id,
            display_name=name or f"Dr {user.name}",
            commission_bps=commission_bps,
            payout_schedule=schedule,
            pan=pan,
        )
        db.session.add(provider)
        db.session.flush()
        provider.clinics.append(self.clinic())
        db.session.commit()
        return provider, user

    def patient(self):
        from portal.accounts.models import User

        if self._patient is None:
            self._patient = self.make_user("patient")
        return db.session.get(User, self._patient.id)

    def booking(self, providers, fee=100_000, start=None, status="CONFIRMED"):
        """A paid (CONFIRMED) booking, its confirmation posted to the ledger."""
        from portal.booking import postings
        from portal.booking.models import IndividualBooking, MasterBooking
        from portal.db import utcnow
        from portal.domain.pricing import price_item
        from portal.ledger import accounts as chart

        providers = providers if isinstance(providers, (list, tuple)) else [providers]
        patient = self.patient()
        start = start or utcnow().replace(microsecond=0) - timedelta(minutes=10)
        service = self.service(fee)
        price = price_item(fee)
        visit = MasterBooking(patient_id=patient.id, created_by_id=patient.id, status="CONFIRMED")
        db.session.add(visit)
        db.session.flush()
        visit.number = f"V{visit.id:06d}"
        item = IndividualBooking(
            service=service,
            clinic=self.clinic(),
            start_at=start,
            end_at=start + timedelta(minutes=30),
            status=status,
            fee=price.fee,
            platform_fee=price.platform_fee,
            gst=price.gst,
            total=price.total,
            taxable=price.taxable_value,
            paid_amount=price.total,
            gateway_paid=price.total,
        )
        item.providers = list(providers)
        visit.items.append(item)
        db.session.flush()
        if status == "CONFIRMED":
            postings.post_confirmation(
                visit, gateway_amount=price.total, wallet_amount=0, money_account=chart.CASH_DESK
            )
        db.session.commit()
        return item

    def complete(self, booking, user):
        from portal.payouts.completion import complete_booking, start_booking

        start_booking(user, booking.id)
        return complete_booking(user, booking.id)

    def earn(self, provider, user, fee):
        """Complete a booking of fee F for the provider (earning F − commission)."""
        return self.complete(self.booking(provider, fee=fee), user)

    def penalty(self, provider, amount=25_000):
        from portal.ledger import accounts as chart
        from portal.ledger.service import credit, debit, post

        self._n += 1
        post(
            "provider_penalty",
            [
                debit(chart.provider_payable(provider.id), amount),
                credit(chart.PENALTY_REVENUE, amount),
            ],
            reference=("provider", provider.id),
            idempotency_key=f"test-penalty:{self._n}",
        )
        db.session.commit()

    def onboard(
        self, provider, user, *, vpa=None, number="50100012345678", ifsc="HDFC0001234", settle=True
    ):
        from portal.payouts import fund_accounts

        if vpa:
            row = fund_accounts.save_vpa(user, provider.id, vpa=vpa)
        else:
            row = fund_accounts.save_bank_account(
                user, provider.id, holder_name="Asha Rao", ifsc=ifsc, account_number=number
            )
        if settle:
            self.x.settle()
        return db.session.get(type(row), row.id)

    def ready_provider(self, schedule="WEEKLY", **kwargs):
        provider, user = self.provider(schedule, **kwargs)
        self.onboard(provider, user)
        return provider, user


@pytest.fixture
def world(app, ctx, make_user, request):
    x = request.getfixturevalue("x") if "x" in request.fixturenames else None
    return World(app, make_user, x)


def payable(provider_id):
    from portal.ledger import accounts as chart
    from portal.ledger.service import balance

    return balance(chart.provider_payable(provider_id))


def payout_fees():
    """(fees, tax) of one sandbox payout, as RazorpayX's entity says them: ₹5 + 18% GST,
    "fees" including the GST (https://razorpay.com/docs/api/x/payouts/entity: 590, 90)."""
    from portal.gateway.sandbox.common import GST_BPS, PAYOUT_FEE, round_half_up

    tax = round_half_up(PAYOUT_FEE * GST_BPS, 10_000)
    return PAYOUT_FEE + tax, tax


def paid_out(*nets):
    """What `bank` (the RazorpayX balance) lost for processed payouts of these nets: each
    net and RazorpayX's fee with its GST, taken from the balance on top of the amount."""
    return sum(nets) + len(nets) * payout_fees()[0]


def account(code):
    from portal.ledger.service import balance

    return balance(code)


def payouts_of(provider_id):
    from portal.payouts.models import Payout

    db.session.expire_all()
    return db.session.scalars(
        sa.select(Payout).where(Payout.provider_id == provider_id).order_by(Payout.id)
    ).all()
