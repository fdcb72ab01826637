"""The reporting replica: reads that may run a few seconds behind (the finance reports'
pages and every export) go to a read replica when ``REPORTS_DATABASE_URL`` names one, so a
quarter's GST export scans the replica and not the primary that takes the bookings
(docs/deploy.md). Without the setting nothing changes: the primary answers, as before.

``with reads():`` makes ``db.session`` the replica's session for the block: every statement
the block runs through it goes to the replica, and the report code (``keyset_page``, an
export's server-side cursor, ``db.session.get``) is unchanged. It is a session of its own,
not the request's: its transaction ends with the block, and a replica that fails
mid-block leaves the request's (or the job's) own transaction on the primary untouched.
What the block loaded stays loaded (``expire_on_commit=False``) for the page to render.
Nothing in the block may write: the replica's connections are read-only (PostgreSQL:
``default_transaction_read_only``, which a hot standby enforces anyway; SQLite:
``PRAGMA query_only``), so a report pointed at the primary by mistake still cannot change it.

What a replica shows may miss the last seconds' changes (a refund just issued): the report
pages say how far behind it is (``behind``). A replica that does not answer is
``Unavailable`` (the pages answer 503); reports do not fall back to the primary, which is
the load they were moved off."""

import time
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy.orm import Session

from portal.db import READ_ONLY, db

KEY = "portal.replica"  # the replica's engine in app.extensions
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"  # libpq's startup options
# A replica that stops answering (a host gone, packets dropped) must not hold a page for
# the operating system's minutes: a connection is given up after CONNECT_TIMEOUT seconds,
# a statement sent and not acknowledged after TCP_USER_TIMEOUT_MS (libpq), and a request
# waits at most POOL_TIMEOUT seconds for a free pooled connection.
CONNECT_TIMEOUT = 3
TCP_USER_TIMEOUT_MS = 10_000
POOL_TIMEOUT = 5
STATUS_SECONDS = 5  # how long /readyz/reports' answer is kept (status)
STATUS_KEY = KEY + ".status"


class Unavailable(Exception):
    """The reporting replica does not answer (a connection could not be made)."""


def engine_options(url, primary_options):
    """The replica's engine options: the primary's (pool, prepared statements) for a
    PostgreSQL replica, its connections read-only, short timeouts (above) and a pre-ping
    (a report is rare: a stale pooled connection is replaced, not shown as an error)."""
    if url.startswith("sqlite"):
        return {}  # query_only is set as each connection opens (init_app)
    connect_args = dict(primary_options.get("connect_args", {}))
    connect_args["options"] = " ".join(
        filter(None, (connect_args.get("options"), READ_ONLY_OPTIONS))
    )
    named = sa.engine.make_url(url).query  # what the URL names is the operator's
    for name, value in (
        ("connect_timeout", CONNECT_TIMEOUT),
        ("tcp_user_timeout", TCP_USER_TIMEOUT_MS),
    ):
        if name not in named:
            connect_args.setdefault(name, value)
    return {
        **primary_options,
        "pool_pre_ping": True,
        "pool_timeout": POOL_TIMEOUT,
        "connect_args": connect_args,
    }


def _query_only(dbapi_connection, connection_record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def init_app(app):
    """The replica's engine when ``REPORTS_DATABASE_URL`` is set (normalised by
    ``create_app``). Its own engine, not a Flask-SQLAlchemy bind: a bind key adds a
    metadata that ``create_all`` then asks every app for."""
    url = app.config.get("REPORTS_DATABASE_URL")
    if not url:
        app.extensions.pop(KEY, None)
        return
    engine = sa.create_engine(
        url, **engine_options(url, app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    )
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _query_only)
    app.extensions[KEY] = engine
    app.teardown_appcontext(_close_session)


def engine():
    """The replica's engine, or None (reports read the primary)."""
    return current_app.extensions.get(KEY)


def configured():
    """Whether reports read a replica (``REPORTS_DATABASE_URL`` is set)."""
    return KEY in current_app.extensions


def _session():
    """The app context's replica session (made on first use, closed with the context).
    Marked read-only: a unit of work refuses to start on it (``portal.db``)."""
    session = g.get(KEY)
    if session is None:
        session = Session(bind=engine(), expire_on_commit=False, info={READ_ONLY: True})
        g.setdefault(KEY, session)
    return session


def _lost(exc):
    """Whether ``exc`` says the replica is gone or busy, not that a statement was wrong:
    a connection refused or dropped (SQLAlchemy invalidates it), or no pooled connection
    free in time."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def _close_session(exc):
    session = g.pop(KEY, None)
    if session is not None:
        session.close()


@contextmanager
def reads():
    """``db.session`` is the replica's session in the block, when there is a replica.
    Nested blocks are one block. ``Unavailable`` when the replica cannot be reached."""
    if not configured():
        yield
        return
    registry = current_app.extensions["sqlalchemy"].session.registry
    own = registry()
    replica = _session()
    if own is replica:
        yield
        return
    try:
        replica.connection()  # checked out now (and pinged): a dead replica fails here
    except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
        replica.rollback()
        raise Unavailable(str(getattr(exc, "orig", None) or exc)) from exc
    registry.set(replica)
    try:
        yield
    except BaseException as exc:
        replica.rollback()
        if _lost(exc):
            raise Unavailable(str(getattr(exc, "orig", None) or exc)) from exc
        raise
    else:
        replica.commit()  # reads only: ends its transaction, keeps what it loaded
    finally:
        registry.set(own)


@contextmanager
def snapshot():
    """:func:`reads`, for a long read that must agree with itself (an export's file: its
    rows from one moment) and that, embedded, runs outside the process lock
    (``portal.db.outside_the_lock``). With a replica: ``reads()``. On a PostgreSQL
    primary: nothing changes (the caller's session). On a SQLite primary: ``db.session``
    is a read-only session of its own for the block, in one read transaction (``BEGIN`` …
    rollback; pysqlite would otherwise run each statement alone): in WAL mode a snapshot of
    the moment of its first read, which writers committing meanwhile neither wait for nor
    change."""
    if configured() or db.engine.dialect.name != "sqlite":
        with reads():
            yield
        return
    registry = current_app.extensions["sqlalchemy"].session.registry
    own = registry()
    connection = db.engine.connect()
    clean = False
    try:
        connection.exec_driver_sql("PRAGMA query_only = ON")
        connection.exec_driver_sql("BEGIN")
        session = Session(bind=connection, expire_on_commit=False, info={READ_ONLY: True})
        registry.set(session)
        try:
            yield
        finally:
            registry.set(own)
            session.close()
            connection.rollback()  # reads only: ends the read transaction
            connection.exec_driver_sql("PRAGMA query_only = OFF")
            clean = True
    finally:
        if not clean:  # perhaps still read-only: never back to the pool for a writer
            connection.invalidate()
        connection.close()


@dataclass(frozen=True)
class Source:
    """Where a report page's figures came from, for the page to say: the replica, and
    how many seconds behind the primary it was (None: not a standby, or not known)."""

    behind: int | None


def source():
    """The page's ``Source`` when reports read a replica, else None (the primary)."""
    return Source(behind()) if configured() else None


def status():
    """For monitors (``/readyz/reports``): whether the replica answers and how far behind
    it is; None when there is no replica. Kept per process for ``STATUS_SECONDS``: the
    path is open to anyone, and each probe of a replica that hangs holds a web worker for
    up to ``CONNECT_TIMEOUT``; a stream of requests then costs one probe, not one each."""
    if not configured():
        return None
    now = time.monotonic()
    kept = current_app.extensions.get(STATUS_KEY)
    if kept is not None and now - kept[0] < STATUS_SECONDS:
        return kept[1]
    try:
        with reads():
            pass
        state = {"ok": True, "behind_seconds": behind()}
    except Exception as exc:  # noqa: BLE001 (a monitor's line, never an error page)
        state = {"ok": False, "error": type(exc).__name__}
    current_app.extensions[STATUS_KEY] = (now, state)
    return state


def behind():
    """How many whole seconds the replica's data is behind the primary: 0 when it has
    replayed all it received, None when reports read no standby (no replica set, or one
    that is not in recovery, or SQLite). A standby cut off from its primary looks caught
    up (it replayed all it received); one that has just received WAL after a quiet spell
    shows, for that moment, the time since its last replayed commit."""
    replica = engine()
    if replica is None or replica.dialect.name != "postgresql":
        return None
    with reads():
        row = (
            _session()
            .execute(
                sa.text(
                    "SELECT pg_is_in_recovery() AS standby,"
                    " pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up,"
                    " CAST(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) AS integer)"
                    " AS seconds"
                )
            )
            .one()
        )
    if not row.standby:
        return None
    if row.caught_up or row.seconds is None:
        return 0
    return max(row.seconds, 0)
