"""The reporting replica: reads that may run a few seconds behind (the finance reports'
pages and every export) go to a read replica when ``REPORTS_DATABASE_URL`` names one, so a
quarter's GST export scans the replica and not the primary that takes the bookings
(docs/deploy.md). Without the setting nothing changes: the primary answers, as before.

``with reads():`` sends every statement ``db.session`` runs in the block to the replica's
engine. What the request changed before the block is flushed to the
primary first; nothing in the block may write: the replica's connections are read-only
(PostgreSQL: ``default_transaction_read_only``, which a hot standby enforces anyway;
SQLite: ``PRAGMA query_only``), so a report pointed at the primary by mistake still cannot
change it.

What a replica shows may miss the last seconds' changes (a refund just issued): the report
pages say how far behind it is (``behind``). A replica that does not answer is
``Unavailable`` (the pages answer 503); reports do not fall back to the primary, which is
the load they were moved off."""

from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy.session import Session as _FlaskSession

KEY = "portal.replica"  # the replica's engine in app.extensions; in session.info while routed
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"  # libpq's startup options


class Unavailable(Exception):
    """The reporting replica does not answer (a connection could not be made)."""


class Session(_FlaskSession):
    """``db.session``'s class: inside ``reads()``, every statement goes to the replica."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and self.info.get(KEY):
            return current_app.extensions[KEY]
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def engine_options(url, primary_options):
    """The replica's engine options: the primary's (pool, prepared statements) for a
    PostgreSQL replica, and its connections read-only."""
    if url.startswith("sqlite"):
        return {}  # query_only is set as each connection opens (init_app)
    connect_args = dict(primary_options.get("connect_args", {}))
    connect_args["options"] = " ".join(
        filter(None, (connect_args.get("options"), READ_ONLY_OPTIONS))
    )
    return {**primary_options, "connect_args": connect_args}


def _query_only(dbapi_connection, connection_record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def init_app(app):
    """The replica's engine when ``REPORTS_DATABASE_URL`` is set (its own, not a
    Flask-SQLAlchemy bind: a bind key would add a metadata that ``create_all`` then asks
    every app for)."""
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


def engine():
    """The replica's engine, or None (reports read the primary)."""
    return current_app.extensions.get(KEY)


def configured():
    """Whether reports read a replica (``REPORTS_DATABASE_URL`` is set)."""
    return KEY in current_app.extensions


@contextmanager
def reads():
    """Route ``db.session``'s statements in the block to the replica, when there is one.
    Nested blocks are one block. ``Unavailable`` when the replica cannot be reached."""
    session = current_app.extensions["sqlalchemy"].session()
    if not configured() or session.info.get(KEY):
        yield
        return
    session.flush()  # this request's own changes belong to the primary
    session.info[KEY] = True
    try:
        try:
            session.connection()  # the replica's, checked out now: a dead one fails here
        except sa.exc.OperationalError as exc:
            raise Unavailable(str(exc.orig or exc)) from exc
        yield
    finally:
        session.info.pop(KEY, None)


@dataclass(frozen=True)
class Source:
    """Where a report page's figures came from, for the page to say: the replica, and
    how many seconds behind the primary it was (None: not a standby, or not known)."""

    behind: int | None


def source():
    """The page's ``Source`` when reports read a replica, else None (the primary)."""
    return Source(behind()) if configured() else None


def behind():
    """How many whole seconds the replica's data is behind the primary: 0 when it has
    replayed all it received, None when reports read no standby (no replica set, or one
    that is not in recovery, or SQLite). A standby cut off from its primary looks caught
    up: it replayed all it received."""
    replica = engine()
    if replica is None or replica.dialect.name != "postgresql":
        return None
    session = current_app.extensions["sqlalchemy"].session
    with reads():
        row = session.execute(
            sa.text(
                "SELECT pg_is_in_recovery() AS standby,"
                " pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up,"
                " CAST(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) AS integer)"
                " AS seconds"
            )
        ).one()
    if not row.standby:
        return None
    if row.caught_up or row.seconds is None:
        return 0
    return max(row.seconds, 0)
