"""Benchmark: the admin dashboard's server time over a year of data for 50 providers, and
what reading the policy costs a request.

    .venv/bin/python -m tests.load.bench_dashboard
    .venv/bin/python -m tests.load.bench_dashboard --providers 50 --days 365 --per-day 6 \\
        --database-url postgresql://postgres@127.0.0.1:5432/cp_policy_bench

Seeds the database (dropped and created afresh) with ``tests/load/dashboard_data.py``'s bulk
inserts (not timed), runs ANALYZE, then times in-process requests through the test client
as a signed-in administrator: ``GET /admin/dashboard`` (the polled fragment: every figure)
and ``GET /admin/`` (the home page with it), the median and the worst of several runs;
"cold" forgets the per-process cache of closed months before each run (every figure read
from the database). Then the policy: ``portal.config.policy()`` called 10 times in each of
many app contexts (one stamp read per context) against the same context's bare overhead.
Prints the machine's load average too (the figures are wall time). Prints figures, asserts nothing (goal: the dashboard under 50 ms)."""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime

import sqlalchemy as sa

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cp_policy_bench"
PASSWORD = "bench password 42"


def build_app(database_url, reuse=False):
    from portal import create_app
    from tests.plugin import _test_config, create_schema, ensure_postgres_database

    if database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    app = create_app(_test_config(database_url, SANDBOX_ENABLED=False))
    if not reuse:
        create_schema(app)
    return app


def timed(fn, runs):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--providers", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=6, help="bookings per provider per day")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--reuse", action="store_true", help="time the data a previous run left (no seeding)"
    )
    args = parser.parse_args(argv)

    from portal.accounts.models import ADMIN, User
    from portal.accounts.passwords import hash_password
    from portal.extensions import db
    from portal.policies import service as policy_service
    from tests.load.dashboard_data import seed_dashboard

    app = build_app(args.database_url, reuse=args.reuse)
    if args.reuse:
        return time_it(app, args)
    now = datetime.now(UTC)
    with app.app_context():
        started = time.perf_counter()
        data = seed_dashboard(now, providers=args.providers, days=args.days, per_day=args.per_day)
        admin = User(
            email="bench-admin@example.com",
            name="Bench Admin",
            role=ADMIN,
            password_hash=hash_password(PASSWORD),
        )
        db.session.add(admin)
        db.session.commit()
        admin_id = admin.id
        policy_service.propose(
            db.session.get(User, admin_id),
            {"payment_failures_for_intervention": 4},
            reason="benchmark version",
        )
        if db.engine.dialect.name == "postgresql":
            # As autovacuum would have by then: statistics, and the visibility map that
            # lets the counts be index-only scans.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        seeded_in = time.perf_counter() - started
    print(
        f"seeded {len(data.bookings):,} bookings, {len(data.payments):,} payments, "
        f"{len(data.failed_attempts):,} failed attempts, {len(data.refunds):,} refunds, "
        f"{len(data.payouts):,} payouts for {args.providers} providers over {args.days} days "
        f"in {seeded_in:.1f} s ({app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]})"
    )

    return time_it(app, args)


def time_it(app, args):
    from portal.config import policy
    from portal.dashboard import queries
    from portal.extensions import db

    client = app.test_client()
    answer = client.post(
        "/auth/login", data={"email": "bench-admin@example.com", "password": PASSWORD}
    )
    assert answer.status_code in (302, 303), answer.status_code

    def fragment():
        response = client.get("/admin/dashboard", headers={"HX-Request": "true"})
        assert response.status_code == 200

    def home():
        assert client.get("/admin/").status_code == 200

    def cold_fragment():
        with app.app_context():
            queries.forget_months()
        fragment()

    fragment()  # warm the connection pool and the templates
    for label, fn in (
        ("GET /admin/dashboard (warm)", fragment),
        ("GET /admin/dashboard (cold: months re-counted)", cold_fragment),
        ("GET /admin/ (home with the dashboard)", home),
    ):
        median, worst = timed(fn, args.runs)
        print(f"{label:<48} median {median:7.1f} ms   worst {worst:7.1f} ms   ({args.runs} runs)")

    with app.app_context():
        dash = queries.dashboard()
        print(
            f"figures: 30-day bookings {dash.windows()[2][1]['bookings'][0]:,}, "
            f"refund p50 {dash.refund_p50 or 0:.0f} s / p95 {dash.refund_p95 or 0:.0f} s, "
            f"payouts without a manual step {dash.automatic_share or 0:.1%}, "
            f"months {[n for _, n in dash.months]}"
        )

    contexts = 500

    # A request that reads the policy already uses the database (the signed-in user):
    # both loops do one query per app context; the difference is the policy's cost.
    def with_policy():
        for _ in range(contexts):
            with app.app_context():
                db.session.execute(sa.text("SELECT 1"))
                for _ in range(10):
                    policy()

    def bare():
        for _ in range(contexts):
            with app.app_context():
                db.session.execute(sa.text("SELECT 1"))

    with app.app_context():
        policy()  # the versions loaded once
    with_ms, _ = timed(with_policy, 3)
    bare_ms, _ = timed(bare, 3)
    per_request_us = (with_ms - bare_ms) / contexts * 1000
    print(
        f"policy(): 10 calls in an app context add {per_request_us:.0f} µs to it "
        f"(one primary-key read of the stamp; a context with one query alone: "
        f"{bare_ms / contexts * 1000:.0f} µs; {contexts} contexts)"
    )
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
