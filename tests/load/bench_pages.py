"""Benchmark: server time and queries per page, in-process (one request at a time).

    .venv/bin/python -m tests.load.bench_pages                      # SQLite, 30 visits
    .venv/bin/python -m tests.load.bench_pages --visits 200 --repeat 200
    .venv/bin/python -m tests.load.bench_pages --database-url postgresql://…/cp_bench_pages
    .venv/bin/python -m tests.load.bench_pages --profile /me/visits  # pyinstrument tree
    .venv/bin/python -m tests.load.bench_pages --profile '/me/visits/{visit}'  # PAGES' fields

Builds the test suite's small catalog (one clinic, two doctors, a lab), a patient with
``--visits`` held visits, a doctor and an admin, signs each in through the login form and
times every page of the patient, doctor and admin with Flask's test client: p50 and p95 of
the server's wall time (the WSGI call and reading its body: routing, session and user
loading, the view, the template, the after-request hooks and teardown), the p50 and the
minimum of its CPU time (on SQLite the database work is in this process too; on a shared,
busy machine CPU time moves far less than wall time, and the minimum least: noise only
adds), the p50 as the test client saw it (its own work, about 0.2–0.4 ms, added: the
figures before 3 December's session 10 were these), and the SQL statements each page
runs. Prints figures, asserts nothing (the query budgets are asserted in
tests/web/test_query_budgets.py)."""

import argparse
import logging
import os
import statistics
import tempfile
import time
from datetime import timedelta
from urllib.parse import quote

PAGES = {
    "patient": [
        ("home", "/me/"),
        ("find", "/find?clinic={clinic}&service={consult}"),
        (
            "free times (htmx)",
            "/find?clinic={clinic}&service={consult}&date={day}",
            {"HX-Request": "true", "HX-Target": "results"},
        ),
        ("book page", "/me/book?provider={doc1}&service={consult}&clinic={clinic}&start={start}"),
        ("visits", "/me/visits"),
        ("visit", "/me/visits/{visit}"),
        ("confirmation", "/me/visits/{visit}/confirmation"),
        ("wallet", "/me/wallet"),
        ("dependents", "/me/dependents"),
        ("notifications", "/notifications/"),
        ("bell", "/notifications/bell", {"HX-Request": "true"}),
    ],
    "doctor": [
        ("home", "/provider/"),
        ("schedule", "/provider/schedule"),
        ("earnings", "/provider/earnings"),
        ("availability", "/provider/availability"),
    ],
    "admin": [
        ("home", "/admin/"),
        ("visits", "/admin/visits"),
        ("visit", "/admin/visits/{visit}"),
        ("refunds", "/admin/refunds"),
        ("payouts", "/admin/payouts"),
        ("providers", "/admin/providers"),
        ("jobs", "/admin/jobs"),
    ],
}


def build(args):
    return bench_app(args.database_url)


def bench_app(url, prefix="bench_pages_", quiet=("portal", "portal.events")):
    """The test suite's configuration on ``url`` (PostgreSQL, created if missing), or on
    a new SQLite file; its schema created and the named loggers silenced."""
    for name in quiet:
        logging.getLogger(name).disabled = True
    from tests.plugin import _test_config, create_schema, ensure_postgres_database

    if url and url.startswith("postgres"):
        ensure_postgres_database(url)
    if not url:
        url = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix=prefix), "db.sqlite3")
    from portal import create_app

    app = create_app(_test_config(url))
    create_schema(app)
    return app


def seed(app, visits):
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.extensions import db
    from tests.plugin import PASSWORD
    from tests.web.booking.helpers import build_catalog, hold, slot, weekday_ahead

    users = {}

    def make_user(role, name=None, **_):
        n = len(users) + 1
        with app.app_context():
            user = User(
                email=f"{role}{n}@bench.example",
                name=name or f"{role.title()} {n}",
                role=role,
                phone="+919812345678",
                password_hash=hash_password(PASSWORD),
            )
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
        users[user.email] = user
        return user

    with app.app_context():
        world = build_catalog(make_user)
    world.patient = make_user("patient", "Priya Sharma")
    world.admin = make_user("admin", "Ops Admin")
    world.day = weekday_ahead()
    day, made, first = world.day, 0, None
    while made < visits:
        if day.weekday() < 5:
            for i in range(18):
                if made == visits:
                    break
                start = slot(day, 9 + i // 2, 30 * (i % 2))
                provider = world.doc1 if made % 2 else world.doc2
                visit_id, _ = hold(app, world, provider=provider, start=start)
                first = first or visit_id
                made += 1
        day += timedelta(days=1)
    world.visit = first
    day += timedelta(days=7)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    world.start = quote(slot(day, 10).isoformat())
    return world


def fields_of(world):
    """The values PAGES' URLs name (``{clinic}``, ``{visit}`` …) for a seeded world."""
    return {
        "clinic": world.clinic,
        "consult": world.consult,
        "doc1": world.doc1,
        "day": world.day.isoformat(),
        "visit": world.visit,
        "start": world.start,
    }


def measure(client, url, headers, repeat):
    """The page's status and statements, then over ``repeat`` requests: the server's wall
    time (p50, p95) and CPU time (p50, min) (the WSGI call and reading its body, not the
    test client's own work), and the wall time p50 as the test client saw it."""
    from tests.querycount import counted_queries

    app = client.application
    client.get(url, headers=headers)  # warm: templates compiled, caches filled
    with counted_queries() as statements:
        status = client.get(url, headers=headers).status_code
    queries = len(statements)
    times, cpu, outside = [], [], []
    inner = app.wsgi_app

    def timed(environ, start_response):
        t0, c0 = time.perf_counter(), time.process_time()
        answer = inner(environ, start_response)
        try:
            body = list(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
        return body

    app.wsgi_app = timed
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            client.get(url, headers=headers)
            outside.append(time.perf_counter() - t0)
    finally:
        app.wsgi_app = inner
    times.sort()
    return (
        status,
        queries,
        statistics.median(times),
        times[int(0.95 * (len(times) - 1))],
        statistics.median(cpu),
        min(cpu),
        statistics.median(outside),
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--visits", type=int, default=30, help="the patient's held visits (30)")
    p.add_argument("--repeat", type=int, default=100, help="timed requests per page (100)")
    p.add_argument("--database-url", default=os.environ.get("BENCH_PAGES_DATABASE_URL"))
    p.add_argument("--profile", metavar="URL", help="print a pyinstrument profile of URL")
    p.add_argument("--all", action="store_true", help="the profile with library frames")
    p.add_argument(
        "--no-free-times-cache",
        action="store_true",
        help="compute every free-times answer (portal.catalog.calendar off), for A/B",
    )
    args = p.parse_args(argv)
    from tests.plugin import sign_in  # the suite's own sign-in, as bench_flow's

    app = build(args)
    app.config["FREE_TIMES_CACHE"] = not args.no_free_times_cache
    world = seed(app, args.visits)
    fields = fields_of(world)
    clients = {
        "patient": sign_in(app, world.patient),
        "doctor": sign_in(app, world.provider_user),
        "admin": sign_in(app, world.admin),
    }
    if args.profile:
        from pyinstrument import Profiler

        role = next(
            (r for r, pages in PAGES.items() if any(args.profile == u for _, u, *_ in pages)),
            "patient",
        )
        client = clients[role]
        url = args.profile.format(**fields)  # a page's URL as PAGES spells it, or any URL
        client.get(url)
        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(args.repeat):
                client.get(url)
        print(profiler.output_text(unicode=True, color=False, show_all=args.all))
        return
    print(
        f"{args.visits} visits; {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}; "
        f"{args.repeat} requests a page"
    )
    print(
        f"{'role':<9}{'page':<20}{'status':>7}{'queries':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'CPU p50 ms':>12}{'CPU min ms':>12}{'client p50':>12}"
    )
    for role, pages in PAGES.items():
        for name, url, *headers in pages:
            status, queries, p50, p95, cpu, cpu_min, outside = measure(
                clients[role], url.format(**fields), headers[0] if headers else None, args.repeat
            )
            print(
                f"{role:<9}{name:<20}{status:>7}{queries:>9}{p50 * 1000:>9.2f}{p95 * 1000:>9.2f}"
                f"{cpu * 1000:>12.2f}{cpu_min * 1000:>12.2f}{outside * 1000:>12.2f}"
            )


if __name__ == "__main__":
    main()
