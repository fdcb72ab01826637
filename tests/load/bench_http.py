"""Benchmark: the production process model over real HTTP on loopback.

    .venv/bin/python -m tests.load.bench_http                  # or: make bench
    .venv/bin/python -m tests.load.bench_http --clients 16 --seconds 30 --patients 200
    .venv/bin/python -m tests.load.bench_http --runs 3         # and the median of each figure

Starts, on a fresh PostgreSQL database (``--database-url``, dropped and created) and a Redis
database it empties (``--redis-url``, db 9 by default): the Razorpay sandbox as one process
(its state is in memory) with its webhooks pointed at the portal, ``flask db upgrade``,
gunicorn with 4 sync workers (``wsgi:app``), one ``flask rq worker``, the ``flask rq cron``
scheduler, and a bare Flask view under the same gunicorn settings. Before timing it writes
the catalog, the patients and a busy calendar (``--busy`` confirmed bookings of one
provider) and signs the patients in as a browser does (CSRF tokens read from the pages).
Then, with ``--clients`` threads (httpx), it drives:

- ``/healthz`` and the bare view, then both again under ``wrk`` (a C client: one Python
  process cannot send as many requests as gunicorn answers for these);
- free times of one provider from one day (the find page's htmx answer, 7 days), on an
  empty calendar and on the busy one (every slot of the 7 days taken), through the
  signed-in Python clients and then under ``wrk`` (signed out, with its p95), each
  connection carrying the session cookie a visitor's browser holds after the find page
  (the layout's CSRF token), as a browser's htmx requests do;
- the full patient flow (find, free times, book page, hold, visit, pay, sandbox checkout
  page, its pay button, the signed return, confirmation), each client with its own
  provider so every client books distinct slots;
- the minimal flow (hold, pay, the sandbox's pay button, the signed return);
- the race: ``--racers`` signed-in patients posting a hold for one slot at once, once the
  flows' follow-up work has settled (the outbox backlog is read at the flows' end and
  10 s later, before it);

and prints bookings/s, requests/s, p50/p95/p99 per step, 5xx, each step's p50 over the bare
view's, CPU seconds per process (and of this machine's PostgreSQL, with its CPU per request
or booking), the outbox backlog (rows not done) at the end and 10 s
later, and the database's own check that no live slot claim overlaps another of the same
subject. Every process started is stopped at the end, also on an error or Ctrl-C.
Prints figures, asserts nothing (not collected: the name does not start with ``test_``)."""

import argparse
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
import sqlalchemy as sa

from portal.domain.pricing import price_item
from tests.load import http_seed
from tests.load.http_client import (
    HX,
    Browser,
    Recorder,
    first_book_link,
    form_posting_to,
)
from tests.load.http_stack import (
    CONTROL_AUTH,
    QUEUES,
    Stack,
    fresh_database,
    pg_url,
    postgres_cpu_seconds,
)

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/cp_bench_http"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
TIERS = ("web", "worker", "cron", "sandbox", "bare", "postgres")


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


# --- driving clients -------------------------------------------------------------------


def drive(clients, seconds, work, max_per_client=100_000):
    """``work(i)`` in a loop on ``clients`` threads until ``seconds`` pass (a call under
    way finishes); returns (elapsed, completed calls, failed calls)."""
    deadline = time.perf_counter() + seconds
    done, failed, lock = [0], [0], threading.Lock()

    def loop(i):
        for _ in range(max_per_client):
            if time.perf_counter() >= deadline:
                return
            try:
                ok = work(i)
            except Exception:  # noqa: BLE001 -- counted; the recorder has the details
                ok = False
            with lock:
                done[0] += bool(ok)
                failed[0] += not ok

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, done[0], failed[0]


def sign_in_all(url, emails, threads):
    browsers = [None] * len(emails)

    def one(i):
        b = Browser(url)
        b.sign_in(emails[i], http_seed.PASSWORD)
        browsers[i] = b

    chunks = [range(k, len(emails), threads) for k in range(threads)]
    workers = [threading.Thread(target=lambda c=c: [one(i) for i in c]) for c in chunks]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    missing = sum(b is None for b in browsers)
    if missing:
        raise RuntimeError(f"{missing} patients could not sign in")
    return browsers


def ist_day(start_text):
    return datetime.fromisoformat(start_text).astimezone(http_seed.IST).date()


def full_flow(b, world, provider, state):
    """What a browser does, page after page; True when the visit is confirmed."""
    search = {"clinic": world.clinic, "service": world.service, "q": provider[1]}
    b.get("find", "/find", params=search)
    answer = b.get(
        "free_times", "/find", params={**search, "date": state.day.isoformat()}, headers=HX
    )
    link = first_book_link(answer.text)
    if link is None:
        state.day += timedelta(days=7)
        return False
    state.day = ist_day(dict(parse_qsl(urlsplit(link).query))["start"])
    page = b.get("book_page", link)
    form = form_posting_to(page.text, r"/me/book$")
    answer = b.post("hold", form.action, form.fields)
    if answer.status_code != 303:
        return False
    page = b.get("visit", answer.headers["location"])
    form = form_posting_to(page.text, r"/pay$")
    answer = b.post("pay", form.action, form.fields)
    if answer.status_code != 303:
        return False
    checkout = answer.headers["location"]
    page = b.get("checkout", checkout)
    form = form_posting_to(page.text, r"/checkout/")
    answer = b.post(
        "checkout_pay", urljoin(checkout, form.action), {**form.fields, "outcome": "success"}
    )
    if answer.status_code != 303:
        return False
    answer = b.get("return", answer.headers["location"])
    if answer.status_code != 303:
        return False
    page = b.get("confirmation", answer.headers["location"])
    return page.status_code == 200 and "<h1>Payment received</h1>" in page.text


def minimal_flow(b, world, provider, state, sandbox_url):
    """Hold, pay, the sandbox's pay button, the signed return; True when confirmed. Its
    slots start 60 days out, clear of the same patient's full-flow bookings."""
    start = http_seed.slot_start(http_seed.first_day() + timedelta(days=60), state.index)
    state.index += 1
    answer = b.post(
        "hold",
        "/me/book",
        {
            "csrf_token": b.csrf,
            "provider": provider[0],
            "service": world.service,
            "clinic": world.clinic,
            "start": start.isoformat(),
            "visit": "",
            "person": "self",
            "referral": "",
        },
    )
    if answer.status_code != 303:
        return False
    # The amounts the pay button would state (the checkout requires them): no wallet, the
    # seeded consultation's price online. The full flow reads them off the visit page.
    shown = {"shown_wallet": "0", "shown_online": str(price_item(http_seed.CONSULT_FEE).total)}
    answer = b.post(
        "pay",
        answer.headers["location"] + "/pay",
        {"csrf_token": b.csrf, "wallet": "", **shown},
    )
    if answer.status_code != 303:
        return False
    checkout = urlsplit(answer.headers["location"])
    answer = b.post(
        "checkout_pay",
        sandbox_url + checkout.path,
        {
            "callback_url": dict(parse_qsl(checkout.query))["callback_url"],
            "method": "upi",
            "outcome": "success",
        },
    )
    if answer.status_code != 303:
        return False
    answer = b.get("return", answer.headers["location"])
    return answer.status_code == 303 and urlsplit(answer.headers["location"]).path.endswith(
        "/confirmation"
    )


# What a browser's htmx adds to a post of the book form (hx-boost is on the page's body).
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


def race(browsers, world, url, client="raw", day=200):
    """Every browser posts a hold for the same slot at the same instant.

    ``client="raw"`` sends each browser's request, built beforehand (its cookie, its CSRF
    token, the form), over a plain socket and reads the answer to its end, as wrk does:
    the 200 waiting threads then cost the machine next to nothing, so the figure is the
    portal's. ``client="httpx"`` sends it through each browser's httpx client, whose own
    work (about as much CPU per request as the portal's refusal on this machine) shares
    the two cores with the server it measures."""
    start = http_seed.slot_start(http_seed.first_day() + timedelta(days=day), 8)
    barrier = threading.Barrier(len(browsers), timeout=120)
    outcomes = []
    lock = threading.Lock()
    host, port = urlsplit(url).hostname, urlsplit(url).port

    def form(b):
        return {
            "csrf_token": b.csrf,
            "provider": world.race[0],
            "service": world.service,
            "clinic": world.clinic,
            "start": start.isoformat(),
            "visit": "",
            "person": "self",
            "referral": "",
        }

    def attempt(b):
        b.recorder = None
        data = form(b)
        raw = raw_post(b, host, port, "/me/book", data, BOOSTED) if client == "raw" else None
        barrier.wait()
        t0 = time.perf_counter()
        try:
            if raw is not None:
                status = send_raw(host, port, raw)
            else:
                status = b.post("race_hold", "/me/book", data, headers=BOOSTED).status_code
        except Exception as exc:  # noqa: BLE001
            status = type(exc).__name__
        with lock:
            outcomes.append((status, time.perf_counter() - t0))

    threads = [threading.Thread(target=attempt, args=(b,)) for b in browsers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, outcomes


def raw_post(browser, host, port, path, data, headers):
    """The bytes a browser sends for a form post: its session cookie, the form encoded."""
    body = urlencode(data).encode()
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies.jar)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookies}\r\n{extra}"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def send_raw(host, port, request):
    """Send one request on a new connection; the answer's status once it is read whole
    (gunicorn's sync workers close the connection after each answer)."""
    with socket.create_connection((host, port), timeout=60) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    status_line = b"".join(chunks).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


# --- database and queue figures -----------------------------------------------------------


def backlog(engine, redis):
    """(outbox rows due and not done, rows not done at all, jobs waiting in Redis)."""
    with engine.connect() as conn:
        due, pending = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE run_after <= now()), count(*) FROM outbox "
                "WHERE done_at IS NULL"
            )
        ).one()
    queued = sum(redis.llen(f"rq:queue:{q}") for q in QUEUES)
    return due, pending, queued


DOUBLE_CLAIMS = sa.text("""
    SELECT count(*) FROM slot_claims a JOIN slot_claims b
      ON a.subject = b.subject AND a.id < b.id AND a.booking_id <> b.booking_id
     AND tstzrange(a.start_at, a.end_at, '[)') && tstzrange(b.start_at, b.end_at, '[)')
    WHERE a.live AND b.live""")


def claims_check(engine, world):
    with engine.connect() as conn:
        overlaps = conn.scalar(DOUBLE_CLAIMS)
        race_claims = conn.scalar(
            sa.text("SELECT count(*) FROM slot_claims WHERE live AND subject = :s"),
            {"s": f"provider:{world.race[0]}"},
        )
        live = conn.scalar(sa.text("SELECT count(*) FROM slot_claims WHERE live"))
    return overlaps, race_claims, live


# --- printing ---------------------------------------------------------------------------


def ms(seconds):
    return f"{seconds * 1000:8.1f}"


class Report:
    """Prints as it goes and keeps every figure under a name, for medians over runs."""

    def __init__(self):
        self.figures = {}
        self.bare_p50 = None

    def figure(self, name, value):
        self.figures[name] = value

    def steps(self, phase, recorder, elapsed):
        print(
            f"  {'step':<18}{'n':>7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
            f"{'5xx':>6}{'p50/bare':>10}"
        )
        for step, times in recorder.times.items():
            p50, p95, p99 = pct(times, 50), pct(times, 95), pct(times, 99)
            ratio = p50 / self.bare_p50 if self.bare_p50 else float("nan")
            print(
                f"  {step:<18}{len(times):>7}{len(times) / elapsed:>9.1f}{ms(p50):>9}"
                f"{ms(p95):>9}{ms(p99):>9}{recorder.server_errors(step):>6}{ratio:>10.1f}"
            )
            for name, value in (
                ("p50 ms", p50 * 1000),
                ("p95 ms", p95 * 1000),
                ("p99 ms", p99 * 1000),
                ("p50/bare", ratio),
            ):
                self.figure(f"{phase} {step} {name}", value)
        for error, n in recorder.errors.items():
            print(f"  transport error {error}: {n}")

    def cpu(self, phase, before, after, client_cpu, served):
        """CPU seconds per process over the phase, and the serving tier's CPU per request
        (and per booking): on a shared, noisy machine CPU per unit of work moves far less
        than latency does."""
        parts = []
        for tier in TIERS:
            if tier in after:
                used = after[tier] - before.get(tier, 0)
                parts.append(f"{tier} {used:.1f}")
                self.figure(f"{phase} cpu s {tier}", used)
        parts.append(f"bench client {client_cpu:.1f}")
        print("  CPU s: " + ", ".join(parts))
        tier, units = served
        for shown in (tier, "postgres") if "postgres" in after else (tier,):
            used = after.get(shown, 0) - before.get(shown, 0)
            line = []
            for unit, n in units:
                if n:
                    line.append(f"{used / n * 1000:.1f} ms per {unit}")
                    self.figure(f"{phase} {shown} cpu ms per {unit}", used / n * 1000)
            print(f"  {shown} CPU: " + ", ".join(line))


def cpu_now(stack):
    used = {name: p.cpu_seconds() for name, p in stack.procs.items()}
    database = postgres_cpu_seconds()
    if database is not None:
        used["postgres"] = database
    return used


def client_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase(report, stack, name, title, clients, seconds, work, per=None, tier="web"):
    print(f"\n== {title} ({clients} clients, {seconds:g} s) ==", flush=True)
    recorder = Recorder()
    before, c0 = cpu_now(stack), client_cpu()
    elapsed, done, failed = drive(clients, seconds, lambda i: work(i, recorder))
    after, c1 = cpu_now(stack), client_cpu()
    requests = recorder.count()
    print(
        f"  {requests} requests in {elapsed:.1f} s = {requests / elapsed:.1f} requests/s;"
        f" 5xx: {recorder.server_errors()}; failed: {failed}"
    )
    report.figure(f"{name} requests/s", requests / elapsed)
    report.figure(f"{name} 5xx", recorder.server_errors())
    if per:
        print(f"  confirmed bookings: {done} = {done / elapsed:.2f} bookings/s")
        report.figure(f"{name} bookings/s", done / elapsed)
    report.steps(name, recorder, elapsed)
    units = [
        (
            "portal request" if tier == "web" else "request",
            requests - sum(len(t) for s, t in recorder.times.items() if s.startswith("checkout")),
        )
    ]
    if per:
        units.append((per, done))
    report.cpu(name, before, after, c1 - c0, (tier, units))
    return recorder


# wrk's --latency prints no 95th percentile: a `done` hook prints it (microseconds).
WRK_P95 = """
done = function(summary, latency, requests)
  io.write(string.format("p95_us %d\\n", latency:percentile(95)))
end
"""


def visitor_cookie(portal_url, params):
    """The cookies a visitor's browser holds once it has seen the find page and searched
    (a session with the layout's CSRF token, marked not fresh by Flask-Login): what its
    htmx requests carry."""
    with httpx.Client(base_url=portal_url) as client:
        client.get("/find").raise_for_status()
        client.get("/find", params=params, headers=HX).raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def wrk_phase(report, name, url, clients, seconds, headers=()):
    """The same endpoint under wrk (Debian's C load generator, `make bench` installs it):
    one Python client process saturates near 1,300 requests/s on this machine, below
    what gunicorn serves for a constant answer, so the cheap endpoints are measured with a
    client that costs far less per request. Skipped, with a note, where wrk is missing.
    wrk's connections are signed out (``headers`` may carry a visitor's cookie)."""
    if shutil.which("wrk") is None:
        print(f"\n== {name} under wrk: skipped (no wrk on PATH; `make bench` installs it) ==")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_P95)
    # wrk refuses more threads than connections.
    command = [
        "wrk",
        f"-t{min(2, clients)}",
        f"-c{clients}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        script.name,
    ]
    for header in headers:
        command += ["-H", header]
    try:
        done = subprocess.run(command + [url], capture_output=True, text=True, check=True)
    finally:
        os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)$", done.stdout, re.M))
    p95 = int(re.search(r"^p95_us (\d+)$", done.stdout, re.M).group(1)) / 1000
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    print(
        f"\n== {name} under wrk ({clients} connections, {seconds:g} s) ==\n"
        f"  {rate:.0f} requests/s; p50 {latency.get('50')}, p95 {p95:.2f}ms,"
        f" p99 {latency.get('99')}; non-2xx: {errors.group(1) if errors else 0}"
    )
    report.figure(f"{name} wrk requests/s", rate)
    report.figure(f"{name} wrk p95 ms", p95)


# --- one run ----------------------------------------------------------------------------


def run(args, stack, report):
    import redis as redis_lib

    fresh_database(args.database_url)
    redis = redis_lib.Redis.from_url(args.redis_url)
    redis.flushdb()
    engine = sa.create_engine(pg_url(args.database_url))
    try:
        _run(args, stack, report, engine, redis)
    finally:
        engine.dispose()
        redis.close()


def _run(args, stack, report, engine, redis):
    t0 = time.perf_counter()
    steps = []
    stack.start_sandbox()
    stack.migrate()
    stack.start_web()
    stack.start_bare()
    steps.append(("processes", time.perf_counter()))
    app = http_seed.build_app(stack.app_environment(with_redis=False))
    patients = max(args.patients, args.clients, 0 if args.skip_race else args.racers)
    world = http_seed.seed(app, flow_providers=2 * args.clients, patients=patients)
    busy_day = http_seed.busy_calendar(app, world, args.busy, stack.sandbox_url, stack.portal_url)
    # The set-up's webhooks and follow-ups are done here, then the queues emptied: the
    # worker and the cron start on a quiet system.
    http_seed.webhooks_delivered(stack.sandbox_url)
    http_seed.run_due_outbox(app)
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()
    redis.flushdb()
    steps.append(("data", time.perf_counter()))
    stack.start_jobs()
    browsers = sign_in_all(stack.portal_url, world.patients, args.clients)
    steps.append(("sign-in", time.perf_counter()))
    drained = wait_for_outbox(engine, redis, 180)
    steps.append(("first cron jobs", time.perf_counter()))
    took = ", ".join(
        f"{name} {end - start:.0f} s"
        for (name, end), start in zip(steps, [t0] + [end for _, end in steps])
    )
    print(
        f"set-up ({took}): {len(world.patients)} patients signed in, {args.busy} busy "
        f"bookings; before timing: {drained[0]} outbox rows due and not done, "
        f"{drained[2]} jobs queued; logs in {stack.log_dir}",
        flush=True,
    )

    if not args.race_only:
        flows(args, stack, report, engine, redis, browsers, world, busy_day)
    if not args.skip_race:
        # The race measures itself, not the flows' tail of webhooks and jobs.
        settle(engine, redis, stack.sandbox_url, timeout=60)
        race_phase(report, stack, browsers[: args.racers], world, args.race_client)
        show_backlog(
            report, engine, redis, "after the race", "backlog after race", stack.sandbox_url
        )
    overlaps, race_claims, live = claims_check(engine, world)
    print(
        f"\nslot claims: {live} live; overlapping live claims of one subject: {overlaps}; "
        f"live claims of the raced provider: {race_claims} (one per race: the warm-up's "
        "and the race's)"
    )
    report.figure("double-held slots", overlaps)
    dead = stack.dead()
    if dead:
        print(f"processes that exited during the run: {', '.join(dead)}")
    for b in browsers:
        b.close()


def flows(args, stack, report, engine, redis, browsers, world, busy_day):
    """The probes, the free times and both flows, then the backlog they leave."""

    def probe(base, path, step, headers=None, params=None):
        def work(i, recorder):
            b = browsers[i]
            b.recorder = recorder
            url = path if base is None else base + path
            return b.get(step, url, headers=headers, params=params).status_code < 500

        return work

    seconds, probe_s = args.seconds, args.probe_seconds
    bare = phase(
        report,
        stack,
        "bare",
        "bare Flask view",
        args.clients,
        probe_s,
        probe(stack.bare_url, "/bare", "bare"),
        tier="bare",
    )
    report.bare_p50 = pct(bare.times["bare"], 50)
    phase(
        report,
        stack,
        "healthz",
        "/healthz",
        args.clients,
        probe_s,
        probe(None, "/healthz", "healthz"),
    )
    for name, url in (
        ("bare", stack.bare_url + "/bare"),
        ("healthz", stack.portal_url + "/healthz"),
    ):
        wrk_phase(report, name, url, args.clients, probe_s)
    for label, provider in (("empty", world.empty), ("busy", world.busy)):
        params = {
            "clinic": world.clinic,
            "service": world.service,
            "q": provider[1],
            "date": busy_day.isoformat(),
        }
        phase(
            report,
            stack,
            f"free_times_{label}",
            f"free times of {provider[1]} from {busy_day} ({label} calendar)",
            args.clients,
            probe_s,
            probe(None, "/find", f"free_times_{label}", HX, params),
        )
        wrk_phase(
            report,
            f"free_times_{label}",
            stack.portal_url + "/find?" + urlencode(params),
            args.clients,
            probe_s,
            headers=[f"{k}: {v}" for k, v in HX.items()]
            + [f"Cookie: {visitor_cookie(stack.portal_url, params)}"],
        )

    states = [SimpleNamespace(day=http_seed.first_day(), index=0) for _ in browsers]

    def full(i, recorder):
        browsers[i].recorder = recorder
        return full_flow(browsers[i], world, world.flows[i], states[i])

    phase(
        report,
        stack,
        "full",
        "full patient flow (10 requests)",
        args.clients,
        seconds,
        full,
        per="booking",
    )
    show_backlog(
        report, engine, redis, "after the full flow", "backlog after full", stack.sandbox_url
    )

    def minimal(i, recorder):
        browsers[i].recorder = recorder
        return minimal_flow(
            browsers[i], world, world.flows[args.clients + i], states[i], stack.sandbox_url
        )

    phase(
        report,
        stack,
        "minimal",
        "minimal flow (4 requests)",
        args.clients,
        seconds,
        minimal,
        per="booking",
    )
    # The backlog goal is about the flows: "no follow-up backlog left 10 s after the run".
    show_backlog(report, engine, redis, "at the end", "backlog at end", stack.sandbox_url)
    time.sleep(10)
    show_backlog(report, engine, redis, "10 s later", "backlog 10 s later", stack.sandbox_url)


def race_phase(report, stack, browsers, world, client):
    print(
        f"\n== race: {len(browsers)} patients hold one slot at once ({client} client) ==",
        flush=True,
    )
    # A warm-up race for another slot first, not measured: every gunicorn worker has then
    # compiled the refusal's template and statements, as on a server that has been up a
    # while (after the flows most are warm already; with --race-only none is).
    warm = race(browsers[:16], world, stack.portal_url, client, day=201)[1]
    print(f"  warm-up race of {len(warm)} for another slot (not measured)")
    before, c0 = cpu_now(stack), client_cpu()
    elapsed, outcomes = race(browsers, world, stack.portal_url, client)
    after, c1 = cpu_now(stack), client_cpu()
    winners = [t for s, t in outcomes if s == 303]
    losers = [t for s, t in outcomes if s == 422]
    others = [s for s, t in outcomes if s not in (303, 422)]
    print(
        f"  {len(winners)} won (303), {len(losers)} lost (422), {len(others)} other "
        f"{sorted(set(map(str, others)))}; all answered in {elapsed:.2f} s"
    )
    print(
        f"  losers answered p50 {ms(pct(losers, 50))} ms, p95 {ms(pct(losers, 95))} ms, "
        f"p99 {ms(pct(losers, 99))} ms"
    )
    report.figure("race winners", len(winners))
    report.figure("race errors", len(others))
    report.figure("race losers p95 ms", pct(losers, 95) * 1000)
    report.cpu("race", before, after, c1 - c0, ("web", [("attempt", len(outcomes))]))


def wait_for_outbox(engine, redis, timeout):
    deadline = time.monotonic() + timeout
    while True:
        figures = backlog(engine, redis)
        if (figures[0], figures[2]) == (0, 0) or time.monotonic() > deadline:
            return figures
        time.sleep(1)


def settle(engine, redis, sandbox_url, timeout):
    """Wait until no outbox row is due, no job is queued and the sandbox has no webhook
    left to send (at most ``timeout`` seconds); prints how long that took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        due, _pending, queued = backlog(engine, redis)
        state = httpx.get(sandbox_url + "/_control/state", timeout=10, auth=CONTROL_AUTH).json()
        if due == queued == state["pending_webhooks"] == 0:
            break
        time.sleep(0.5)
    print(f"\nsettled in {time.monotonic() - began:.1f} s", flush=True)


def show_backlog(report, engine, redis, when, name, sandbox_url):
    due, pending, queued = backlog(engine, redis)
    webhooks = httpx.get(sandbox_url + "/_control/state", timeout=10, auth=CONTROL_AUTH).json()[
        "pending_webhooks"
    ]
    print(
        f"\noutbox backlog {when}: {due} rows due and not done ({pending} not done, "
        f"later ones included); {queued} jobs queued in Redis; {webhooks} webhooks the "
        f"sandbox has still to deliver",
        flush=True,
    )
    report.figure(f"{name} (due rows)", due)
    report.figure(f"{name} (queued jobs)", queued)
    report.figure(f"{name} (webhooks to deliver)", webhooks)


# --- entry point ------------------------------------------------------------------------


def medians(reports):
    print(f"\n== median of {len(reports)} runs ==")
    names = [n for n in reports[0].figures]
    for name in names:
        values = [r.figures[name] for r in reports if name in r.figures]
        if all(math.isnan(v) for v in values) or (" cpu s " in name and not any(values)):
            continue  # nan (the bare view against itself), or a tier idle in that phase
        shown = "  ".join(f"{v:.1f}" for v in values)
        print(f"  {name:<42}{statistics.median(values):>10.1f}   ({shown})")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    p.add_argument("--seconds", type=float, default=30, help="each flow's duration (30)")
    p.add_argument(
        "--probe-seconds",
        type=float,
        default=10,
        help="duration of the /healthz, bare and free-times phases (10)",
    )
    p.add_argument("--patients", type=int, default=200, help="patients signed in (200)")
    p.add_argument("--racers", type=int, default=200, help="patients in the race (200)")
    p.add_argument(
        "--busy", type=int, default=430, help="confirmed bookings of the busy provider (430)"
    )
    p.add_argument("--skip-race", action="store_true")
    p.add_argument("--race-only", action="store_true", help="set up, then only the race")
    p.add_argument(
        "--race-client",
        choices=("raw", "httpx"),
        default="raw",
        help="how the racers send: prebuilt requests on sockets (raw) or httpx",
    )
    p.add_argument("--runs", type=int, default=1, help="whole runs, then medians (1)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB),
        help="PostgreSQL database to DROP and create",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
        help="Redis database to empty and use",
    )
    return p.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    # `kill` stops the run the way Ctrl-C does: through the finally below.
    signal.signal(signal.SIGTERM, _interrupt)
    reports = []
    for n in range(args.runs):
        stack = Stack(
            args.database_url, args.redis_url, tempfile.mkdtemp(prefix=f"bench_http_{n + 1}_")
        )
        report = Report()
        print(
            f"\n######## run {n + 1} of {args.runs}: {args.clients} clients, portal "
            f"{stack.portal_url}, sandbox {stack.sandbox_url}, bare {stack.bare_url}",
            flush=True,
        )
        try:
            run(args, stack, report)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping every process started")
            break
        finally:
            stack.stop()
        reports.append(report)
    if len(reports) > 1:
        medians(reports)


if __name__ == "__main__":
    main()
