"""Benchmark: export 1,000,000 transaction-like rows as CSV, on PostgreSQL.

    .venv/bin/python -m tests.load.bench_export
    .venv/bin/python -m tests.load.bench_export --rows 100000      # a quick look

Seeds ``--rows`` ledger transactions with one bulk ``INSERT … SELECT generate_series``
(``BENCH_DATABASE_URL``, default ``cp_reports_bench``, its schema recreated each run), then exports them with amount, fee and tax-on-fee columns (money in rupees,
times in clinic time, memos that start formulas neutralised) twice: through the background
export job (the file under a temporary ``EXPORT_DIR``) and through the streamed HTTP
download (the test client reading the body chunk by chunk). Prints rows/s and the
process's resident memory (sampled every 20 ms from /proc, and its peak), against the goal
of >= 50,000 rows/s and RSS < 150 MB throughout. Figures only; no asserts."""

import argparse
import os
import resource
import tempfile
import threading
import time

import sqlalchemy as sa

from portal.exports import ExportSpec, money, number, register, text, when

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/cp_reports_bench"
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class RssSampler:
    def __init__(self, every=0.02):
        self.every, self.peak, self.samples = every, rss_mb(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            self.samples += 1
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@register("bench.transactions")
def transactions(params):
    from portal.ledger.models import LedgerTransaction as T

    # Amounts as a transactions report stores them (fee, tax on the fee, net), computed
    # by PostgreSQL here; the time read as a plain timestamptz (the clinic-time cell
    # converts it once, no per-row UTC round trip through the model's column type).
    amount = (sa.cast(T.id, sa.BigInteger) * 7919) % 10_000_000
    fee = amount * 2 // 100
    tax = fee * 18 // 100
    query = sa.select(
        T.id,
        sa.type_coerce(T.created_at, sa.DateTime(timezone=True)).label("created_at"),
        T.kind,
        T.reference_type,
        T.reference_id,
        T.memo,
        amount.label("amount"),
        fee.label("fee"),
        tax.label("tax"),
        (amount - fee - tax).label("net"),
    ).order_by(T.id)
    return ExportSpec(
        name="bench-transactions",
        title="Transactions (benchmark)",
        columns=[
            number("Id", lambda r: r.id),
            when("At", lambda r: r.created_at),
            text("Kind", lambda r: r.kind),
            text("Reference", lambda r: f"{r.reference_type}:{r.reference_id}"),
            text("Memo", lambda r: r.memo),
            money("Amount", lambda r: r.amount),
            money("Fee", lambda r: r.fee),
            money("Tax on fee", lambda r: r.tax),
            money("Net", lambda r: r.net),
        ],
        query=query,
        filters=[("Rows", "all")],
    )


def build_app(url, export_dir):
    from portal import create_app
    from tests.conftest import _test_config, create_schema, ensure_postgres_database

    ensure_postgres_database(url)
    app = create_app(
        _test_config(
            url,
            TESTING=False,
            SANDBOX_ENABLED=False,
            SANDBOX_INPROCESS=False,
            EXPORT_DIR=export_dir,
            EXPORT_BACKGROUND_ROWS=10**9,  # the HTTP run streams at once
        )
    )
    create_schema(app)
    return app


def seed(app, rows):
    from portal.extensions import db
    from tests.plugin import past_the_triggers

    with app.app_context():
        started = time.perf_counter()
        past_the_triggers(db.session.connection())  # the ledger is append-only
        db.session.execute(sa.text("TRUNCATE ledger_transactions CASCADE"))
        db.session.execute(
            sa.text(
                """
                INSERT INTO ledger_transactions
                    (kind, reference_type, reference_id, idempotency_key, memo, created_at)
                SELECT CASE WHEN g % 3 = 0 THEN 'payment_captured' ELSE 'refund_processed' END,
                       'payment', g::text, 'bench:' || g,
                       CASE WHEN g % 10 = 0 THEN '=HYPERLINK("x")' ELSE 'memo, "quoted" ' || g END,
                       now() - (g || ' seconds')::interval
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": rows},
        )
        db.session.commit()
        db.session.execute(sa.text("ANALYZE ledger_transactions"))
        db.session.commit()
        return time.perf_counter() - started


def run_job(app):
    from portal.accounts.models import User
    from portal.db import unit_of_work
    from portal.exports import service
    from portal.exports.models import Export
    from portal.extensions import db

    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.email == "bench@example.com"))
        if admin is None:
            admin = User(
                email="bench@example.com", name="Bench", role="admin", phone="+919800000000"
            )
            admin.password_hash = "x"
            db.session.add(admin)
            db.session.commit()
        export = Export(
            name="bench.transactions",
            params={},
            title="bench",
            download_name="bench.csv",
            requested_by_id=admin.id,
        )
        db.session.add(export)
        db.session.commit()
        started, cpu = time.perf_counter(), cpu_seconds()
        with unit_of_work():
            service.run_export(export.id)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        export = db.session.get(Export, export.id)
        size = os.path.getsize(service.file_path(export.id))
        rows = export.rows_written
        os.remove(service.file_path(export.id))
        db.session.remove()
        return rows, elapsed, cpu, size, export.status


def run_http(app):
    from portal.exports import build
    from portal.web.exporting import stream_csv

    with app.test_request_context("/admin/reports/bench"):
        response = stream_csv(build("bench.transactions", {}))
        started, cpu = time.perf_counter(), cpu_seconds()
        size = lines = 0
        for chunk in response.response:
            size += len(chunk)
            lines += chunk.count(b"\r\n")
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        response.close()
    return lines, elapsed, cpu, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    with tempfile.TemporaryDirectory() as export_dir:
        app = build_app(url, export_dir)
        seeded = seed(app, args.rows)
        print(f"seeded {args.rows:,} rows in {seeded:.1f} s (one INSERT … generate_series)")
        base = rss_mb()
        print(f"RSS before exporting: {base:.0f} MB")
        with RssSampler() as job_rss:
            rows, elapsed, cpu, size, status = run_job(app)
        print(
            f"background job: {rows:,} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s, "
            f"{rows / cpu:,.0f} rows per CPU second of this process, "
            f"{size / 2**20:.0f} MB file, status {status}; "
            f"RSS peak {job_rss.peak:.0f} MB ({job_rss.samples} samples)"
        )
        with RssSampler() as http_rss:
            lines, elapsed, cpu, size = run_http(app)
        data_rows = lines - 6
        print(
            f"HTTP stream:    {data_rows:,} rows in {elapsed:.1f} s = "
            f"{data_rows / elapsed:,.0f} rows/s, {data_rows / cpu:,.0f} rows per CPU second, "
            f"{size / 2**20:.0f} MB sent; "
            f"RSS peak {http_rss.peak:.0f} MB ({http_rss.samples} samples)"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"process peak RSS (getrusage): {peak:.0f} MB; goal >= 50,000 rows/s, < 150 MB")
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"load average during the run: {load} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
