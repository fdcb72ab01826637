"""Benchmark: booking end to end on PostgreSQL with the Razorpay sandbox, and a same-slot race.

    .venv/bin/python -m tests.load.bench_booking
    .venv/bin/python -m tests.load.bench_booking --bookings 400 --workers 8 --racers 50
    .venv/bin/python -m tests.load.bench_booking --database-url sqlite:////tmp/bench.sqlite3

Each booking is what a patient does: hold a slot (``add_item``), check out (a Razorpay order
over real HTTP via the official SDK), pay on the sandbox's checkout page, come back through
the signed callback (``complete_checkout_callback``: SDK signature check, payment fetch,
confirmation, ledger posting, invoice number, confirmation mail job run in-process).
The webhooks the sandbox queued meanwhile (authorized, captured, order.paid for every
booking) are then delivered into the portal and processed (all duplicates of the callback).
Then ``--racers`` threads ask for one slot at the same instant. Prints figures; no asserts
(not collected by pytest: the file name does not start with ``test_``)."""

import argparse
import logging
import statistics
import threading
import time
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from tests.booking.factories import quoted_checkout

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/clinic_portal_bench_booking"
CALLBACK = "http://portal.test/visits/callback"


def build_app(database_url):
    from portal import create_app
    from tests.conftest import _test_config, create_schema, ensure_postgres_database

    if database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    app = create_app(
        _test_config(
            database_url,
            SANDBOX_ENABLED=False,
            SANDBOX_INPROCESS=False,
            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 20, "max_overflow": 60},
        )
    )
    create_schema(app)
    return app


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(seconds):
    return f"{seconds * 1000:7.1f} ms"


def plan(world, n):
    """(patient, doctor, start) for n bookings: doctor i with patient i, no overlaps."""
    from tests.booking.factories import at

    doctors = len(world.doctors)
    days = [d for d in range(1, 60) if (d % 7) not in (5, 6)]  # NOW is a Monday
    out = []
    for k in range(n):
        d, slot = k % doctors, k // doctors
        day, index = days[slot // 18], slot % 18
        start = at(days[0], 9) + timedelta(days=day - days[0], minutes=30 * index)
        out.append((world.patients[d], world.doctors[d], start))
    return out


def run_bookings(app, gateway, world, n, workers):
    from portal.accounts.models import User
    from portal.booking import checkout, visits
    from portal.extensions import db

    work = plan(world, n)
    lock = threading.Lock()
    latencies, service_times, errors = [], [], []

    def worker(jobs):
        for patient_id, doctor_id, start in jobs:
            with app.app_context():
                try:
                    t0 = time.perf_counter()
                    patient = db.session.get(User, patient_id)
                    item = visits.add_item(
                        patient,
                        patient_id=patient_id,
                        service_id=world.consult,
                        provider_ids=[doctor_id],
                        clinic_id=world.clinic,
                        start_at=start,
                    )
                    result = quoted_checkout(patient, item.master_id, callback_url=CALLBACK)
                    order_id = result.payment.razorpay_order_id
                    t1 = time.perf_counter()
                    params = gateway.pay(order_id)  # the patient on Razorpay's page
                    t2 = time.perf_counter()
                    visit = checkout.complete_checkout_callback(params).visit
                    t3 = time.perf_counter()
                    assert visit.status == "CONFIRMED", visit.status
                    with lock:
                        latencies.append(t3 - t0)
                        service_times.append((t1 - t0) + (t3 - t2))
                except Exception as exc:  # noqa: BLE001 -- counted and shown
                    with lock:
                        errors.append(repr(exc))
                finally:
                    db.session.remove()

    chunks = [work[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return elapsed, latencies, service_times, errors


def run_race(app, world, racers):
    from portal.accounts.models import User
    from portal.booking import visits
    from portal.booking.errors import SlotUnavailable
    from portal.extensions import db
    from tests.booking.factories import at

    barrier = threading.Barrier(racers, timeout=60)
    outcomes, times = Counter(), []
    lock = threading.Lock()

    def attempt(i):
        with app.app_context():
            patient = db.session.get(User, world.patients[i])
            db.session.expunge(patient)
            db.session.rollback()
            barrier.wait()
            t0 = time.perf_counter()
            try:
                visits.add_item(
                    patient,
                    patient_id=patient.id,
                    service_id=world.consult,
                    provider_ids=[world.doctors[0]],
                    clinic_id=world.clinic,
                    start_at=at(0, 17, 30),
                )
                result = "winner"
            except SlotUnavailable as exc:
                result = f"loser: {exc.message}"
            except Exception as exc:  # noqa: BLE001
                result = f"error: {exc!r}"
            finally:
                db.session.remove()
            with lock:
                outcomes[result] += 1
                times.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(racers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, outcomes, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--racers", type=int, default=50)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("portal.events").setLevel(logging.ERROR)
    logging.getLogger("portal.mail").setLevel(logging.ERROR)

    from portal.extensions import db
    from tests.booking.factories import NOW, build_world, start_gateway

    app = build_app(args.database_url)
    with time_machine.travel(NOW, tick=True):
        with app.app_context():
            world = build_world(n_patients=max(args.doctors, args.racers), n_doctors=args.doctors)
            db.session.remove()
        gateway = start_gateway(app)
        try:
            elapsed, latencies, service_times, errors = run_bookings(
                app, gateway, world, args.bookings, args.workers
            )
            t0 = time.perf_counter()
            delivered = 0
            while True:
                batch = gateway.deliver()
                if not batch:
                    break
                delivered += len(batch)
            webhook_elapsed = time.perf_counter() - t0
            race_elapsed, outcomes, race_times = run_race(app, world, args.racers)
            with app.app_context():
                from portal.ledger.check import verify_ledger
                from portal.ledger.models import LedgerTransaction

                problems = verify_ledger()
                postings = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(LedgerTransaction)
                    .where(LedgerTransaction.kind == "visit_confirmed")
                )
                db.session.remove()
        finally:
            gateway.close()

    ok = len(latencies)
    print(
        f"database: {args.database_url.split('://')[0]}"
        f"   workers: {args.workers}   doctors: {args.doctors}"
    )
    print(
        f"bookings end to end (hold + checkout + pay on sandbox + signed callback → "
        f"CONFIRMED): {ok} ok, {len(errors)} errors in {elapsed:.2f} s "
        f"= {ok / elapsed:.1f} bookings/s"
    )
    if latencies:
        print(
            f"  latency per booking  p50 {ms(pct(latencies, 50))}   p95 "
            f"{ms(pct(latencies, 95))}   max {ms(max(latencies))}"
        )
        print(
            f"  portal time only     p50 {ms(pct(service_times, 50))}   p95 "
            f"{ms(pct(service_times, 95))}   mean {ms(statistics.mean(service_times))}"
        )
    if errors:
        print("  first errors:", Counter(errors).most_common(3))
    print(
        f"webhooks delivered and processed (duplicates of the callbacks): {delivered} in "
        f"{webhook_elapsed:.2f} s = {delivered / max(webhook_elapsed, 1e-9):.0f}/s; "
        f"confirmation postings: {postings} for {ok} visits"
    )
    print(
        f"same-slot race: {args.racers} requests in {race_elapsed * 1000:.0f} ms → "
        + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
    )
    print(f"  latency p50 {ms(pct(race_times, 50))}   p95 {ms(pct(race_times, 95))}")
    print(f"ledger check: {'OK' if not problems else problems[:3]}")


if __name__ == "__main__":
    main()
