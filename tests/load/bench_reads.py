"""Benchmark: a read outside any transaction (``portal.pg_dialect``) against every statement
in one (psycopg's way: BEGIN first, COMMIT at the end), in one process.

    .venv/bin/python -m tests.load.bench_reads --database-url postgresql://…/cp_bench_reads
    .venv/bin/python -m tests.load.bench_reads --rounds 6 --block 60

Two processes, one per code, moved a page's time by ±20% on these shared machines; here
the same process serves each page in blocks of ``--block`` requests, the two ways
alternating block by block (``pg_dialect.READS_ALONE``), and prints each page's CPU and
wall time per request, median over ``--rounds`` blocks a way. Signed in as
``bench_pages``' patient with 30 held visits. Prints figures, asserts nothing."""

import argparse
import gc
import os
import statistics
import time

from tests.load import bench_pages

PAGES = ("bare", "home", "find", "visits", "visit", "wallet")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_PAGES_DATABASE_URL"))
    p.add_argument("--rounds", type=int, default=6, help="blocks per way (6)")
    p.add_argument("--block", type=int, default=60, help="requests per block (60)")
    args = p.parse_args(argv)
    if not (args.database_url or "").startswith("postgres"):
        raise SystemExit("--database-url postgresql://…: the dialect is PostgreSQL's")
    from portal import pg_dialect

    app = bench_pages.bench_app(args.database_url, prefix="bench_reads_")
    app.config["FREE_TIMES_CACHE"] = True
    app.add_url_rule("/__bench_bare", "bench_bare", lambda: "")
    world = bench_pages.seed(app, 30)
    from tests.plugin import sign_in  # the suite's own sign-in

    client = sign_in(app, world.patient)
    urls = {name: url for name, url, *_ in bench_pages.PAGES["patient"]}
    fields = bench_pages.fields_of(world)
    pages = {"bare": "/__bench_bare"} | {
        name: urls[name].format(**fields) for name in PAGES if name != "bare"
    }
    for url in pages.values():
        for _ in range(10):
            client.get(url)
    gc.collect()
    gc.freeze()
    figures = {(page, alone): [] for page in pages for alone in (True, False)}
    try:
        for n in range(args.rounds):
            for alone in (True, False) if n % 2 == 0 else (False, True):
                pg_dialect.READS_ALONE = alone
                for page, url in pages.items():
                    client.get(url)  # the connection takes the way's mode
                    c0, w0 = time.process_time(), time.perf_counter()
                    for _ in range(args.block):
                        client.get(url)
                    cpu = (time.process_time() - c0) / args.block
                    wall = (time.perf_counter() - w0) / args.block
                    figures[(page, alone)].append((cpu, wall))
    finally:
        pg_dialect.READS_ALONE = True
    print(f"{args.rounds} blocks of {args.block} requests a way; ms per request, medians")
    print(f"{'page':<8}{'CPU alone':>11}{'CPU in tx':>11}{'wall alone':>12}{'wall in tx':>12}")
    for page in pages:
        on, off = figures[(page, True)], figures[(page, False)]

        def med(rows, i):
            return statistics.median(row[i] for row in rows) * 1000

        print(
            f"{page:<8}{med(on, 0):>11.2f}{med(off, 0):>11.2f}{med(on, 1):>12.2f}{med(off, 1):>12.2f}"
        )


if __name__ == "__main__":
    main()
