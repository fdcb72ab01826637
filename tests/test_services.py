"""`make test` on a fresh machine: tools/services.py starts throwaway PostgreSQL and Redis
servers when the configured ones do not answer, hands their URLs to the command, and
stops them afterwards."""

import os
import socket
import subprocess
import sys

from tests.load.http_stack import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = """
import os, sys
import redis, sqlalchemy as sa
pg, rd = os.environ["TEST_POSTGRES_URL"], os.environ["TEST_REDIS_URL"]
assert redis.Redis.from_url(rd).ping()
url = pg.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0] + "/postgres"
engine = sa.create_engine(url)
with engine.connect() as conn:
    assert conn.scalar(sa.text("SELECT 1")) == 1
engine.dispose()
print(pg, rd)
"""


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_unreachable_servers_are_started_for_the_run_and_stopped_after():
    pg_port, redis_port = free_port(), free_port()
    env = {
        **os.environ,
        "TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/throwaway_db",
        "TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}/4",
    }
    env.pop("TEST_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "tools/services.py", "--", sys.executable, "-c", CHECK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # The command got servers on the ports asked for, and they are gone now.
    assert done.stdout.split() == [env["TEST_POSTGRES_URL"], env["TEST_REDIS_URL"]]
    assert "throwaway" in done.stderr
    assert not _answers(pg_port) and not _answers(redis_port)


def test_reachable_servers_are_used_as_they_are():
    env = {**os.environ, "TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:1/x"}
    with socket.socket() as listening:  # "a server": something answers on the port
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        env["TEST_POSTGRES_URL"] = f"postgresql://postgres@127.0.0.1:{port}/x"
        env["TEST_REDIS_URL"] = f"redis://127.0.0.1:{port}/1"
        done = subprocess.run(
            [
                sys.executable,
                "tools/services.py",
                "--",
                sys.executable,
                "-c",
                "import os;print(os.environ['TEST_POSTGRES_URL'], os.environ['TEST_REDIS_URL'])",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [env["TEST_POSTGRES_URL"], env["TEST_REDIS_URL"]]
    assert "throwaway" not in done.stderr
