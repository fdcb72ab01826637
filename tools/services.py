"""Run a command (the test suite) with PostgreSQL and Redis reachable.

    python tools/services.py -- python -m pytest -n auto

For each of TEST_POSTGRES_URL (and TEST_DATABASE_URL when it is a PostgreSQL URL) and
TEST_REDIS_URL (defaults as in tests/plugin.py): when the server it names answers, it is
used as it is. When it does not, a throwaway server is started for this run over the
Debian binaries (``/usr/lib/postgresql/*/bin/initdb`` + ``pg_ctl``, ``redis-server``),
installed with apt-get first when missing (as ``make browser`` installs Chromium), on the
port the URL names (or a free one if that port is taken by something else), with its data
in a temporary directory; the URLs handed to the command point at it. Every server started
here is stopped, and its directory removed, when the command ends (also on Ctrl-C).
initdb refuses to run as root: as root, the servers run as the ``postgres`` user."""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/clinic_portal_test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def log(message):
    print(f"[services] {message}", file=sys.stderr, flush=True)


def answers(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_port(url, port):
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{parts.hostname}:{port}"
    netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return urlunsplit(parts._replace(netloc=netloc))


def apt_install(*packages):
    if os.geteuid() != 0:
        sys.exit(f"[services] {', '.join(packages)} missing and not root: install them first")
    log(f"installing Debian's {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        apt_install("postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return os.path.dirname(found[-1])


def _version(path):
    try:
        return int(path.split("/")[4])
    except (IndexError, ValueError):
        return 0


class Services:
    def __init__(self):
        self.stops = []  # callables, run in reverse order
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres") if _has_user("postgres") else None

    def _user(self):
        """subprocess keywords that run a server as ``self.user`` (when root)."""
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _own_dir(self, prefix):
        path = tempfile.mkdtemp(prefix=prefix)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return path

    def postgres(self, url):
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
        if answers(host, port):
            return url
        port = port if not answers("127.0.0.1", port) else free_port()
        log(f"PostgreSQL not reachable at {host}:{parts.port or 5432}: a throwaway one on {port}")
        self.throwaway_postgres(port)
        return with_port(url, port).replace(f"@{host}:", "@127.0.0.1:")

    def throwaway_postgres(self, port=None, options=""):
        """Start a new server (initdb) on ``port`` (a free one if None), its data in a
        temporary directory removed when it stops; returns the port."""
        if os.geteuid() == 0 and self.user is None:
            apt_install("postgresql")  # creates the postgres user
            self.user = pwd.getpwnam("postgres")
        bindir = pg_bin()
        data = self._own_dir("portal-test-pg-")
        subprocess.run(
            [f"{bindir}/initdb", "-D", data + "/data", "-U", "postgres", "-A", "trust"],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=data,
            **self._user(),
        )
        return self._pg_start(bindir, data, port or free_port(), options)

    def standby_of(self, primary_port, port=None):
        """Start a hot standby streaming from the throwaway server on ``primary_port``
        (``pg_basebackup -R``: its initdb allows replication from 127.0.0.1); returns its
        port."""
        bindir = pg_bin()
        data = self._own_dir("portal-test-standby-")
        subprocess.run(
            [f"{bindir}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port)]
            + ["-U", "postgres", "-D", data + "/data", "-R", "-X", "stream"],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=data,
            **self._user(),
        )
        return self._pg_start(bindir, data, port or free_port(), "-c hot_standby=on")

    def _pg_start(self, bindir, data, port, options=""):
        options = (
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 " + options
        )
        subprocess.run(
            (
                [f"{bindir}/pg_ctl", "-D", data + "/data", "-o", options, "-l", data + "/log", "-w"]
                + ["start"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=data,
            **self._user(),
        )

        def stop():
            subprocess.run(
                [f"{bindir}/pg_ctl", "-D", data + "/data", "-m", "immediate", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=data,
                **self._user(),
            )
            shutil.rmtree(data, ignore_errors=True)

        self.stops.append(stop)
        return port

    def redis(self, url):
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        if answers(host, port):
            return url
        server = shutil.which("redis-server")
        if server is None:
            apt_install("redis-server")
            server = shutil.which("redis-server") or "/usr/bin/redis-server"
        port = port if not answers("127.0.0.1", port) else free_port()
        data = self._own_dir("portal-test-redis-")
        log(f"Redis not reachable at {host}:{parts.port or 6379}: a throwaway one on {port}")
        process = subprocess.Popen(
            (
                [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
                + ["no", "--dir", data, "--logfile", data + "/log"]
            ),
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            cwd=data,
            **self._user(),
        )
        deadline = time.monotonic() + 30
        while not answers("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"[services] redis-server did not start; see {data}/log")
            time.sleep(0.1)

        def stop():
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            shutil.rmtree(data, ignore_errors=True)

        self.stops.append(stop)
        return with_port(url, port).replace(f"//{host}:", "//127.0.0.1:")

    def stop(self):
        while self.stops:
            try:
                self.stops.pop()()
            except Exception as exc:  # noqa: BLE001 -- stop the others all the same
                log(f"stopping a service failed: {exc}")


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def main(argv):
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit(__doc__)
    services = Services()
    env = dict(os.environ)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        pg = env.get("TEST_POSTGRES_URL", DEFAULT_PG)
        started = services.postgres(pg)
        env["TEST_POSTGRES_URL"] = started
        whole = env.get("TEST_DATABASE_URL", "")
        if whole.startswith("postgres"):
            moved = urlsplit(whole).netloc == urlsplit(pg).netloc and started != pg
            env["TEST_DATABASE_URL"] = (
                with_port(whole, urlsplit(started).port).replace(
                    f"@{urlsplit(whole).hostname}:", "@127.0.0.1:"
                )
                if moved
                else services.postgres(whole)
            )
        env["TEST_REDIS_URL"] = services.redis(env.get("TEST_REDIS_URL", DEFAULT_REDIS))
        return subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
