"""Benchmark: one RQ worker draining the outbox, on PostgreSQL and Redis.

    .venv/bin/python -m tests.load.bench_jobs
    .venv/bin/python -m tests.load.bench_jobs --jobs 10000 --visits 300 --runs 3
    .venv/bin/python -m tests.load.bench_jobs --jobs 100 --visits 0      # a quick look

Trivial run: ``--jobs`` outbox items of a job that does nothing are committed (and so handed
to Redis), then one worker (``--workers N``: N at once) (``flask rq worker --burst``, a real subprocess, exactly as the
README starts it) drains them. Real run: ``--visits`` visits are booked and paid from the
wallet through the booking services (each confirmation records ``notify.booking_confirmed``),
then one worker drains the follow-ups: the confirmation (reminders scheduled, notices, the
NEW_BOOKING alert, the mail rendered with its calendar file) and the mail jobs it queues.

Prints jobs/s (over the span between the first and last job done, and over the worker's
whole life including its start-up) and the worker's CPU per job (its own and its
children's: a forking worker's horses count). Each run starts from an empty database
(``BENCH_DATABASE_URL``, default a fresh ``cp_bench_jobs``) and an emptied Redis database
(``BENCH_REDIS_URL``). Medians of ``--runs`` runs. Figures only; no asserts (not collected
by pytest: the file name does not start with ``test_``)."""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal import jobs
from tests.booking.factories import quoted_checkout
from tests.load import http_stack

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/cp_bench_jobs"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The app the worker subprocess loads: this module's factory, so the trivial job is known.
WORKER_APP = "tests.load.bench_jobs:worker_app()"


@jobs.job("bench.noop")
def noop(n=0):
    """The trivial job: all the cost is the runner's (lock the row, mark it done, commit)."""
    return n


def worker_app():
    """``flask --app 'tests.load.bench_jobs:worker_app()'``: the portal from the environment."""
    from portal import create_app

    app = create_app()
    if os.environ.get("BENCH_WORKER"):  # --worker: simple (in-process) or fork
        app.config["JOBS_WORKER"] = os.environ["BENCH_WORKER"]
    return app


def build_app(database_url, redis_url):
    from portal import create_app
    from tests.conftest import _test_config, create_schema, ensure_postgres_database

    if database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    app = create_app(
        _test_config(
            database_url,
            JOBS_INLINE=False,
            REDIS_URL=redis_url,
            RQ_CONNECTION=redis_url,
            RQ_ASYNC=True,
            TESTING=False,
            SANDBOX_ENABLED=False,
            SANDBOX_INPROCESS=False,
        )
    )
    create_schema(app)
    return app


def reset(app, redis_url):
    from redis import Redis

    from tests.conftest import empty_tables

    empty_tables(app)
    Redis.from_url(redis_url).flushdb()


def make_trivial(app, n, per_commit=False):
    """``n`` items in one commit (RQ jobs of ``JOBS_PER_RQ_JOB`` items), or with
    ``per_commit`` a commit each, as requests make them (an RQ job each)."""
    from portal.extensions import db

    with app.app_context():
        for i in range(n):
            jobs.enqueue("bench.noop", n=i)
            if per_commit:
                db.session.commit()
        db.session.commit()  # hands the items to Redis after the commit
        db.session.remove()


def _future_weekdays(count):
    ist = ZoneInfo("Asia/Kolkata")
    day = datetime.now(ist).date() + timedelta(days=2)
    out = []
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out, ist


def make_visits(app, n):
    """``n`` confirmed visits, paid from the wallet: each records its follow-up job."""
    from portal.accounts.models import User
    from portal.booking import lookup, prices, visits
    from portal.extensions import db
    from tests.booking.factories import build_world, credit_wallet

    doctors = 10
    with app.app_context():
        world = build_world(n_patients=doctors, n_doctors=doctors, tag="-bench")
        days, ist = _future_weekdays(n // (doctors * 16) + 2)
        for k in range(n):
            d, slot = k % doctors, k // doctors
            day, index = days[slot // 16], slot % 16
            start = datetime.combine(day, dtime(9), tzinfo=ist).astimezone(UTC) + timedelta(
                minutes=30 * index
            )
            patient = db.session.get(User, world.patients[d])
            item = visits.add_item(
                patient,
                patient_id=patient.id,
                service_id=world.consult,
                provider_ids=[world.doctors[d]],
                clinic_id=world.clinic,
                start_at=start,
            )
            visit = lookup.get_visit(item.master_id)
            total = prices.quote(visit).amount_due
            credit_wallet(patient.id, total)
            quoted_checkout(patient, item.master_id, total, callback_url="http://bench/cb")
            db.session.remove()


def outbox_figures(app):
    from portal.extensions import db
    from portal.outbox import OutboxItem

    with app.app_context():
        done, first, last = db.session.execute(
            sa.select(
                sa.func.count(OutboxItem.done_at),
                sa.func.min(OutboxItem.done_at),
                sa.func.max(OutboxItem.done_at),
            )
        ).one()
        total = db.session.scalar(sa.select(sa.func.count(OutboxItem.id)))
        by_job = dict(
            db.session.execute(
                sa.select(OutboxItem.job, sa.func.count()).group_by(OutboxItem.job)
            ).all()
        )
        db.session.remove()
    span = (last - first).total_seconds() if done and done > 1 else None
    return done, total, span, by_job


def run_worker(database_url, redis_url, log_path, kind=None, workers=1):
    """``workers`` burst workers at once (as the Procfile runs them); returns the wall time
    until the last one exits and their CPU together."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **http_stack.SECRETS,
        "PUBLIC_URL": "http://127.0.0.1:5000",
        "FLASK_APP": WORKER_APP,
    }
    if kind:
        env["BENCH_WORKER"] = kind
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(log_path, "wb") as log_file:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", WORKER_APP, "rq", "worker", "--burst"],
                env=env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            for _ in range(workers)
        ]
        codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if any(codes):
        raise SystemExit(f"a worker failed (exit {codes}); see {log_path}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def one_run(app, args, kind, n):
    reset(app, args.redis_url)
    t0 = time.perf_counter()
    if kind == "trivial":
        make_trivial(app, n, args.per_commit)
    else:
        make_visits(app, n)
    setup = time.perf_counter() - t0
    wall, cpu = run_worker(args.database_url, args.redis_url, args.log, args.worker, args.workers)
    done, total, span, by_job = outbox_figures(app)
    figures = {
        "done": done,
        "total": total,
        "wall": wall,
        "cpu": cpu,
        "per_s_span": done / span if span else float("nan"),
        "per_s_wall": done / wall,
        "cpu_ms": 1000 * cpu / max(done, 1),
    }
    print(
        f"  {kind}: {done}/{total} done (setup {setup:.1f} s); worker {wall:.1f} s wall, "
        f"{cpu:.1f} s CPU; {figures['per_s_span']:.1f} jobs/s (first to last done), "
        f"{figures['per_s_wall']:.1f} jobs/s (whole worker), "
        f"{figures['cpu_ms']:.1f} ms CPU/job  {by_job if kind == 'real' else ''}",
        flush=True,
    )
    return figures


def report(kind, runs):
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(
        f"{kind} (median of {len(runs)}): {med['per_s_span']:.1f} jobs/s first-to-last, "
        f"{med['per_s_wall']:.1f} jobs/s whole worker, {med['cpu_ms']:.1f} ms CPU per job "
        f"({med['done']:.0f} jobs)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--jobs", type=int, default=10_000, help="trivial jobs (0: skip)")
    parser.add_argument("--visits", type=int, default=300, help="confirmed visits (0: skip)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--worker",
        choices=("simple", "fork"),
        help="JOBS_WORKER for the worker (default: the app's default)",
    )
    parser.add_argument(
        "--per-commit",
        action="store_true",
        help="trivial items committed one at a time (an RQ job each, as requests make them)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes draining at once (1)"
    )
    parser.add_argument(
        "--log", default=os.path.join("/tmp", "bench_jobs_worker.log"), help="the worker's output"
    )
    args = parser.parse_args()
    import logging

    logging.getLogger("portal.events").disabled = True  # the setup's own job lines
    app = build_app(args.database_url, args.redis_url)
    print(
        f"database {args.database_url}, redis {args.redis_url}, {args.runs} runs, "
        f"worker {args.worker or 'default'} x {args.workers}"
    )
    for kind, n in (("trivial", args.jobs), ("real", args.visits)):
        if n:
            report(kind, [one_run(app, args, kind, n) for _ in range(args.runs)])
    reset(app, args.redis_url)


if __name__ == "__main__":
    main()
