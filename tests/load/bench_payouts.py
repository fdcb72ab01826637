"""Benchmark: one WEEKLY payout run over many providers against the Razorpay sandbox.

    .venv/bin/python -m tests.load.bench_payouts                       # 10,000, no limit
    .venv/bin/python -m tests.load.bench_payouts --providers 60 --rate 10
    .venv/bin/python -m tests.load.bench_payouts --database-url postgresql://postgres@127.0.0.1:5432/clinic_portal_bench

The sandbox is served over real HTTP on a port of its own. Providers, their validated fund
accounts and their payable balances are seeded directly (not timed); the timed part is
``run_cycle``: for each provider a payout row, its ledger lines, audit row and send job,
one commit, then the job (run in-process after the commit, as in the embedded mode) sends
the payout to RazorpayX through the engine's rate limiter. Prints a summary, no
assertions (not collected by pytest: the file name does not start with ``test_``)."""

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from datetime import date

import sqlalchemy as sa
from werkzeug.serving import make_server

KEY_ID, KEY_SECRET, ACCOUNT_NUMBER = "rzp_test_bench", "bench_secret", "7878780080316316"


def build_app(database_url):
    import portal.booking.models  # noqa: F401
    import portal.payments.models  # noqa: F401
    import portal.payouts.models  # noqa: F401
    import portal.payouts.tasks  # noqa: F401
    from portal import create_app
    from tests.conftest import _test_config, create_schema, ensure_postgres_database

    if database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    app = create_app(_test_config(database_url, SANDBOX_ENABLED=False))
    create_schema(app)
    return app


def serve_sandbox():
    from portal.gateway.sandbox import create_sandbox_app

    sandbox_app = create_sandbox_app(
        {
            "KEY_ID": KEY_ID,
            "KEY_SECRET": KEY_SECRET,
            "X_ACCOUNT_NUMBER": ACCOUNT_NUMBER,
            "WEBHOOK_THREAD": False,
            "SEED": 1,
        }
    )
    server = make_server("127.0.0.1", 0, sandbox_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, sandbox_app.extensions["razorpay_sandbox"]


def seed(app, sandbox, n, amount):
    from portal.accounts.models import User
    from portal.catalog.models import Provider
    from portal.domain.states import FundAccountStatus
    from portal.extensions import db
    from portal.ledger import accounts as chart
    from portal.ledger.models import LedgerAccount
    from portal.ledger.service import credit, debit, post
    from portal.payouts import models as m

    store = sandbox.store
    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [
                {
                    "email": f"bench{i}@example.com",
                    "email_key": f"bench{i}@example.com",
                    "name": f"Bench Doctor {i}",
                    "role": "provider",
                    "phone": "+919812345678",
                    "active": True,
                }
                for i in range(n)
            ],
        )
        user_ids = db.session.scalars(sa.select(User.id).order_by(User.id)).all()
        db.session.execute(
            sa.insert(Provider),
            [
                {
                    "user_id": uid,
                    "display_name": f"Dr Bench {i}",
                    "kind": "DOCTOR",
                    "commission_bps": 500,
                    "payout_schedule": "WEEKLY",
                    "active": True,
                    "bio": "",
                }
                for i, uid in enumerate(user_ids)
            ],
        )
        provider_ids = db.session.scalars(sa.select(Provider.id).order_by(Provider.id)).all()
        rows = []
        for pid in provider_ids:  # fund accounts at the sandbox, validated
            contact, _ = store.create_contact(
                {"name": f"Dr Bench {pid}", "type": "vendor", "reference_id": f"provider-{pid}"}
            )
            fa, _ = store.create_fund_account(
                {
                    "contact_id": contact["id"],
                    "account_type": "bank_account",
                    "bank_account": {
                        "name": f"Dr Bench {pid}",
                        "ifsc": "HDFC0001234",
                        "account_number": f"5010{pid:010d}",
                    },
                }
            )
            rows.append(
                {
                    "provider_id": pid,
                    "kind": "bank_account",
                    "holder_name": f"Dr Bench {pid}",
                    "ifsc": "HDFC0001234",
                    "account_last4": f"{pid:04d}"[-4:],
                    "razorpay_contact_id": contact["id"],
                    "razorpay_fund_account_id": fa["id"],
                    "status": FundAccountStatus.VALIDATED,
                    "current": True,
                }
            )
        db.session.execute(sa.insert(m.FundAccount), rows)
        codes = [chart.provider_payable(pid) for pid in provider_ids]
        db.session.execute(
            sa.insert(LedgerAccount),
            [
                {
                    "code": code,
                    "kind": "liability",
                    "owner_type": "provider",
                    "owner_id": code.split(":")[1],
                }
                for code in codes
            ],
        )
        db.session.commit()
        post(
            "bench_seed",
            [debit(chart.UNEARNED_FEES, amount * n)] + [credit(code, amount) for code in codes],
            idempotency_key="bench-seed",
        )
        db.session.commit()
    return provider_ids


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument(
        "--rate", type=float, default=0, help="RazorpayX requests per second (0 = no limit)"
    )
    parser.add_argument("--amount", type=int, default=95_000, help="payable per provider, paise")
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # request and job log lines would drown the figures

    tmp = tempfile.mkdtemp(prefix="bench-payouts-")
    url = args.database_url or "sqlite:///" + os.path.join(tmp, "bench.sqlite3")
    app = build_app(url)
    server, sandbox = serve_sandbox()

    from portal.extensions import db
    from portal.gateway.payouts import RazorpayXPayouts
    from portal.ledger.check import verify_ledger
    from portal.payouts import gateway as payouts_gateway
    from portal.payouts import models as m
    from portal.payouts import runs
    from portal.payouts.ratelimit import TokenBucket

    adapter = RazorpayXPayouts(
        KEY_ID,
        KEY_SECRET,
        ACCOUNT_NUMBER,
        f"http://127.0.0.1:{server.server_port}",
        timeout=10,
        retries=2,
    )
    bucket = TokenBucket(args.rate or None)
    payouts_gateway.install(app, adapter=adapter, bucket=bucket)

    started = time.perf_counter()
    seed(app, sandbox, args.providers, args.amount)
    seeded = time.perf_counter() - started
    print(f"seeded {args.providers} providers in {seeded:.1f} s ({url.split(':')[0]})", flush=True)

    started = time.perf_counter()
    with app.app_context():
        run = runs.run_cycle("WEEKLY", date(2026, 11, 22))
        elapsed = time.perf_counter() - started
        created = run.payouts_created
        counts = dict(
            db.session.execute(
                sa.select(m.Payout.status, sa.func.count()).group_by(m.Payout.status)
            ).all()
        )
        sent = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(m.Payout)
            .where(m.Payout.razorpay_payout_id.is_not(None))
        )
        problems = verify_ledger()
    at_gateway = len(sandbox.store.payouts)
    limit = f"{args.rate:g}/s" if args.rate else "none"
    print(
        f"payout run: {args.providers} providers, {created} payouts, {sent} accepted by "
        f"RazorpayX ({at_gateway} at the sandbox), statuses {counts}"
    )
    print(
        f"rate limit {limit}: {elapsed:.2f} s, {bucket.acquired} requests, "
        f"{bucket.acquired / elapsed:.1f} requests/s, "
        f"{created / elapsed:.1f} payouts/s, waited {bucket.waited:.2f} s for tokens"
    )
    print("ledger check:", "OK" if not problems else problems[:5])
    adapter.close()
    server.shutdown()
    return 0 if not problems and at_gateway == created else 1


if __name__ == "__main__":
    sys.exit(main())
