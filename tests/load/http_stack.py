"""The production process model on loopback, for ``tests.load.bench_http``.

Starts what the README's Production section lists, each as its own process group so that
everything it forked (gunicorn's workers, RQ's work horses) is stopped with it:
gunicorn -w 4 (``wsgi:app``), ``RQ_WORKERS`` ``flask rq worker`` processes (the Procfile's
default, 2; ``BENCH_RQ_WORKERS`` overrides it), the ``flask rq cron`` scheduler, the
Razorpay sandbox (``python -m portal.gateway.sandbox``, one process: its state lives in
memory) and, for comparison, a bare Flask app under the same gunicorn settings."""

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, ".venv", "bin")
QUEUES = ["default", "payments", "payouts", "notify"]  # the README's worker command
# Worker processes, as the Procfile runs them: one cannot drain the webhooks that arrive in a
# burst when the load stops on its one core (docs/performance.md, "No follow-up backlog").
RQ_WORKERS = int(os.environ.get("BENCH_RQ_WORKERS", "2"))
SECRETS = {
    "SECRET_KEY": "bench-http-secret",
    "RAZORPAY_KEY_ID": "rzp_test_benchhttp",
    "RAZORPAY_KEY_SECRET": "bench_http_key_secret",
    "RAZORPAY_WEBHOOK_SECRET": "bench_http_webhook_secret",
    "RAZORPAYX_WEBHOOK_SECRET": "bench_http_x_webhook_secret",
    "RAZORPAYX_ACCOUNT_NUMBER": "2323230000000000",
}
# The sandbox's control API wants its key (HTTP basic), as its /v1 API does.
CONTROL_AUTH = (SECRETS["RAZORPAY_KEY_ID"], SECRETS["RAZORPAY_KEY_SECRET"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_url(url):
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def fresh_database(url):
    """Drop and create the benchmark's own database (never anyone else's)."""
    target = sa.engine.make_url(pg_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: str

    def cpu_seconds(self):
        """CPU (user + system) of the process and its live descendants, plus what their
        reaped children used: the whole tier's cost, whatever it forked or spawned (RQ's
        work horses run in process groups of their own)."""
        return _cpu_seconds(_tree(self.popen.pid))

    def descendants(self):
        """(pid, start time) of each live descendant: a pid is only ever signalled again
        if it is still the same process."""
        return [
            (pid, fields[19])
            for pid, fields in _tree(self.popen.pid).items()
            if pid != self.popen.pid
        ]


def _processes():
    """{pid: (command, stat fields after the command)} of every process on the machine."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = [
            int(v) if v.lstrip("-").isdigit() else v for v in stat[stat.rindex(")") + 2 :].split()
        ]
        out[int(name)] = (stat[stat.index("(") + 1 : stat.rindex(")")], fields)
    return out


def _tree(root, processes=None):
    """{pid: stat fields after the command name} of ``root`` and its live descendants."""
    processes = processes if processes is not None else _processes()
    children = {}
    for pid, (_, fields) in processes.items():
        children.setdefault(fields[1], []).append(pid)  # fields[1] is the parent
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in processes:
            out[pid] = processes[pid][1]
            todo.extend(children.get(pid, []))
    return out


def _cpu_seconds(tree):
    """User + system CPU of the processes, and what their reaped children used."""
    return sum(sum(fields[11:15]) for fields in tree.values()) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds():
    """CPU seconds of this machine's PostgreSQL: its postmaster and every backend, live or
    reaped; None when no PostgreSQL runs here (a remote database). The database is shared
    with nothing else during a run, so a phase's difference is the portal's queries."""
    processes = _processes()
    for pid, (command, fields) in processes.items():
        parent = processes.get(fields[1])
        if command == "postgres" and (parent is None or parent[0] != "postgres"):
            return _cpu_seconds(_tree(pid, processes))
    return None


@dataclass
class Stack:
    """Settings and processes of one benchmark run."""

    database_url: str
    redis_url: str
    log_dir: str
    portal_port: int = field(default_factory=free_port)
    bare_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    procs: dict = field(default_factory=dict)

    @property
    def portal_url(self):
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def bare_url(self):
        return f"http://127.0.0.1:{self.bare_port}"

    @property
    def sandbox_url(self):
        return f"http://127.0.0.1:{self.sandbox_port}"

    def app_environment(self, with_redis=True):
        """The environment of the portal's processes (README, Production)."""
        env = {
            "DATABASE_URL": self.database_url,
            "PUBLIC_URL": self.portal_url,
            "RAZORPAY_BASE_URL": self.sandbox_url,
            "SANDBOX_ENABLED": "0",
            "SESSION_COOKIE_SECURE": "0",  # plain HTTP on loopback
            # Every patient signs in from 127.0.0.1: the per-address limit would stop the
            # set-up long before N patients are in.
            "LOGIN_RATE_LIMIT": "100000 per minute",
            **SECRETS,
        }
        if with_redis:
            env["REDIS_URL"] = self.redis_url
        return env

    def _env(self, extra):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "FLASK_APP")
        }
        env.update(extra)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, name, argv, extra_env):
        log_path = os.path.join(self.log_dir, f"{name}.log")
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self._env(extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs[name] = Proc(name, popen, log_path)
        return self.procs[name]

    def migrate(self):
        subprocess.run(
            [os.path.join(BIN, "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=self._env(self.app_environment()),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start_sandbox(self):
        self.start(
            "sandbox",
            [sys.executable, "-m", "portal.gateway.sandbox"],
            {
                **SECRETS,
                "SANDBOX_HOST": "127.0.0.1",
                "SANDBOX_PORT": str(self.sandbox_port),
                "SANDBOX_WEBHOOK_URL": self.portal_url + "/webhooks/razorpay",
                "SANDBOX_X_WEBHOOK_URL": self.portal_url + "/webhooks/razorpayx",
            },
        )
        wait_http(self.sandbox_url + "/_control/state", "sandbox", self.procs["sandbox"])

    def start_web(self):
        self.start(
            "web",
            [
                os.path.join(BIN, "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{self.portal_port}",
                "wsgi:app",
            ],
            self.app_environment(),
        )
        wait_http(self.portal_url + "/readyz", "portal", self.procs["web"])

    def start_bare(self):
        self.start(
            "bare",
            [
                os.path.join(BIN, "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{self.bare_port}",
                "tests.load.bare_app:app",
            ],
            {},
        )
        wait_http(self.bare_url + "/bare", "bare app", self.procs["bare"])

    def start_jobs(self):
        flask = [os.path.join(BIN, "flask"), "--app", "wsgi", "rq"]
        # The workers under one shell, so the "worker" tier's CPU is all of theirs (the shell
        # waits for them: their CPU is its children's when they exit).
        worker = shlex.join(flask + ["worker", *QUEUES])
        script = " ".join([f"{worker} &"] * RQ_WORKERS) + " wait"
        self.start("worker", ["sh", "-c", script], self.app_environment())
        self.start("cron", flask + ["cron"], self.app_environment())

    def stop(self):
        """TERM every group, then KILL what is left after a grace period, descendants in
        groups of their own included."""
        strays = set()
        for proc in self.procs.values():
            strays.update(proc.descendants())
            _signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc.popen, signal.SIGKILL)  # stragglers of the group, if any
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for pid, started in strays:
            if _tree(pid).get(pid, [None] * 20)[19] == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.procs.clear()

    def dead(self):
        """Names of started processes that have exited."""
        return [name for name, p in self.procs.items() if p.popen.poll() is not None]


def _signal_group(popen, sig):
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_http(url, what, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{what} exited (code {proc.popen.returncode}); see {proc.log_path}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s; see {proc.log_path}")
