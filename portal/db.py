"""The declarative base, shared column types and the clock.

Datetimes are stored as UTC and always handed out timezone-aware, on SQLite too."""

import contextvars
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.attributes import set_committed_value

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


_clock_offset = timedelta(0)  # only the demo history moves it (``clock_moved_by``)


def utcnow():
    """The one clock of the app (time-machine moves it in tests)."""
    return datetime.now(UTC) + _clock_offset


def clinic_today():
    """Today in the clinics' zone (India): what a page's "today" means."""
    from portal.domain.timezone import CLINIC_TZ

    return utcnow().astimezone(CLINIC_TZ).date()


@contextmanager
def clock_moved_by(offset):
    """Run the app's clock ``offset`` away from the real time (``flask demo load`` books
    three months of history through the real use cases, each at its own past moment).
    One process, one thread: nothing else runs while the demo loads."""
    global _clock_offset
    saved, _clock_offset = _clock_offset, offset
    try:
        yield
    finally:
        _clock_offset = saved


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC datetime, whatever the database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# PostgreSQL: a transaction that only read ends with COMMIT, so psycopg keeps its prepared
# statements (portal.pg_dialect says why).
registry.register("postgresql.psycopg", "portal.pg_dialect", "PortalPsycopgDialect")


# SQLite (the embedded default): enforce foreign keys as PostgreSQL does, and wait for a
# writer instead of failing at once.
@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        # Write-ahead logging: a reader keeps its snapshot while writers commit, and
        # neither waits for the other (an export's long read, outside the process lock,
        # no longer stops every commit: docs/architecture.md). Kept in the file; a
        # read-only connection (a SQLite replica's) leaves the file's mode as it is.
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            pass
        cursor.close()


def savepoint(session):
    """``session.begin_nested()`` that nests on SQLite too.

    pysqlite opens a transaction only before DML, so a SAVEPOINT issued first would start
    (and its RELEASE commit) a transaction of its own. Open the outer one explicitly, with
    the write lock (IMMEDIATE), waiting for it as for any writer: a deferred one would read
    first, and its first write, if another thread's commit waited on those reads, failed
    at once with "database is locked" (SQLite refuses that upgrade without waiting; a job
    in ``make run`` met it while the sandbox's webhook was being stored)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    return session.begin_nested()


def column_rows(statement, params=None):
    """The rows of a statement that selects columns only (no mapped entity), run on the
    session's connection: the ORM's result machinery (its compile state and row
    processors) cost about 0.1 ms a statement, a tenth of a small page's reading. What the
    session holds unflushed is flushed first, as ``session.execute`` would (nothing, on a
    page: a clean session's flush returns at once)."""
    db.session.flush()
    return db.session.connection().execute(statement, params or {}).all()


def loaded_columns(obj):
    """A row's column values as loaded now, for :func:`put_back`."""
    return obj, {a.key: getattr(obj, a.key) for a in sa.inspect(type(obj)).column_attrs}


def put_back(loaded):
    """After a rollback that changed nothing of a row the request still shows (the
    signed-in user), set its columns back as read instead of reading the row again. Only
    for a row the rolled-back work never wrote."""
    obj, values = loaded
    if sa.inspect(obj).expired_attributes:
        for key, value in values.items():
            set_committed_value(obj, key, value)


def bind_columns(table, names):
    """``{name: bindparam(name)}``, each typed as ``table``'s column of that name: the
    values of an INSERT or UPDATE built once (a module's ``@cache``), whose rows come as
    parameters. ``names`` may map each column to the parameter it takes instead (one
    parameter may feed several columns: ``{"sent_at": "at", "updated_at": "at"}``)."""
    pairs = names.items() if isinstance(names, Mapping) else ((name, name) for name in names)
    return {column: sa.bindparam(param, type_=table.c[column].type) for column, param in pairs}


def contains_text(column, text):
    """``column`` contains ``text``, whatever the case, ``%`` and ``_`` (and the escape
    character) meaning themselves: the portal's one substring search. Written out as
    ``f"%{text}%"`` a typed ``_`` matched any character and ``%`` anything (review finding:
    the admin visit search). ``text`` is lower-cased here, as the column is in SQL."""
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


def after_create_on_postgresql(table, statements):
    """Run ``statements`` (PostgreSQL as written: a "%" is itself) once ``table`` is made,
    on PostgreSQL only: so a database made from the models (``create_all``, as the tests
    make theirs) has the triggers the migrations write."""
    for statement in statements:
        ddl = sa.DDL(statement.replace("%", "%%")).execute_if(dialect="postgresql")
        event.listen(table, "after_create", ddl)


def insert_for(dialect_name):
    """The dialect's ``insert`` (PostgreSQL's or SQLite's: both have ``ON CONFLICT``), for a
    statement built once per dialect."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def on_conflict_ignore(target, values, index_elements):
    """``INSERT … ON CONFLICT (index_elements) DO NOTHING`` for PostgreSQL and SQLite, after
    a flush (the session's pending rows first): ``values`` is one row (a dict) or several (a
    list of dicts), ``target`` a table or a mapped class. Add ``.returning(…)`` to learn
    which rows went in."""
    insert = insert_for(db.engine.dialect.name)
    db.session.flush()
    return insert(target).values(values).on_conflict_do_nothing(index_elements=index_elements)


def insert_ignore(model, values, index_elements):
    """Insert one row unless one with the same ``index_elements`` exists; returns the new
    id, or ``None`` when the row was already there (or inserted concurrently). One
    statement, where a SAVEPOINT and an IntegrityError take four (and releasing a
    savepoint fires the session's ``after_commit`` event, which the outbox listens to)."""
    table = model.__table__
    statement = on_conflict_ignore(table, values, index_elements).returning(table.c.id)
    return db.session.execute(statement).scalar()


log = logging.getLogger("portal.db")

LOCK_TIMEOUT = 30.0  # EMBEDDED_LOCK_TIMEOUT's default (portal.config), outside an app

# What this thread is doing, for the log when another waits too long for the process lock:
# a job's runner sets it (a request is named by its method and path).
DOING = contextvars.ContextVar("portal.doing", default=None)


class Busy(Exception):
    """The embedded mode's process lock stayed taken for ``EMBEDDED_LOCK_TIMEOUT`` seconds:
    nothing was done. A request answers 503 with ``Retry-After`` (``web/errors.py``); a job
    is left due and tried again (``portal.jobs``)."""


class Deadlocked(Busy):
    """PostgreSQL's deadlock detector aborted the transaction (40P01): nothing was done.
    Answered as ``Busy`` (a request 503 with ``Retry-After``, a job tried again); every
    lock order is meant to make it impossible, so where it is raised it is logged as an
    error with the circle PostgreSQL names (``booking.claims``)."""


def doing():
    """What this thread is doing, for a log line: the job, or the request's method and
    path, and the thread."""
    what = DOING.get()
    if what is None and has_request_context():
        what = f"{request.method} {request.path}"
    return f"{what or 'work outside a request'} (thread {threading.current_thread().name})"


class ProcessLock:
    """A re-entrant lock that knows what holds it and waits a bounded time (``take``, and
    ``with``). ``acquire``/``release`` are ``threading.RLock``'s."""

    def __init__(self):
        self._lock = threading.RLock()
        # Changed only by the thread holding the lock; read by a waiter for its log line.
        self._owner, self._depth, self._holder = None, 0, None
        self._owed = threading.local()  # levels let go by ``let_go`` and not taken back

    def acquire(self, blocking=True, timeout=-1):
        if not self._lock.acquire(blocking, timeout):
            return False
        if self._depth == 0:
            self._owner, self._holder = threading.get_ident(), (doing(), time.monotonic())
        self._depth += 1
        return True

    def release(self):
        owed = getattr(self._owed, "levels", 0)
        if owed:  # let go, and not taken back (``let_go``): nothing of it is held
            self._owed.levels = owed - 1
            return
        self._depth -= 1
        if self._depth == 0:
            self._owner = self._holder = None
        self._lock.release()

    def take(self):
        """``acquire``, waiting at most ``EMBEDDED_LOCK_TIMEOUT`` seconds; then ``Busy``,
        logged with what holds the lock and for how long."""
        if self.acquire(blocking=False):
            return
        wait = float(
            current_app.config.get("EMBEDDED_LOCK_TIMEOUT", LOCK_TIMEOUT)
            if has_app_context()
            else LOCK_TIMEOUT
        )
        if self.acquire(timeout=wait):
            return
        what, since = self._holder or ("nothing any more", time.monotonic())
        log.warning(
            "the process lock stayed taken for %.1f s: held for %.1f s by %s; given up: %s",
            wait,
            time.monotonic() - since,
            what,
            doing(),
        )
        raise Busy(f"the portal was busy for {wait:g} s")

    def note(self, what):
        """Name what this thread does under the lock (a job, once its name is read)."""
        if self._owner == threading.get_ident() and self._holder is not None:
            self._holder = (f"{what} (thread {threading.current_thread().name})", self._holder[1])

    __enter__ = take

    def __exit__(self, *exc):
        self.release()

    @contextmanager
    def let_go(self):
        """Let go every level this thread holds for the block; take them back after
        (``take``). If they cannot be taken back in time, ``Busy`` is raised and the
        holders' own releases after it are no-ops."""
        levels = self._depth if self._owner == threading.get_ident() else 0
        what = self._holder[0] if levels else None
        for _ in range(levels):
            self.release()
        try:
            yield
        finally:
            if levels:
                try:
                    self.take()
                except Busy:
                    self._owed.levels = levels
                    raise
                self._holder = (what, time.monotonic())
                for _ in range(levels - 1):
                    self.acquire()


# SQLite (the embedded mode, one process): the one process-wide lock that stands in for
# PostgreSQL's row and advisory locks. Every outermost unit of work holds it (below);
# ``serialized`` and ``catalog.time_lock`` take it for work outside one, or around one.
# No one waits for it longer than ``EMBEDDED_LOCK_TIMEOUT`` (``Busy``).
SQLITE_LOCK = ProcessLock()


@contextmanager
def serialized():
    """Hold the SQLite lock for the body (check … commit); a no-op on PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        yield
        return
    with SQLITE_LOCK:
        yield


@contextmanager
def outside_the_lock():
    """SQLite: the block runs without the process lock this thread holds, taken back after
    it (``Busy`` if not in time: the unit of work around then fails, a job is retried). For
    a long read that writes nothing and reads from a snapshot of its own (an export's file,
    ``portal.replica.snapshot``), inside a unit of work (a job's) that has written nothing
    yet: what it wrote would be another use case's to see or to wait for. A no-op on
    PostgreSQL, which takes no process lock."""
    if db.engine.dialect.name != "sqlite":
        yield
        return
    session = db.session
    raw = session.connection().connection.dbapi_connection
    if session.new or session.dirty or session.deleted or (raw is not None and raw.in_transaction):
        raise RuntimeError("the process lock is let go only before a unit of work writes")
    with SQLITE_LOCK.let_go():
        yield


_LOCK_SUBJECTS = sa.text(
    "SELECT pg_advisory_xact_lock(hashtextextended(s, 0)) "
    "FROM unnest(CAST(:subjects AS text[])) WITH ORDINALITY AS t(s, n) ORDER BY n"
)


def lock_subjects(subjects):
    """PostgreSQL: a transaction-scoped advisory lock per subject (a string naming what is
    locked, e.g. ``provider:7``), all in one statement, in sorted order (two lockers of
    several never wait for each other in a circle); held to the commit or rollback. A no-op
    on SQLite."""
    if not subjects or db.engine.dialect.name != "postgresql":
        return
    # One statement for all, one round trip: the locks are taken row by row in the
    # array's order (its ordinality), which is the sorted order. Without an autoflush:
    # the locks need nothing the session holds, and what it holds is written with what
    # follows, in one flush where this took two.
    with db.session.no_autoflush:
        db.session.execute(_LOCK_SUBJECTS, {"subjects": sorted(set(subjects))})


# In a session's info: it only reads (the reporting replica's, portal.replica).
READ_ONLY = "portal.read_only"


@contextmanager
def unit_of_work():
    """One use case, one transaction.

    The outermost ``with unit_of_work():`` commits once when its block ends and rolls back
    on any error; an inner one (a use case called by another) is a SAVEPOINT, so its
    failure undoes only its own writes and the outer block decides. Views and jobs never
    commit: they call use cases, which open a unit of work. Never on a read-only session:
    a use case inside ``replica.reads()`` would count, commit or roll back the replica's
    session instead of the request's."""
    session = db.session
    if session.info.get(READ_ONLY):
        raise RuntimeError("a unit of work inside replica.reads(): write outside the block")
    depth = session.info.get("uow_depth", 0)
    # SQLite (embedded, one process): the outermost unit of work holds the process lock
    # from its first read to its commit. Every writer then takes SQLITE_LOCK before
    # SQLite's write lock, never the reverse (a job that had written waited for the lock a
    # patient's hold held, while the hold waited for the write lock: 10 s, then "database
    # is locked"), and what a use case read before its first write (pysqlite reads in
    # autocommit until then) still holds at its writes (the holds sweep and the webhook's
    # job confirmed one visit twice). docs/architecture.md, "The embedded mode".
    lock = SQLITE_LOCK if not depth and db.engine.dialect.name == "sqlite" else None
    if lock is not None:
        lock.take()  # Busy, after EMBEDDED_LOCK_TIMEOUT: nothing was done
    session.info["uow_depth"] = depth + 1
    try:
        if depth:
            with savepoint(session):
                yield session
            return
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
    finally:
        session.info["uow_depth"] = depth
        if lock is not None:
            lock.release()


def in_unit_of_work():
    """Whether a unit of work is open on the session (a new one would be a SAVEPOINT,
    committed only with the outer one)."""
    return db.session.info.get("uow_depth", 0) > 0
