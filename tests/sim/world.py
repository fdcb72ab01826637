"""The simulated world: one portal app (SQLite by default, PostgreSQL on request) with the
sandbox mounted in-process, and the catalog and people every history starts from."""

import os
import tempfile

import sqlalchemy as sa

from portal import create_app
from portal.accounts.models import User
from portal.catalog.models import Provider
from portal.extensions import db
from tests.booking.factories import build_world
from tests.plugin import _test_config, create_schema, empty_tables, ensure_postgres_database

# Every periodic job the scheduler runs, in a fixed order (reproducible histories).
CONFIG = {
    # No retries inside the adapters: a gateway fault reaches the use case or job, whose
    # own retry (outbox backoff, refund/payout polls) is what the simulation exercises;
    # and no real sleeping between retries.
    "RAZORPAY_RETRIES": 0,
    "RAZORPAYX_RATE_LIMIT": 0,
    "SANDBOX_WEBHOOK_THREAD": False,
    "SANDBOX_INPROCESS": True,
    "SANDBOX_ENABLED": True,
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "RAZORPAY_BASE_URL": "http://127.0.0.1:5000/sandbox",
}


def make_app(database_url=None):
    """The app of a simulation run; ``database_url`` None = a throwaway SQLite file."""
    if database_url is None:
        path = os.path.join(tempfile.mkdtemp(prefix="cp-sim-"), "sim.sqlite3")
        database_url = "sqlite:///" + path
    elif database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    app = create_app(_test_config(database_url, **CONFIG))
    if "razorpay_sandbox" not in app.extensions:
        from portal.gateway.sandbox import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    create_schema(app)
    return app


def reset(app):
    """Empty the database and the sandbox between histories."""
    empty_tables(app)
    app.extensions["razorpay_sandbox"].reset()


def populate(app):
    """The catalog and people (inside an app context): build_world's clinic, doctors, lab,
    patients and admin; one doctor paid out INSTANT, the others weekly; every provider
    with a validated UPI fund account at RazorpayX."""
    from portal.payouts import fund_accounts

    w = build_world(n_patients=3, n_doctors=2)
    first = db.session.get(Provider, w.doctors[0])
    first.payout_schedule = "INSTANT"
    db.session.commit()
    sandbox = app.extensions["razorpay_sandbox"]
    providers = [*w.doctors, w.lab_provider, w.derm]
    for n, provider_id in enumerate(providers):
        provider = db.session.get(Provider, provider_id)
        user = db.session.get(User, provider.user_id)
        fund_accounts.save_vpa(user, provider_id, vpa=f"doc{n}@okhdfc")
    for _ in range(4):
        sandbox.advance(60)
        sandbox.deliver_pending(force=True)
    db.session.expire_all()
    from portal.payouts.models import FundAccount

    states = db.session.scalars(sa.select(FundAccount.status)).all()
    w.fund_accounts = states
    w.provider_users = {pid: db.session.get(Provider, pid).user_id for pid in providers}
    w.providers = providers
    # A second administrator: wallet adjustments above the threshold need one.
    second = User(email="admin2@example.com", name="Admin Two", role="admin", phone=None)
    db.session.add(second)
    db.session.commit()
    w.admins = [w.admin, second.id]
    return w
