"""The shared test fixtures: one pytest plugin (``-p tests.plugin`` in pyproject's addopts).

Folders keep only what is theirs in their own conftest.py.

- ``app``: one app per test session on the test database (TEST_DATABASE_URL, a PostgreSQL
  URL in CI; by default a throwaway SQLite file). Every table is emptied after each test.
- ``client``: a test client. Requests push their own app context: do not hold ``ctx``
  open around client calls (``g`` and the session would leak between requests).
- ``ctx``: an app context for service-level tests that call services directly.
- ``make_user`` / ``login``: users of each role and signing them in.
- ``pg_app``: an app on the real PostgreSQL (TEST_POSTGRES_URL), for tests that claim
  PostgreSQL behaviour (locking, constraints, concurrency). Fails if PostgreSQL is missing.
- ``ledger_stays_sound``: opt in; the test must leave the ledger balanced.
- ``redis_url``: this worker's Redis (TEST_REDIS_URL). Fails if Redis is missing.
- ``rq_app`` / ``rq_ctx``: the portal as production runs its jobs, handed to RQ on that
  Redis after the commit (a worker the test starts runs them), on a SQLite file of its own
  (one app per module); each test starts with the Redis database empty and leaves no rows
  or keys. ``rq_ctx`` also holds an app context (not around client calls: see ``client``).

Parallel runs (pytest-xdist): each worker gets its own SQLite file (``tmp_path_factory`` is
per worker) and its own PostgreSQL databases (the worker id is appended to the names in
TEST_DATABASE_URL and TEST_POSTGRES_URL, created on demand) and its own Redis database
(TEST_REDIS_URL's number for gw0, the one below for gw1, …: the Redis tests flush theirs).
The browser tests run on one worker, one after the other (xdist group "e2e", with
``--dist loadgroup``: one Chromium at a time).
"""

import contextlib
import os
import sqlite3

import hypothesis
import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db, limiter

PASSWORD = "correct horse 42"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/clinic_portal_test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
# What a process outside the embedded mode (a worker a test starts) must be given
# (portal.config refuses to start without them).
PROD_SECRETS = {
    "SECRET_KEY": "x" * 32,
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "RAZORPAY_KEY_ID": "rzp_test_worker",
    "RAZORPAY_KEY_SECRET": "worker_key_secret",
    "RAZORPAY_WEBHOOK_SECRET": "worker_webhook_secret",
    "RAZORPAYX_WEBHOOK_SECRET": "worker_x_webhook_secret",
    "RAZORPAYX_ACCOUNT_NUMBER": "2323230000000000",
}
SERIAL_GROUPS = ("e2e",)  # markers whose tests share one xdist worker (one Chromium at a time)
# Folders whose tests run in a rolled-back transaction (see ``_rolled_back``), except
# tests marked postgres/redis/e2e (threads, other processes) or ``norollback``.
ROLLBACK_DIRS = ("accounts", "catalog", "web")


def _per_worker(url, worker):
    """``url`` with the worker id appended to its database name (PostgreSQL only)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgres") or not parsed.database:
        return url
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


def _per_worker_redis(url, worker):
    """``url`` with a Redis database of the worker's own: the Redis tests flush their
    database, so two xdist workers must never share one (gw0 keeps the given number, gw1
    the one below it, and so on, never db 0)."""
    base, _, number = url.rpartition("/")
    index = int(worker.removeprefix("gw") or 0)
    own = int(number or 0) - index
    if own < 1:
        # Wrapping round would share a database with gw0's (flushed under its tests) or
        # reach db 0, the portal's own default: refuse instead (the Makefile caps -n auto).
        raise pytest.UsageError(
            f"{worker} would have no Redis database of its own below {url}: "
            "run fewer xdist workers (--maxprocesses) or give TEST_REDIS_URL a higher number"
        )
    return f"{base}/{own}"


# Hypothesis's timing checks fail on a busy machine (2 cores shared by parallel runs)
# without saying anything about the code: no deadline, no "input generation is slow".
hypothesis.settings.register_profile(
    "portal",
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("portal")


@sa.event.listens_for(sa.engine.Engine, "connect")
def _no_fsync_in_tests(dbapi_connection, connection_record):
    """Test databases are thrown away: SQLite need not wait for the disk at every commit
    (most of a test's wall time otherwise). Locking and transactions behave the same;
    only durability after a power cut is given up. PostgreSQL's test databases get
    ``synchronous_commit = off`` when created (``ensure_postgres_database``)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()


def pytest_addoption(parser):
    parser.addoption(
        "--clock-at",
        metavar="ISO",
        help="run with every clock of this process started at this moment, ticking "
        "(time-machine), e.g. 2026-12-31T23:58+05:30: the suite must pass at any hour",
    )
    parser.addoption(
        "--clock-each",
        metavar="ISO",
        help="start every test at this moment, ticking (time-machine), e.g. "
        "2027-03-31T23:59:59.5+05:30: every test straddles it",
    )


_moved_clock = None


def pytest_configure(config):
    global _moved_clock
    if config.getoption("clock_at") and _moved_clock is None:
        import time_machine

        _moved_clock = time_machine.travel(config.getoption("clock_at"), tick=True)
        _moved_clock.start()
    # Every test (and every worker subprocess a test starts) reads these variables, so
    # rewriting them here gives each xdist worker databases of its own.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ["TEST_POSTGRES_URL"] = _per_worker(
            os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG), worker
        )
        if os.environ.get("TEST_DATABASE_URL"):
            os.environ["TEST_DATABASE_URL"] = _per_worker(os.environ["TEST_DATABASE_URL"], worker)
        os.environ["TEST_REDIS_URL"] = _per_worker_redis(
            os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS), worker
        )


@pytest.fixture(autouse=True)
def _clock_each(request):
    moment = request.config.getoption("clock_each")
    if not moment:
        yield
        return
    import time_machine

    with time_machine.travel(moment, tick=True):
        yield


def pytest_unconfigure(config):
    global _moved_clock
    if _moved_clock is not None:
        _moved_clock.stop()
        _moved_clock = None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks (loadgroup)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(f"/tests/{d}/" in str(item.path) for d in ROLLBACK_DIRS) and not any(
            item.get_closest_marker(m) for m in ("postgres", "redis", "e2e", "norollback")
        ):
            item.add_marker(pytest.mark.rollback)
        for group in SERIAL_GROUPS:
            if item.get_closest_marker(group):
                item.add_marker(pytest.mark.xdist_group(group))
                break
        if not _reads_the_test_database(item):
            item.add_marker(pytest.mark.app_free)


def _reads_the_test_database(item):
    """Whether the test can depend on TEST_DATABASE_URL: only the ``app`` fixture reads it
    (``pg_app`` is always TEST_POSTGRES_URL's, ``rq_app`` a SQLite file of its own, the
    migration tests make their own databases). A test that takes ``app`` by
    ``request.getfixturevalue`` says so with the ``database`` mark. The others run the same
    in both of CI's passes, so the SQLite pass leaves them out (``app_free``)."""
    return "app" in getattr(item, "fixturenames", ()) or item.get_closest_marker("database")


def _test_config(database_url, **extra):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "ARGON2_PARAMS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
        "JOBS_INLINE": True,
        "JOBS_INLINE_THREAD": False,
        "PERIODIC_INLINE": False,
        "SERVER_NAME": None,
        # The sandbox's webhooks reach the app through its WSGI callable, no server needed.
        "SANDBOX_INPROCESS": True,
        # Tests pass callback URLs on this host; the sandbox's checkout returns only to the
        # portal's own origins.
        "SANDBOX_CALLBACK_ORIGINS": ("http://portal.test",),
    }
    config.update(extra)
    return config


def ensure_postgres_database(url):
    """Create the test database on the machine's PostgreSQL if it is not there yet; its
    sessions do not wait for the WAL to reach the disk at commit (a throwaway database)."""
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            )
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
            conn.execute(
                sa.text(f'ALTER DATABASE "{target.database}" SET synchronous_commit = off')
            )
    finally:
        admin.dispose()


def create_schema(app):
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.drop_all()
        db.create_all()


def empty_tables(app):
    """Every row gone and (PostgreSQL) every id sequence back at 1, as after TRUNCATE …
    RESTART IDENTITY, which costs about 150 ms for 40 tables against 4 ms for DELETEs on
    the few rows a test leaves: most of the PostgreSQL suite's time before. The audit
    log's and the ledger's rows too, past their append-only triggers
    (``past_the_triggers``). On PostgreSQL one call of a function made for this schema
    (``_emptier``): the 56 DELETEs sent one by one cost 26 ms of the test process's CPU
    and, on a loaded machine, 270 ms of waiting for turns, against 1 ms and 12 ms."""
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            _empty_postgres(db.engine)
            return
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):  # children first
                conn.execute(table.delete())


def _emptier():
    """``(name, CREATE statement)`` of the PL/pgSQL function that empties every table of
    the metadata, children first, past the append-only triggers, and sets every sequence
    back to 1. Its name carries a digest of the tables it empties: a database kept from a
    run of another schema (a worktree's, a helper's) has its own function, never one that
    misses a new table."""
    import hashlib

    tables = [table.name for table in reversed(db.metadata.sorted_tables)]
    digest = hashlib.sha256(" ".join(tables).encode()).hexdigest()[:12]
    name = f"portal_test_empty_{digest}"
    deletes = "\n".join(f'    DELETE FROM "{table}";' for table in tables)
    create = f"""CREATE OR REPLACE FUNCTION {name}() RETURNS void LANGUAGE plpgsql AS $$
DECLARE sequence_oid oid;
BEGIN
    PERFORM set_config('portal.emptying_tables', 'on', true);
{deletes}
    FOR sequence_oid IN
        SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    LOOP
        PERFORM setval(sequence_oid::regclass, 1, false);
    END LOOP;
END $$"""
    return name, create


def _empty_postgres(engine):
    name, create = _emptier()
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"SELECT {name}()"))
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != "42883":  # undefined_function
            raise
        with engine.begin() as conn:  # a database this schema has not emptied yet
            conn.execute(sa.text(create))
            conn.execute(sa.text(f"SELECT {name}()"))


def past_the_triggers(conn):
    """PostgreSQL: this transaction may delete the audit log's and the ledger's rows, which
    their append-only trigger refuses otherwise (portal.append_only); no code of the
    portal's sets it. Not ``session_replication_role = replica`` (no trigger at all,
    superuser only): setting that drops every cached plan of the connection, twice (it
    reverts at the commit), and made the reset a third slower."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL portal.emptying_tables = 'on'"))


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgres"):
            ensure_postgres_database(url)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    app = create_app(_test_config(url))
    _each_request_its_own_user(app)
    create_schema(app)
    yield app
    _dispose(app)


def _each_request_its_own_user(app):
    """A test that holds an app context open shares ``g`` across its requests (Flask reuses
    the context it finds), so Flask-Login's user of one request stayed for the next: a
    deactivated admin's next post was let through (review 4B). In production every request
    has a ``g`` of its own; so does every test request."""
    from flask import g, request_started

    def forget(sender, **extra):
        g.pop("_login_user", None)

    request_started.connect(forget, app, weak=False)


def _dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_app():
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        ensure_postgres_database(url)
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed for this test and is not reachable at {url}: {exc}")
    app = create_app(_test_config(url))
    _each_request_its_own_user(app)
    create_schema(app)
    yield app
    _dispose(app)


@pytest.fixture(scope="session")
def redis_url():
    """This worker's Redis (TEST_REDIS_URL, made per worker by ``pytest_configure``). Fails,
    never skips, when it does not answer: a run without the Redis its tests claim must not
    pass (``make test`` starts one when the machine has none)."""
    from redis import Redis

    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    client = Redis.from_url(url)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis is needed for this test and is not reachable at {url}: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture(scope="module")
def _rq_app(redis_url, tmp_path_factory):
    database = "sqlite:///" + str(tmp_path_factory.mktemp("rq") / "rq.sqlite3")
    app = create_app(
        _test_config(
            database, JOBS_INLINE=False, RQ_CONNECTION=redis_url, REDIS_URL=redis_url, RQ_ASYNC=True
        )
    )
    create_schema(app)
    yield app
    _dispose(app)


@pytest.fixture
def rq_app(_rq_app, redis_url):
    """The app whose jobs go through RQ on the real Redis (the one ``_rq_app`` of the
    module): Redis flushed before and after the test, its tables emptied after it."""
    from redis import Redis

    client = Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield _rq_app
    finally:
        _emptied(_rq_app)
        _forget_between_tests(_rq_app)
        client.flushdb()
        client.close()


@pytest.fixture
def rq_ctx(rq_app):
    """``rq_app`` with its app context held for the test."""
    with rq_app.app_context():
        yield rq_app
        db.session.remove()


@pytest.fixture(autouse=True)
def _rolled_back(request):
    """Tests marked ``rollback`` run inside one outer transaction on one connection that is
    rolled back at the end, instead of emptying every table: SQLAlchemy's "join an external
    transaction" recipe. Every session (the test's, and each request's) joins that
    connection with ``join_transaction_mode="create_savepoint"``, so the app's commits
    release savepoints and the after-commit hooks (the outbox hand-over) still run.
    Only for tests with no concurrency: every session shares the one connection."""
    if request.node.get_closest_marker("rollback") is None:
        yield None
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        connection = db.engine.connect()
    outer = connection.begin()
    if connection.dialect.name == "sqlite":
        # pysqlite opens a transaction only before DML; open it now so every SAVEPOINT
        # nests inside it (else the first RELEASE would commit).
        connection.exec_driver_sql("BEGIN")
    factory = db.session.session_factory
    saved_class, saved_kw = factory.class_, dict(factory.kw)
    factory.class_ = _joined_session_class(saved_class)
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield connection
    finally:
        with app.app_context():
            db.session.remove()
        factory.class_ = saved_class
        factory.kw.clear()
        factory.kw.update(saved_kw)
        outer.rollback()
        connection.close()


def _joined_session_class(base):
    class JoinedSession(base):
        # Flask-SQLAlchemy's get_bind picks the app's engine and never the session's own
        # bind; here the session's bind (the test's connection) wins.
        def get_bind(self, *args, **kwargs):
            return self.bind if self.bind is not None else super().get_bind(*args, **kwargs)

    return JoinedSession


@pytest.fixture(autouse=True)
def _no_replay_between_tests(request):
    """Each test's visitors are answered as a fresh process answers them: ids repeat once
    the tables are emptied, and an answer kept for an earlier test's world would cost a
    test counting statements one more check (portal.web.replay). So is the policy: the
    versions an earlier test cached (under a stamp its emptied tables no longer hold) would
    be reloaded by the next test's first read, one statement more, in whichever test came
    next (a job's budget failed after a policy test on the same xdist worker)."""
    yield
    for name in ("app", "pg_app"):
        if name in request.fixturenames:
            _forget_between_tests(request.getfixturevalue(name))


def _forget_between_tests(app):
    from portal.policies.store import PolicyCache

    app.extensions["replay"].clear()
    app.extensions["policies"] = PolicyCache()


@pytest.fixture(autouse=True)
def _clean_database(request, _rolled_back):
    yield
    for name in ("app", "pg_app"):
        if name == "app" and _rolled_back is not None:
            continue  # rolled back, nothing to empty
        if name in request.fixturenames:
            _emptied(request.getfixturevalue(name))


def _emptied(app):
    empty_tables(app)
    # The mounted sandbox is the app's remote side: empty it too, faults included.
    sandbox = app.extensions.get("razorpay_sandbox")
    if sandbox is not None:
        sandbox.reset()


@pytest.fixture
def ledger_stays_sound(request):
    """Opt in (money tests): the test must leave the ledger balanced and sound."""
    yield
    from portal.ledger.check import verify_ledger

    for name in ("app", "pg_app"):
        if name in request.fixturenames:
            with request.getfixturevalue(name).app_context():
                problems = verify_ledger()
                db.session.remove()
            assert problems == [], problems


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def make_user(app):
    return user_maker(app)


def user_maker(app):
    """``make_user`` for any app (``pg_app``'s tests make their users with it)."""
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password

    counter = {"n": 0}

    def make(role="patient", email=None, name=None, password=PASSWORD, phone="+919812345678"):
        counter["n"] += 1
        with app.app_context():
            user = User(
                email=email or f"{role}{counter['n']}@example.com",
                name=name or f"{role.title()} {counter['n']}",
                role=role,
                phone=phone,
                password_hash=hash_password(password),
            )
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


def sign_in(app, user, password=PASSWORD):
    """A new test client of ``app`` signed in as ``user`` through the real login form (for
    an app other than the ``app`` fixture's, or a client of one's own)."""
    client = app.test_client()
    response = client.post("/auth/login", data={"email": user.email, "password": password})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return client


@contextlib.contextmanager
def rate_limited(app, **settings):
    """A twin of ``app`` on the same database with rate limiting on and ``settings``.

    The session app is built with RATELIMIT_ENABLED off, and Flask-Limiter then skips its
    setup, so flipping the config later would change nothing: build a second app with it
    on, and switch the shared limiter off again afterwards."""
    config = dict(app.config)
    config.update(RATELIMIT_ENABLED=True, **settings)
    twin = create_app(config)
    try:
        yield twin
    finally:
        limiter.enabled = False
        # The limiter is one object for every app of the process: a twin whose Redis was
        # away left it counting in memory (its fallback), which init_app does not reset.
        limiter._storage_dead = False
        with twin.app_context():
            db.session.remove()
            db.engine.dispose()


def csv_rows(text):
    """The rows of a CSV the portal wrote (its byte-order mark first)."""
    import csv
    import io

    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


@pytest.fixture
def login(client):
    """Sign a user in through the real login form."""

    def do(user, password=PASSWORD):
        response = client.post("/auth/login", data={"email": user.email, "password": password})
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        return response

    return do
