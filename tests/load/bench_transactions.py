"""Benchmark: the transactions console over 1,000,000 money movements on PostgreSQL.

    .venv/bin/python -m tests.load.bench_transactions                  # seeds once, then measures
    .venv/bin/python -m tests.load.bench_transactions --rows 1000000 --reseed --repeat 40

Seeds ``money_movements`` (a year of movements of every type, 5 % failed, 20,000
patients, 500 providers, a few thousand reconciliation cases) with COPY into its own
database (default ``cp_ledgerx_bench``), kept between runs (``--reseed`` after a schema change). Then signs in as an admin and
times whole requests through the Flask test client — filter parsing, the keyset page, the
summary, the reconciliation lookup and the template — for the filters an admin uses.
Prints p50 / p95 / max per filter and overall. Goal: p95 under 100 ms. No assertions (not
collected by pytest)."""

import argparse
import logging
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cp_ledgerx_bench"
TYPES = [
    ("payment_online", 50, "in", "payment", "SUCCESSFUL"),
    ("payment_link", 10, "in", "payment", "SUCCESSFUL"),
    ("payment_desk", 5, "in", "payment", "SUCCESSFUL"),
    ("refund_gateway", 8, "refund", "refund", "PROCESSED"),
    ("refund_wallet", 3, None, "refund", "PROCESSED"),
    ("payout", 8, "payout", "payout", "PROCESSED"),
    ("wallet_credit", 3, None, "ledger", "POSTED"),
    ("wallet_debit", 4, None, "payment", "SUCCESSFUL"),
    ("reschedule_fee", 5, "in", "reschedule", "DONE"),
    ("provider_penalty", 2, None, "ledger", "POSTED"),
    ("settlement", 2, None, "settlement", "PROCESSED"),
]
PREFIX = {"payment": "pay_", "refund": "rfnd_", "payout": "pout_", "settlement": "setl_"}
PATIENTS, PROVIDERS = 20_000, 500


def build_app(url):
    from portal import create_app
    from tests.conftest import _test_config, ensure_postgres_database

    ensure_postgres_database(url)
    return create_app(_test_config(url, SANDBOX_ENABLED=False))


def seed(app, rows, reseed):
    from portal.accounts.models import User
    from portal.catalog.models import Provider
    from portal.extensions import db
    from portal.transactions.models import MoneyMovement

    with app.app_context():
        engine = db.engine
        have = 0
        if not reseed and sa.inspect(engine).has_table("money_movements"):
            have = db.session.scalar(sa.select(sa.func.count()).select_from(MoneyMovement))
        if have == rows:
            print(f"reusing {have:,} seeded rows")
            return
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.drop_all()
        db.create_all()
        started = time.perf_counter()
        db.session.execute(
            sa.insert(User),
            [
                {
                    "email": f"p{i}@bench.example",
                    "email_key": f"p{i}@bench.example",
                    "name": f"Patient {i:05d}",
                    "role": "patient",
                }
                for i in range(1, PATIENTS + 1)
            ]
            + [
                {
                    "email": f"d{i}@bench.example",
                    "email_key": f"d{i}@bench.example",
                    "name": f"Doctor {i}",
                    "role": "provider",
                }
                for i in range(1, PROVIDERS + 1)
            ]
            + [
                {
                    "email": "admin@bench.example",
                    "email_key": "admin@bench.example",
                    "name": "Bench Admin",
                    "role": "admin",
                }
            ],
        )
        db.session.execute(
            sa.insert(Provider),
            [
                {"user_id": PATIENTS + i, "display_name": f"Dr Bench {i:03d}"}
                for i in range(1, PROVIDERS + 1)
            ],
        )
        db.session.commit()
        rnd = random.Random(7)
        now = datetime.now(UTC)
        weights = [t[1] for t in TYPES]
        columns = (
            "source, source_id, type, status, failed, bucket, occurred_at, patient_id, "
            "provider_id, party_name, visit_id, visit_number, amount, fee, platform_fee, gst, "
            "gateway_fee, gateway_tax, net, reference, utr, settlement_reference, updated_at"
        )
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(f"COPY money_movements ({columns}) FROM STDIN") as copy:
                # Movements are written as they happen: in time order, as in production.
                ages = sorted((rnd.randrange(365 * 86400) for _ in range(rows)), reverse=True)
                for i, age in enumerate(ages, start=1):
                    type_, _w, bucket, source, status = rnd.choices(TYPES, weights)[0]
                    failed = source in ("payment", "refund", "payout") and rnd.random() < 0.05
                    if failed:
                        status, bucket = "FAILED", None
                    at = now - timedelta(seconds=age)
                    amount = rnd.randrange(100_00, 5_000_00)
                    provider = type_ in ("payout", "provider_penalty")
                    patient_id = (
                        None
                        if provider or source == "settlement"
                        else rnd.randrange(1, PATIENTS + 1)
                    )
                    provider_id = rnd.randrange(1, PROVIDERS + 1) if provider else None
                    visit = rnd.randrange(1, 400_000) if patient_id else None
                    fee = amount * 2 // 100 if bucket == "in" and type_ != "payment_desk" else None
                    ref = PREFIX.get(source)
                    copy.write_row(
                        (
                            source,
                            i,
                            type_,
                            status,
                            failed,
                            bucket,
                            at,
                            patient_id,
                            provider_id,
                            f"Dr Bench {provider_id:03d}"
                            if provider_id
                            else (f"Patient {patient_id:05d}" if patient_id else None),
                            visit,
                            f"V{visit:06d}" if visit else None,
                            amount,
                            amount * 90 // 100 if bucket == "in" else None,
                            amount * 5 // 100 if bucket == "in" else None,
                            amount * 5 // 100 if bucket == "in" else None,
                            fee,
                            fee * 18 // 118 if fee else None,
                            amount - (fee or 0),
                            f"{ref}B{i:012d}" if ref else None,
                            None,
                            None,
                            now,
                        )
                    )
            raw.commit()
        finally:
            raw.close()
        # A few thousand reconciliation cases, a tenth of them discrepancies.
        db.session.execute(
            sa.text(
                "INSERT INTO recon_cases (kind, reference, status, first_seen_at, updated_at) "
                "SELECT 'payment', reference, CASE WHEN id % 10 = 0 THEN 'discrepancy' "
                "ELSE 'matched' END, now(), now() FROM money_movements "
                "WHERE reference LIKE 'pay_%' AND id % 200 = 0"
            )
        )
        db.session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE money_movements"))
            conn.execute(sa.text("VACUUM ANALYZE recon_cases"))
            conn.execute(sa.text("VACUUM ANALYZE users"))
        print(f"seeded {rows:,} movements in {time.perf_counter() - started:.1f} s")


def scenarios(app):
    from portal.extensions import db
    from portal.transactions.models import MoneyMovement as M

    with app.app_context():
        visit = db.session.scalar(
            sa.select(M.visit_number).where(M.visit_number.is_not(None)).limit(1)
        )
    return [
        ("default (last 7 days)", ""),
        ("this month", "?preset=month"),
        ("this financial year", "?preset=fy"),
        ("a year of payouts", "?from={y}&to={t}&type=payout"),
        ("failed, this FY", "?preset=fy&status=FAILED"),
        ("one patient, a year", "?from={y}&to={t}&party=Patient 01234"),
        ("one provider, this FY", "?preset=fy&party=Dr Bench 042"),
        # a name 1,000 patients share (Patient 01000 to 01999): every match counts (the
        # search once kept 50 of them, unordered, and dropped the rest)
        ("1,000 patients, this FY", "?preset=fy&party=Patient 01"),
        ("every patient, this FY", "?preset=fy&party=Patient"),  # past the list: a subquery
        ("a visit number, FY", f"?preset=fy&visit={visit}"),
        ("discrepancies, FY", "?preset=fy&recon=discrepancy"),
        ("₹1,000–₹1,200, 7 days", "?preset=7d&min=1000&max=1200"),
        ("refunds today", "?preset=today&type=refund_gateway"),
    ]


def measure(app, repeat):
    from tests.conftest import PASSWORD

    logging.disable(logging.CRITICAL)
    from portal.accounts.passwords import hash_password
    from portal.extensions import db

    with app.app_context():
        db.session.execute(
            sa.text("UPDATE users SET password_hash = :h WHERE email = 'admin@bench.example'"),
            {"h": hash_password(PASSWORD)},
        )
        db.session.commit()
    client = app.test_client()
    answer = client.post("/auth/login", data={"email": "admin@bench.example", "password": PASSWORD})
    assert answer.status_code in (302, 303), answer.status_code
    today = datetime.now(UTC).date()
    fmt = {"y": (today - timedelta(days=365)).isoformat(), "t": today.isoformat()}
    pages, sums = [], []

    def timed(url, n):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            client.get(url, headers={"HX-Request": "true"})
            out.append((time.perf_counter() - t) * 1000)
        return out

    def p95(values):
        values = sorted(values)
        return values[max(0, int(len(values) * 0.95) - 1)]

    print(f"{'filter':26} {'rows':>8} | page (50 rows) p50 / p95 ms | summary p50 / p95 ms")
    for name, query in scenarios(app):
        query = query.format(**fmt).replace(" ", "+")
        url = "/admin/transactions" + query
        first = client.get(url)  # warm
        if first.status_code != 200:
            print(f"{name:26} status {first.status_code}")
            continue
        html = first.get_data(as_text=True)
        summary_url = "/admin/transactions/summary" + query
        summary = client.get(summary_url).get_data(as_text=True)
        count = summary.split("<strong>")[1].split("</strong>")[0] if "<strong>" in summary else "?"
        page_times = timed(url, repeat)
        # A deeper page: the cursor of the first page's last row.
        nxt = html.split('rel="next"')[0].rsplit('href="', 1)[-1] if 'rel="next"' in html else None
        if nxt:
            page_times += timed(nxt.replace("&amp;", "&"), max(1, repeat // 4))
        sum_times = timed(summary_url, repeat)
        pages += page_times
        sums += sum_times
        print(
            f"{name:26} {count:>8} | {statistics.median(page_times):8.1f} / {p95(page_times):6.1f}"
            f"         | {statistics.median(sum_times):7.1f} / {p95(sum_times):6.1f}"
        )
    print(
        f"{'overall':26} {'':>8} | {statistics.median(pages):8.1f} / {p95(pages):6.1f}"
        f"         | {statistics.median(sums):7.1f} / {p95(sums):6.1f}"
    )
    print(f"goal: the filtered page's p95 < 100 ms -> {'met' if p95(pages) < 100 else 'NOT met'}")


def export(app, days=365):
    """The console's own CSV (``/admin/transactions.csv``'s export, every column and the
    reconciliation status per row) for the last ``days`` days, written in-process as the
    background job writes it: rows/s, CPU and the RSS (sampled every 20 ms)."""
    import os
    import resource

    from portal.exports import build
    from tests.load.bench_export import RssSampler, rss_mb

    logging.disable(logging.CRITICAL)
    today = datetime.now(UTC).date()
    params = {"from": (today - timedelta(days=days)).isoformat(), "to": today.isoformat()}
    with app.test_request_context():
        base = rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = usage.ru_utime + usage.ru_stime
        started = time.perf_counter()
        spec = build("transactions", params)
        size, written = 0, [0]
        with RssSampler() as rss:
            for chunk in spec.iter_csv(progress=lambda n: written.__setitem__(0, n)):
                size += len(chunk)
        elapsed = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu0
    rows = written[0]  # the data rows (not the summary after them)
    print(
        f"transactions CSV, {days} days: {rows:,} rows in {elapsed:.1f} s = "
        f"{rows / elapsed:,.0f} rows/s ({rows / cpu:,.0f} per CPU second of this process), "
        f"{size / 2**20:.0f} MB; RSS {base:.0f} MB before, peak {rss.peak:.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f} (goal >= 50,000 rows/s, RSS < 150 MB)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument(
        "--export", action="store_true", help="time the console's CSV of a year instead"
    )
    args = parser.parse_args(argv)
    app = build_app(args.database_url)
    seed(app, args.rows, args.reseed)
    if args.export:
        export(app)
    else:
        measure(app, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
