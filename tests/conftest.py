"""Shared fixtures.

- ``app``: one app per test session on the test database (TEST_DATABASE_URL, a PostgreSQL
  URL in CI; by default a throwaway SQLite file). Every table is emptied after each test.
- ``client``: a test client. Requests push their own app context: do not hold ``ctx``
  open around client calls (``g`` and the session would leak between requests).
- ``ctx``: an app context for service-level tests that call services directly.
- ``make_user`` / ``login``: users of each role and signing them in.
- ``pg_app``: an app on the real PostgreSQL (TEST_POSTGRES_URL), for tests that claim
  PostgreSQL behaviour (locking, constraints, concurrency). Fails if PostgreSQL is missing.
"""
import os
import tempfile

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db

PASSWORD = "correct horse 42"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/clinic_portal_test"


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
    }
    config.update(extra)
    return config


def ensure_postgres_database(url):
    """Create the test database on the machine's PostgreSQL if it is not there yet."""
    from sqlalchemy.engine import make_url
    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": target.database})
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
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
    with app.app_context():
        db.session.remove()
        tables = db.metadata.sorted_tables
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    conn.execute(table.delete())


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgres"):
            ensure_postgres_database(url)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    app = create_app(_test_config(url))
    create_schema(app)
    yield app
    _dispose(app)


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
    create_schema(app)
    yield app
    _dispose(app)


@pytest.fixture(autouse=True)
def _clean_database(request):
    yield
    for name in ("app", "pg_app"):
        if name in request.fixturenames:
            app = request.getfixturevalue(name)
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
    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    counter = {"n": 0}

    def make(role="patient", email=None, name=None, password=PASSWORD, phone="+919812345678"):
        counter["n"] += 1
        with app.app_context():
            user = User(email=email or f"{role}{counter['n']}@example.com",
                        name=name or f"{role.title()} {counter['n']}", role=role, phone=phone,
                        password_hash=hash_password(password))
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


@pytest.fixture
def login(client):
    """Sign a user in through the real login form."""
    def do(user, password=PASSWORD):
        response = client.post("/auth/login", data={"email": user.email, "password": password})
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        return response
    return do
