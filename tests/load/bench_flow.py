"""Benchmark: the booking flow's three write steps over HTTP, in-process, one at a time,
and a second patient's refused hold for each time just held.

    .venv/bin/python -m tests.load.bench_flow                    # SQLite, 60 bookings
    .venv/bin/python -m tests.load.bench_flow --bookings 200
    .venv/bin/python -m tests.load.bench_flow --database-url postgresql://…/cp_bench_flow
    .venv/bin/python -m tests.load.bench_flow --statements       # list each step's SQL
    .venv/bin/python -m tests.load.bench_flow --profile pay      # pyinstrument tree
    .venv/bin/python -m tests.load.bench_flow --profile refused  # the race's loser

A signed-in patient (Flask's test client) books ``--bookings`` slots, each through the
three requests that write: the hold (``POST /me/book``), the pay step (``POST
/me/visits/<id>/pay``: a Razorpay order on the sandbox) and the signed return (``GET
/me/visits/<id>/paid?razorpay_…``: signature, payment fetch, confirmation, ledger,
invoice number, outbox items). Between the hold and the pay step a second signed-in
patient asks for the same time, as a browser posts the boosted form (``refused``: what every loser of a race for one time
costs once the winner has committed; a 422). The patient's click on the sandbox's page between pay and
return is not measured. The sandbox is mounted in the app and reached in-process, as in
the tests; its CPU is measured apart and left out of the step's figure (in production it
is Razorpay's). Follow-up jobs are handed over as in production (to a stub instead of
Redis), not run inline, so a step's figures are the web request's own.

``--jobs`` then runs, after each booking, the follow-up jobs it left due (the three
webhooks' processing, the confirmation, the mails it queues) in-process as the worker runs
each outbox item (``jobs.run_outbox_items``, a fresh app context each; RQ's own work is
not in it), and prints their statements and CPU per job name: the worker's share.

``--reads`` also measures the five pages a browser reads around those requests, in the
order ``make bench``'s full flow reads them: find-a-doctor searched by the provider's name,
its htmx free times for the slot's day, the book page, the visit page after the hold, the
confirmation after the return. Read in that order, each page follows a write that changed
what it shows (the provider's calendar, the visit): the kept answers ``bench_pages``
measures again and again are misses here, as in the full flow.

Prints, per step: the portal database's statements (every booking's count must be the
same), and the CPU p50/p95 of the request without the sandbox, and the sandbox's p50.
Asserts nothing (the budgets are in tests/web/booking/test_flow_budgets.py)."""

import argparse
import os
import statistics
import time
import traceback
from contextlib import contextmanager
from datetime import date, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa

STEPS = ("hold", "refused", "pay", "return", "webhooks")
READS = ("find", "free_times", "book_page", "visit", "confirmation")  # with --reads
# The order book_once measures every step in, reads included: the order --reads prints
# them in (its answer's keys come in the same order).
ORDER_WITH_READS = (
    "find",
    "free_times",
    "book_page",
    "hold",
    "refused",
    "visit",
    "pay",
    "return",
    "confirmation",
    "webhooks",
)
WRITING = ("hold", "pay", "return")  # a booking's own requests (not the rival's, not the gateway's)
# The book form is boosted (hx-boost on the body): a browser posts it with these.
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


class SandboxClock:
    """CPU spent inside the mounted sandbox (wraps its WSGI app in the dispatcher)."""

    def __init__(self, app):
        self.spent = 0.0
        sandbox_app = app.extensions["razorpay_sandbox_app"]
        inner = sandbox_app.wsgi_app

        def timed(environ, start_response):
            c0 = time.process_time()
            try:
                return list(inner(environ, start_response))
            finally:
                self.spent += time.process_time() - c0

        sandbox_app.wsgi_app = timed


@contextmanager
def jobs_handed_over(app):
    """Outbox items handed over after the commit as in production, to a stub instead of
    Redis: a step runs the statements of its own request, not those of its jobs."""
    import portal.jobs

    saved = app.config["JOBS_INLINE"], portal.jobs.enqueue_outbox_items
    app.config["JOBS_INLINE"] = False
    portal.jobs.enqueue_outbox_items = lambda queues, run, items, **kw: [i for i, _ in items]
    try:
        yield
    finally:
        app.config["JOBS_INLINE"], portal.jobs.enqueue_outbox_items = saved


def _caller():
    """Where the portal asked for a statement: its innermost frames under portal/."""
    frames = [
        f"{f.filename.rsplit('/portal/', 1)[-1]}:{f.lineno} {f.name}"
        for f in traceback.extract_stack()
        if "/portal/" in f.filename and "/tests/" not in f.filename
    ]
    return " < ".join(reversed(frames[-3:]))


def due_items(app):
    """The outbox items due now and not done: [(id, job name)], oldest first."""
    from portal.extensions import db
    from portal.outbox import OutboxItem

    with app.app_context():
        now = sa.func.now() if db.engine.dialect.name == "postgresql" else None
        query = sa.select(OutboxItem.id, OutboxItem.job).where(OutboxItem.done_at.is_(None))
        if now is not None:
            query = query.where(sa.or_(OutboxItem.run_after.is_(None), OutboxItem.run_after <= now))
        rows = db.session.execute(query.order_by(OutboxItem.id)).all()
        db.session.remove()
    if now is None:  # SQLite: compare in Python (its times are naive UTC)
        return _due_in_python(app, rows)
    return [(i, name) for i, name in rows]


def _due_in_python(app, rows):
    from portal.db import utcnow
    from portal.extensions import db
    from portal.outbox import OutboxItem

    with app.app_context():
        after = dict(
            db.session.execute(
                sa.select(OutboxItem.id, OutboxItem.run_after).where(
                    OutboxItem.id.in_([i for i, _ in rows])
                )
            ).all()
        )
        db.session.remove()
    now = utcnow()
    return [
        (i, name)
        for i, name in rows
        if after[i] is None or after[i].replace(tzinfo=now.tzinfo) <= now
    ]


def run_due_jobs(app, sandbox, where=False, listed=None, measure=None, order=None):
    """Run what the booking left due, item by item as the worker does, until nothing is
    due (the confirmation queues its mails): {job name: [(statements, CPU s), …]};
    ``listed`` (a dict) gets each job name's statements (``where``: with their callers);
    ``measure`` as in :func:`book_once`; ``order`` (a list) gets the names as they ran."""
    measure = measure or _measure
    from portal import jobs

    out = {}
    while True:
        items = due_items(app)
        if not items:
            return out
        for item_id, name in items:
            with app.app_context():
                _, statements, cpu, _ = measure(
                    app, sandbox, lambda i=item_id: jobs.run_outbox_items([i]), where
                )
            out.setdefault(name, []).append((len(statements), cpu))
            if order is not None:
                order.append(name)
            if listed is not None:
                listed[f"job {name}"] = statements


@contextmanager
def portal_statements(app, where=False):
    """The statements the portal's own engine runs in the block (not the sandbox's);
    ``where``: each with the portal code that ran it."""
    from portal.extensions import db

    with app.app_context():
        engine = db.engine
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(f"{statement}\n    @ {_caller()}" if where else statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _measure(app, sandbox, call, where=False):
    spent = (lambda: sandbox.spent) if sandbox is not None else (lambda: 0.0)
    with portal_statements(app, where) as statements:
        s0, c0 = spent(), time.process_time()
        response = call()
        cpu = time.process_time() - c0
    sandbox_cpu = spent() - s0
    return response, list(statements), cpu - sandbox_cpu, sandbox_cpu


def book_once(
    app, client, sandbox, form, where=False, rival=None, measure=_measure, hooks=None, reads=None
):
    """Hold, pay and return for one slot through ``client`` (signed in); returns
    {step: (statements, CPU s without the sandbox, sandbox CPU s)}. ``form``: the book
    form's fields (provider, service, clinic, start; person, visit, referral);
    ``sandbox``: a :class:`SandboxClock`, or None (its CPU is then not told apart);
    ``rival``: another patient's signed-in client, refused the same time after the hold;
    ``measure``: runs each step's request (``_measure``'s signature; bench_instructions
    counts instead); ``hooks``: a client with no session, through which the portal then
    receives the payment's three webhooks (the step "webhooks", all three together);
    ``reads``: the provider's name, to read the pages of ``READS`` too (``--reads``)."""
    out = {}
    if reads is not None:
        _read_before_hold(app, client, sandbox, form, where, measure, reads, out)
    answer, *out["hold"] = measure(app, sandbox, lambda: client.post("/me/book", data=form), where)
    assert answer.status_code == 303, (answer.status_code, answer.get_data(as_text=True)[:400])
    if rival is not None:
        refused, *out["refused"] = measure(
            app, sandbox, lambda: rival.post("/me/book", data=form, headers=BOOSTED), where
        )
        assert refused.status_code == 422, (refused.status_code, refused.location)
    visit_path = urlsplit(answer.location).path
    if reads is not None:
        _read(app, client, sandbox, where, measure, out, "visit", visit_path)
    # The pay form as the page fills it (the amounts its button states, which the
    # checkout requires), read before the pay step is measured.
    from tests.web.booking.helpers import pay_fields

    paying = pay_fields(client, visit_path)
    answer, *out["pay"] = measure(
        app, sandbox, lambda: client.post(visit_path + "/pay", data=paying), where
    )
    assert answer.status_code == 303, (answer.status_code, answer.get_data(as_text=True)[:400])
    returned = urlsplit(pay_on_sandbox(client, answer.location))
    answer, *out["return"] = measure(
        app, sandbox, lambda: client.get(returned.path, query_string=returned.query), where
    )
    assert answer.status_code == 303 and urlsplit(answer.location).path.endswith("/confirmation"), (
        answer.status_code,
        answer.location,
    )
    if reads is not None:
        _read(app, client, sandbox, where, measure, out, "confirmation", answer.location)
    if hooks is not None:
        signed = signed_webhooks(app)
        answers, *out["webhooks"] = measure(
            app,
            sandbox,
            lambda: [hooks.post(path, **kw).status_code for path, kw in signed],
            where,
        )
        assert answers and answers == [200] * len(answers), answers
    return out


def _read(app, client, sandbox, where, measure, out, step, path, **kw):
    answer, *out[step] = measure(app, sandbox, lambda: client.get(path, **kw), where)
    assert answer.status_code == 200, (step, answer.status_code)
    return answer


def _read_before_hold(app, client, sandbox, form, where, measure, name, out):
    """What a browser reads before the hold (``READS``' first three), as the full flow of
    ``bench_http`` reads them."""
    search = {"clinic": form["clinic"], "service": form["service"], "q": name}
    day = date.fromisoformat(form["start"][:10]).isoformat()  # a working day: UTC = IST's
    _read(app, client, sandbox, where, measure, out, "find", "/find", query_string=search)
    _read(
        app,
        client,
        sandbox,
        where,
        measure,
        out,
        "free_times",
        "/find",
        query_string={**search, "date": day},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    book = {k: form[k] for k in ("provider", "service", "clinic", "start")}
    _read(app, client, sandbox, where, measure, out, "book_page", "/me/book", query_string=book)


def signed_webhooks(app):
    """The webhooks the sandbox has for the portal (a paid checkout's payment.authorized,
    payment.captured and order.paid), taken from it and signed as it signs them: [(path,
    request arguments)] for a test client with no session. A job any of them makes (none
    after a signed return: all three are settled as they arrive) runs later, on the worker:
    only the receipt is the web tier's."""
    from portal.gateway.webhooks import sign_body

    webhooks = app.extensions["razorpay_sandbox"].webhooks
    pending, webhooks.pending = webhooks.pending, []
    return [
        (
            urlsplit(d.url).path,
            {
                "data": d.body,
                "headers": {
                    "Content-Type": "application/json",
                    "X-Razorpay-Signature": sign_body(d.body, d.secret),
                    "X-Razorpay-Event-Id": d.event_id,
                },
            },
        )
        for d in pending
    ]


def pay_on_sandbox(client, checkout_url):
    from tests.web.booking.helpers import pay_on_sandbox as pay

    return pay(client, checkout_url)


def mount_gateway(app):
    """The sandbox mounted at /sandbox and reached in-process (as the ``gateway`` fixture)."""
    if "razorpay_sandbox" not in app.extensions:
        from portal.gateway.sandbox import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    app.config["SANDBOX_INPROCESS"] = True
    if not app.config["RAZORPAY_BASE_URL"].rstrip("/").endswith("/sandbox"):
        app.config["RAZORPAY_BASE_URL"] = app.config["PUBLIC_URL"].rstrip("/") + "/sandbox"
    app.extensions.pop("gateway_adapters", None)


def slots(world, n):
    """``n`` free half hours (Mon–Fri 09:00–18:00 IST), alternating the two doctors."""
    from tests.web.booking.helpers import slot

    day, out = world.day, []
    while len(out) < n:
        if day.weekday() < 5:
            for i in range(18):
                if len(out) < n:
                    provider = world.doc1 if len(out) % 2 else world.doc2
                    out.append((provider, slot(day, 9 + i // 2, 30 * (i % 2))))
        day += timedelta(days=1)
    return out


def form_for(world, provider, start):
    return {
        "provider": provider,
        "service": world.consult,
        "clinic": world.clinic,
        "start": start.isoformat(),
        "person": "self",
        "visit": "",
        "referral": "",
    }


def build(database_url):
    from tests.load.bench_pages import bench_app

    app = bench_app(
        database_url,
        prefix="bench_flow_",
        quiet=("portal", "portal.events", "portal.booking", "portal.mail"),
    )
    mount_gateway(app)
    return app


def seed(app):
    from tests.load.bench_pages import seed as seed_pages

    return seed_pages(app, 0)


def rival_client(app):
    """A second patient, signed in: the loser of each time the first one holds."""
    from tests.plugin import sign_in

    return sign_in(app, rival_user(app))


def rival_user(app):
    """The second patient (``rival_client``'s), made once."""
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.extensions import db
    from tests.plugin import PASSWORD

    with app.app_context():
        user = User(
            email="rival@bench.example",
            name="Ravi Rival",
            role="patient",
            phone="+919812345679",
            password_hash=hash_password(PASSWORD),
        )
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
    return user


def provider_names(app, ids):
    """{provider id: display name}: what a patient types into find-a-doctor."""
    from portal.catalog.models import Provider
    from portal.extensions import db

    with app.app_context():
        rows = db.session.execute(
            sa.select(Provider.id, Provider.display_name).where(Provider.id.in_(ids))
        )
        return dict(rows.all())


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bookings", type=int, default=60, help="bookings measured (60)")
    p.add_argument("--warm", type=int, default=3, help="bookings first, not measured (3)")
    p.add_argument("--database-url", default=os.environ.get("BENCH_FLOW_DATABASE_URL"))
    p.add_argument("--statements", action="store_true", help="list each step's statements")
    p.add_argument("--profile", choices=STEPS, help="a pyinstrument tree of one step")
    p.add_argument(
        "--jobs", action="store_true", help="also run and measure each booking's follow-up jobs"
    )
    p.add_argument(
        "--reads",
        action="store_true",
        help="also measure the pages a browser reads around them (find, free times, book "
        "page, visit, confirmation), in the full flow's order",
    )
    args = p.parse_args(argv)
    from tests.plugin import sign_in

    app = build(args.database_url)
    world = seed(app)
    client = sign_in(app, world.patient)
    rival = rival_client(app)
    hooks = app.test_client()  # the gateway: no session
    sandbox = SandboxClock(app)
    plan = slots(world, args.warm + args.bookings)
    steps = ORDER_WITH_READS if args.reads else STEPS
    names = provider_names(app, (world.doc1, world.doc2)) if args.reads else {}
    figures = {step: [] for step in steps}
    counts = {step: set() for step in steps}
    listed = {}
    job_figures = {}
    profiler = None
    with jobs_handed_over(app):
        for k, (provider, start) in enumerate(plan):
            form = form_for(world, provider, start)
            if args.profile and k >= args.warm:
                profiler = profiler or _profiler()
                out = _book_profiled(
                    app, client, rival, hooks, sandbox, form, args.profile, profiler
                )
            else:
                where = args.statements and k == len(plan) - 1  # slow: the last one only
                out = book_once(
                    app,
                    client,
                    sandbox,
                    form,
                    where,
                    rival,
                    hooks=hooks,
                    reads=names.get(provider),
                )
            ran = run_due_jobs(app, sandbox, where, listed) if args.jobs else {}
            if k < args.warm:
                continue
            for name, runs in ran.items():
                job_figures.setdefault(name, []).extend(runs)
            for step, (statements, cpu, sandbox_cpu) in out.items():
                figures[step].append((cpu, sandbox_cpu))
                counts[step].add(len(statements))
                listed[step] = statements
    if profiler is not None:
        print(profiler.output_text(unicode=True, color=False))
        return
    print(
        f"{args.bookings} bookings; {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}; "
        "CPU without the in-process sandbox"
    )
    print(f"{'step':<13}{'statements':>11}{'CPU p50 ms':>12}{'CPU p95 ms':>12}{'sandbox p50':>13}")
    total = 0.0
    for step in steps:
        cpu = [c for c, _ in figures[step]]
        sandbox_cpu = [s for _, s in figures[step]]
        if step in WRITING:  # the total is one booking's: hold, pay, return
            total += statistics.median(cpu)
        print(
            f"{step:<13}{'/'.join(str(c) for c in sorted(counts[step])):>11}"
            f"{statistics.median(cpu) * 1000:>12.2f}{pct(cpu, 95) * 1000:>12.2f}"
            f"{statistics.median(sandbox_cpu) * 1000:>13.2f}"
        )
    booking = sum(min(c) for step, c in counts.items() if step in WRITING)
    print(f"{'total':<13}{booking:>11}{total * 1000:>12.2f}  (hold, pay, return)")
    if args.reads:
        whole = [s for s in steps if s != "refused"]
        statements = sum(min(counts[s]) for s in whole)
        cpu = sum(statistics.median(c for c, _ in figures[s]) for s in whole)
        print(
            f"{'booking':<13}{statements:>11}{cpu * 1000:>12.2f}  (the full flow's eight portal "
            "requests and the three webhooks)"
        )
    if job_figures:
        print_jobs(job_figures, args.bookings)
    if args.statements:
        for step in listed:
            print(f"\n--- {step}: {len(listed[step])} statements")
            for s in listed[step]:
                sql, _, at = s.partition("\n    @ ")
                print("  " + " ".join(sql.split())[:150] + (f"\n      @ {at}" if at else ""))


def print_jobs(job_figures, bookings):
    """The worker's share: each job's statements and CPU, and their sum a booking."""
    print(
        f"\n{'job (worker)':<28}{'runs':>6}{'statements':>11}{'CPU p50 ms':>12}{'ms/booking':>12}"
    )
    total = 0.0
    for name, runs in sorted(job_figures.items()):
        cpu = [c for _, c in runs]
        share = sum(cpu) / bookings
        total += share
        counts = sorted({n for n, _ in runs})
        shown = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        print(
            f"{name:<28}{len(runs):>6}{shown:>11}"
            f"{statistics.median(cpu) * 1000:>12.2f}{share * 1000:>12.2f}"
        )
    print(f"{'all jobs':<28}{'':>6}{'':>11}{'':>12}{total * 1000:>12.2f}")


def _profiler():
    from pyinstrument import Profiler

    return Profiler(interval=0.0002)


def _book_profiled(app, client, rival, hooks, sandbox, form, step, profiler):
    """One booking with only ``step``'s request under the profiler."""
    profiled = {"refused": rival, "webhooks": hooks}.get(step, client)
    original = profiled.open

    def open_(*a, **kw):
        method = kw.get("method") or (a[1] if len(a) > 1 else "GET")
        path = a[0] if a else kw.get("path", "")
        is_step = {
            "hold": method == "POST" and path == "/me/book",
            "refused": True,
            "webhooks": True,
            "pay": method == "POST" and str(path).endswith("/pay"),
            "return": str(path).endswith("/paid"),
        }[step]
        if not is_step:
            return original(*a, **kw)
        with profiler:
            return original(*a, **kw)

    profiled.open = open_
    try:
        return book_once(app, client, sandbox, form, rival=rival, hooks=hooks)
    finally:
        profiled.open = original


if __name__ == "__main__":
    main()
