"""Benchmark: reconcile a day of 100,000 gateway payments against 100,000 of ours.

    .venv/bin/python -m tests.load.bench_reconcile
    .venv/bin/python -m tests.load.bench_reconcile --n 20000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/cp_recon_bench

Goal: under 10 s and under 200 MB RSS for the run. Three processes, so each figure is the
engine's own: a seeding process writes our 100,000 payment rows (not timed); a stand-in
Razorpay serves the same day's records over real HTTP in a process of its own (the list
API with from/to/count/skip, newest first, 100 a page, and 404-style answers for ids it
does not have); this process runs the reconciliation through the real adapters (the
official SDK) and samples its RSS every 20 ms. The day has 10 of each discrepancy per
100,000 (amount altered, ours only, the gateway's only, time beyond 60 s, captured but
never settled), so the run writes every case once (the first run) and then only what
changed (the second run).

The day is long past, so its captures are due for settlement: the seed stores Razorpay's
settlement of the day (T+2, one settlement, a recon row per payment) as the settlement
ingest would have, and every run's settlement check reads it. ``--unsettled`` leaves it
out: the worst case of a settlement ingest that never ran, where every capture of the day
is also a NOT_SETTLED case (twice the cases to write).

The run's process builds its app without the test plugin (pytest and hypothesis are no
part of a worker's memory). Prints a summary, no assertions (not collected by pytest)."""

import argparse
import json
import multiprocessing
import os
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

KEY_ID, KEY_SECRET = "rzp_test_bench", "bench_secret"
DAY = date(2026, 6, 1)
IST = ZoneInfo("Asia/Kolkata")
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/cp_recon_bench"


def day_start():
    return int(datetime.combine(DAY, dtime(0), IST).timestamp())


def record(i, n):
    """Payment i of the day, as (ours, theirs); either may be None (missing on that side)."""
    ref = f"pay_{i:014d}"
    amount = 10_000 + (i * 7919) % 90_000
    at = day_start() + 30 + i * (86_400 - 60) // n
    ours = {"ref": ref, "amount": amount, "at": at}
    theirs = {
        "id": ref,
        "entity": "payment",
        "amount": amount,
        "currency": "INR",
        "status": "captured",
        "order_id": f"order_{i:012d}",
        "method": "upi",
        "captured": True,
        "created_at": at,
    }
    kind = i % 10_000
    if kind == 1:
        theirs["amount"] += 100  # amount altered at the gateway
    elif kind == 2:
        theirs = None  # ours only
    elif kind == 3:
        ours = None  # the gateway's only
    elif kind == 4:
        theirs["created_at"] += 120  # beyond the 60 s tolerance
    return ours, theirs


def settled(i):
    """Whether the gateway settled payment i, when it has it (not all: 5 is left out)."""
    return i % 10_000 != 5


# --- the stand-in gateway (a process of its own) ---------------------------------------------


def gateway_app(n):
    items = [t for _o, t in (record(i, n) for i in range(n)) if t is not None]
    items.sort(key=lambda t: t["created_at"], reverse=True)
    times = [t["created_at"] for t in items]
    missing = json.dumps(
        {"error": {"code": "BAD_REQUEST_ERROR", "description": "The id provided does not exist"}}
    ).encode()

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path.startswith("/v1/payments/"):
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/json"), ("Content-Length", str(len(missing)))],
            )
            return [missing]
        if path.startswith("/v1/orders/"):
            # A payment we have no row for: the run reads its order's notes (a payment
            # link's name our row); these orders are no link's.
            order = {"id": path.rsplit("/", 1)[1], "entity": "order", "notes": []}
            body = json.dumps(order).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        chosen = []
        if path == "/v1/payments":
            lo, hi = int(q.get("from", 0)), int(q.get("to", 2**40))
            count, skip = min(int(q.get("count", 10)), 100), int(q.get("skip", 0))
            # newest first: the window is a contiguous run of the sorted list
            import bisect

            neg = [-t for t in times] if not hasattr(app, "neg") else app.neg
            app.neg = neg
            first = bisect.bisect_left(neg, -hi)
            last = bisect.bisect_right(neg, -lo)
            chosen = items[first:last][skip : skip + count]
        body = json.dumps({"entity": "collection", "count": len(chosen), "items": chosen}).encode()
        # A length lets the connection stay open for the next page (keep-alive).
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def serve_gateway(n, port_queue):
    """Serve ``gateway_app`` over HTTP/1.1 with keep-alive, as Razorpay's API does (a
    client reuses its connection page after page). Werkzeug's development server closes
    every connection whatever its protocol version, which made each page a new TCP
    connection and a new server thread: work no real client does against Razorpay."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    app = gateway_app(n)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per answer, sent at once (an API server's TCP_NODELAY): headers and
        # body in two small sends would wait on the client's delayed ACK, 40 ms a page.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def do_GET(self):
            path, _, query = self.path.partition("?")
            answer = {}

            def start_response(status, headers):
                answer["status"], answer["headers"] = status, headers

            body = b"".join(app({"PATH_INFO": path, "QUERY_STRING": query}, start_response))
            code, _, reason = answer["status"].partition(" ")
            self.send_response(int(code), reason)
            for name, value in answer["headers"]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_port)
    server.serve_forever()


# --- our side (a process of its own: its memory is not the run's) ----------------------------


def build_app(database_url, **extra):
    """The app as the tests configure it (tests/plugin.py ``_test_config``), without
    importing the plugin: the run's RSS is the engine's and the app's, not pytest's."""
    from portal import create_app

    config = {
        "TESTING": True,
        "SECRET_KEY": "bench-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JOBS_INLINE": True,
        "JOBS_INLINE_THREAD": False,
        "PERIODIC_INLINE": False,
        "SERVER_NAME": None,
        "SANDBOX_ENABLED": False,
    }
    return create_app({**config, **extra})


def seed(database_url, n, unsettled=False):
    import sqlalchemy as sa

    from portal.accounts.models import User
    from portal.booking.models import MasterBooking
    from portal.extensions import db
    from portal.payments.models import Payment
    from portal.settlements.models import Settlement, SettlementItem
    from tests.conftest import create_schema, empty_tables, ensure_postgres_database

    if database_url.startswith("postgres"):
        ensure_postgres_database(database_url)
    app = build_app(database_url)
    create_schema(app)
    with app.app_context():
        empty_tables(app)
        user = User(email="bench@example.com", name="Bench", role="patient", phone="+919812345678")
        db.session.add(user)
        db.session.flush()
        visits = [
            MasterBooking(patient_id=user.id, created_by_id=user.id, status="CONFIRMED")
            for _ in range(100)
        ]
        db.session.add_all(visits)
        db.session.flush()
        visit_ids = [v.id for v in visits]
        rows = []
        for i in range(n):
            ours, _theirs = record(i, n)
            if ours is None:
                continue
            at = datetime.fromtimestamp(ours["at"], UTC)
            rows.append(
                {
                    "master_id": visit_ids[i % 100],
                    "kind": "ORDER",
                    "amount": ours["amount"],
                    "captured_amount": ours["amount"],
                    "status": "SUCCESSFUL",
                    "razorpay_order_id": f"order_{i:012d}",
                    "razorpay_payment_id": ours["ref"],
                    "method": "upi",
                    "created_at": at - timedelta(seconds=5),
                    "paid_at": at,
                }
            )
            if len(rows) == 10_000:
                db.session.execute(sa.insert(Payment), rows)
                rows = []
        if rows:
            db.session.execute(sa.insert(Payment), rows)
        if not unsettled:
            seed_settlement(db, Settlement, SettlementItem, n)
        db.session.commit()
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Payment))
        items = db.session.scalar(sa.select(sa.func.count()).select_from(SettlementItem))
    print(f"seeded {count:,} payments of ours, {items:,} of them settled", flush=True)


def seed_settlement(db, Settlement, SettlementItem, n):
    """The day's one settlement (T+2) with a recon row per payment it covers."""
    import sqlalchemy as sa

    at = datetime.combine(DAY + timedelta(days=2), dtime(10), IST)
    settlement = Settlement(
        razorpay_settlement_id="setl_bench", status="processed", amount=0, settled_at=at
    )
    db.session.add(settlement)
    db.session.flush()
    rows, total = [], 0
    for i in range(n):
        _ours, theirs = record(i, n)
        if theirs is None or not settled(i):
            continue
        fee = theirs["amount"] * 2 // 100  # 2 % (GST inside): the amount is what counts here
        total += theirs["amount"] - fee
        rows.append(
            {
                "settlement_id": settlement.id,
                "entity_id": theirs["id"],
                "entity_type": "payment",
                "amount": theirs["amount"],
                "fee": fee,
                "tax": fee * 18 // 118,
                "order_id": theirs["order_id"],
                "method": "upi",
                "created_at": datetime.fromtimestamp(theirs["created_at"], UTC),
            }
        )
        if len(rows) == 10_000:
            db.session.execute(sa.insert(SettlementItem), rows)
            rows = []
    if rows:
        db.session.execute(sa.insert(SettlementItem), rows)
    settlement.amount = total


# --- the run ----------------------------------------------------------------------------------


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    def __init__(self):
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def run(database_url, base_url):
    import sqlalchemy as sa

    from portal.db import utcnow  # noqa: F401
    from portal.extensions import db
    from portal.reconcile import run as recon
    from portal.reconcile.models import ReconCase
    from portal.reconcile.source import AdapterSource
    from portal.reconcile.window import day_window

    app = build_app(
        database_url,
        RAZORPAY_KEY_ID=KEY_ID,
        RAZORPAY_KEY_SECRET=KEY_SECRET,
        RAZORPAY_BASE_URL=base_url,
    )
    from portal.gateway import get_payin

    start, end = day_window(DAY, DAY)
    results = []
    with app.app_context():
        payin = get_payin()

        class Payouts:  # the stand-in has no RazorpayX: no payouts that day
            def list_payouts_page(self, *a, **k):
                return {"entity": "collection", "count": 0, "items": []}

            def fetch_payout(self, ref):
                return None

        source = AdapterSource(payin, Payouts())
        for label in ("first run (writes every case)", "second run (writes what changed)"):
            db.session.remove()
            before = rss_mb()
            with Sampler() as sampler:
                clock, cpu = time.perf_counter(), time.process_time()
                done = recon.execute(recon.start_run(start, end, trigger="admin").id, source=source)
                seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
            results.append((label, done, seconds, cpu, before, sampler.peak))
        cases = db.session.scalar(sa.select(sa.func.count()).select_from(ReconCase))
    return results, cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument(
        "--unsettled",
        action="store_true",
        help="store no settlement: every capture of the day is also a NOT_SETTLED case",
    )
    args = parser.parse_args(argv)
    logging_quiet()
    ctx = multiprocessing.get_context("spawn")
    seeding = ctx.Process(target=seed, args=(args.database_url, args.n, args.unsettled))
    clock = time.perf_counter()
    seeding.start()
    seeding.join()
    if seeding.exitcode:
        sys.exit("seeding failed")
    print(f"seeding took {time.perf_counter() - clock:.1f} s", flush=True)
    ports = ctx.Queue()
    gateway = ctx.Process(target=serve_gateway, args=(args.n, ports), daemon=True)
    gateway.start()
    base_url = f"http://127.0.0.1:{ports.get(timeout=120)}"
    try:
        results, cases = run(args.database_url, base_url)
    finally:
        gateway.terminate()
    db = args.database_url.split("@")[-1]
    settlements = "no settlement stored" if args.unsettled else "the day's settlement stored"
    print(
        f"\nreconcile {args.n:,} gateway payments against ours ({db}), one clinic day, "
        f"{settlements}"
    )
    load = os.getloadavg()[0]
    for label, done, seconds, cpu, before, peak in results:
        print(
            f"  {label}: {done.status} in {seconds:.2f} s wall ({cpu:.2f} s CPU in this "
            f"process; load average {load:.1f} on {os.cpu_count()} cores); "
            f"RSS {before:.0f} MB before, peak {peak:.0f} MB"
        )
        print(
            f"    gateway {done.gateway_records:,}, ours {done.our_records:,}; matched "
            f"{done.matched:,}, pending {done.pending:,}, discrepancies {done.discrepancies:,} "
            f"({done.new_discrepancies:,} new){'; error: ' + done.error if done.error else ''}"
        )
    print(f"  cases stored: {cases:,}")
    print("  goal: under 10 s and under 200 MB RSS")


def logging_quiet():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("portal").setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
