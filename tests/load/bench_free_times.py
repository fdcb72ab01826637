"""Benchmark: the anonymous free-times answers in-process, kept against computed.

    .venv/bin/python -m tests.load.bench_free_times                 # PostgreSQL + Redis
    .venv/bin/python -m tests.load.bench_free_times --profile       # pyinstrument of hits
    .venv/bin/python -m tests.load.bench_free_times --http          # one gunicorn worker

The test suite's small catalog on PostgreSQL with Redis, configured as in production where
it matters per request (CSRF, the limiter on Redis, the request log line written to
/dev/null): ``/find``'s htmx results and ``/find/times``' htmx answer, called through the
app's whole WSGI stack with a prepared environ (no test client), and ``/healthz`` as the
machine's yardstick. Rounds alternate kept answers (``FREE_TIMES_CACHE`` on) and computed
ones (off) in one process, so a busy machine slows both alike; prints the CPU per request
(median of the rounds), the statements and the pool checkouts of one request. Asserts
nothing (tests/booking/test_free_times_shared.py holds the budget).

``--http``: the same answers kept, and ``/healthz``, served by gunicorn with ONE sync
worker (the production environment, ``wsgi:app``) under ``wrk`` (4 connections); prints
the worker's own CPU per request (``/proc``: user + system time over the requests wrk
made), which a machine shared with other work inflates far less than throughput."""

import argparse
import logging
import os
import re
import statistics
import subprocess
import time

import sqlalchemy as sa

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/cp_bench_free_times"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"


def build(database_url, redis_url):
    from redis import Redis

    from portal import create_app
    from portal.extensions import db
    from tests.booking.factories import build_world
    from tests.plugin import _test_config, create_schema, ensure_postgres_database

    ensure_postgres_database(database_url)
    Redis.from_url(redis_url).flushdb()
    config = _test_config(
        database_url,
        REDIS_URL=redis_url,
        TESTING=False,
        WTF_CSRF_ENABLED=True,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=redis_url,
    )
    app = create_app(config)
    create_schema(app)
    with app.app_context():
        world = build_world()
        db.session.remove()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
    for handler in logging.getLogger("portal.events").handlers:
        handler.setStream(devnull)  # the line is still built and written
    return app, world


def environ_for(url, headers=()):
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path=url.split("?")[0], query_string=url.partition("?")[2])
    for name, value in headers:
        builder.headers[name] = value
    environ = builder.get_environ()
    builder.close()
    return environ


def call(app, environ):
    status = []
    body = app(dict(environ), lambda s, h, exc_info=None: status.append(s))
    data = b"".join(body)
    if hasattr(body, "close"):
        body.close()
    return status[0], data


def cost(app, environ):
    """(statements, pool checkouts) of one request."""
    from portal.extensions import db

    with app.app_context():
        engine = db.engine
    found = {"statements": 0, "checkouts": 0}

    def statement(*args):
        found["statements"] += 1

    def checkout(*args):
        found["checkouts"] += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "checkout", checkout)
    try:
        status, _ = call(app, environ)
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "checkout", checkout)
    assert status.startswith("200"), status
    return found["statements"], found["checkouts"]


def cpu_per_request(app, environ, n):
    start = time.process_time()
    for _ in range(n):
        call(app, environ)
    return (time.process_time() - start) / n * 1000


def worker_cpu(pid):
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(database_url, redis_url, urls, seconds):
    """Each URL under wrk against one gunicorn worker: (requests/s, worker CPU ms each)."""
    import httpx

    from tests.load import http_stack

    port = http_stack.free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "FLASK_APP")
    }
    env.update(
        http_stack.SECRETS,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SANDBOX_ENABLED="0",
        SESSION_COOKIE_SECURE="0",
        PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    command = [os.path.join(http_stack.BIN, "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}"]
    with open(os.devnull, "wb") as devnull:
        server = subprocess.Popen(
            command + ["wsgi:app"], cwd=http_stack.ROOT, env=env, stdout=devnull, stderr=devnull
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
        ).stdout.split()
        worker = int(children[0])
        found = {}
        for name, (url, headers) in urls.items():
            for _ in range(3):
                httpx.get(base + url, headers=dict(headers))  # the answer kept
            wrk = ["wrk", "-t1", "-c4", f"-d{seconds:g}s"]
            for header in headers:
                wrk += ["-H", ": ".join(header)]
            before = worker_cpu(worker)
            out = subprocess.run(wrk + [base + url], capture_output=True, text=True).stdout
            used = worker_cpu(worker) - before
            done = int(re.search(r"(\d+) requests in", out).group(1))
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            found[name] = rate, used / done * 1000
        return found
    finally:
        server.terminate()
        server.wait()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    p.add_argument("--repeat", type=int, default=500, help="requests per round (500)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    p.add_argument("--profile", action="store_true", help="a pyinstrument tree of kept hits")
    p.add_argument("--http", action="store_true", help="kept answers through one gunicorn")
    p.add_argument("--seconds", type=float, default=5, help="wrk's time per URL (--http, 5)")
    args = p.parse_args(argv)
    app, w = build(args.database_url, args.redis_url)
    from tests.booking.factories import at

    day = at(1, 9).date().isoformat()
    answers = {
        "find results (htmx)": environ_for(
            f"/find?clinic={w.clinic}&service={w.consult}&date={day}",
            [("HX-Request", "true"), ("HX-Target", "results")],
        ),
        "free times (htmx)": environ_for(
            f"/find/times?provider={w.doctors[0]}&service={w.consult}&clinic={w.clinic}&date={day}",
            [("HX-Request", "true"), ("HX-Target", "times")],
        ),
    }
    healthz = environ_for("/healthz")
    if args.http:
        urls = {"/healthz": ("/healthz", ())}
        for name, environ in answers.items():
            query = environ["QUERY_STRING"]
            headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items()]
            headers = [(k.replace("Hx-", "HX-"), v) for k, v in headers if k.startswith("Hx-")]
            urls[name + ", kept"] = (environ["PATH_INFO"] + "?" + query, headers)
        found = over_http(args.database_url, args.redis_url, urls, args.seconds)
        print("one gunicorn worker under wrk (4 connections): requests/s, worker CPU ms each")
        for name, (rate, cpu) in found.items():
            print(f"  {name:<34}{rate:>8.0f}/s {cpu:>8.3f} ms")
        return
    for environ in answers.values():
        for _ in range(3):  # the epoch set, the answer kept, then served
            call(app, environ)
    if args.profile:
        from pyinstrument import Profiler

        environ = answers["free times (htmx)"]
        profiler = Profiler(interval=0.0001)
        profiler.start()
        for _ in range(args.repeat * 4):
            call(app, environ)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    figures = {}
    for _ in range(args.rounds):
        figures.setdefault("/healthz", []).append(cpu_per_request(app, healthz, args.repeat))
        for name, environ in answers.items():
            for kept in (True, False):
                app.config["FREE_TIMES_CACHE"] = kept
                n = args.repeat if kept else max(args.repeat // 5, 20)
                figures.setdefault((name, kept), []).append(cpu_per_request(app, environ, n))
    app.config["FREE_TIMES_CACHE"] = True
    print(f"CPU ms per request, median of {args.rounds} rounds (each round's figures)")
    print(f"  {'/healthz':<34}{statistics.median(figures['/healthz']):>8.3f}")
    for name, environ in answers.items():
        for kept in (True, False):
            app.config["FREE_TIMES_CACHE"] = kept
            call(app, environ)
            statements, checkouts = cost(app, environ)
            values = figures[(name, kept)]
            label = f"{name}, {'kept' if kept else 'computed'}"
            print(
                f"  {label:<34}{statistics.median(values):>8.3f}   statements {statements}, "
                f"pool checkouts {checkouts}   ({', '.join(f'{v:.2f}' for v in values)})"
            )
    app.config["FREE_TIMES_CACHE"] = True


if __name__ == "__main__":
    main()
