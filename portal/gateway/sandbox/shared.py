"""The sandbox's state shared between processes through a database of its own.

Under ``gunicorn -w 4`` (or the portal's own workers with the sandbox mounted) a checkout
begun in one process is paid in another, so the store's memory cannot be per process. The
store keeps its dict-shaped state (``self.orders``, ``self.payments`` … as plain mappings,
see the top of ``store.py``) and its one lock; ``attach(store, url)`` swaps that lock for
a :class:`SharedLock`, which keeps the state in one row of ``sandbox_state`` in the
database at ``url`` (SQLite or PostgreSQL):

- the outermost ``with store.lock:`` takes the database's write lock (SQLite ``BEGIN
  IMMEDIATE``, PostgreSQL ``SELECT … FOR UPDATE``), so the processes take turns exactly as
  threads did, and reloads the state only when another process wrote a newer version;
- on leaving, the state is written back (a new version) only when it changed.

The whole state is one pickled value: simple, and the sandbox is a test double (a few
thousand entities in a long benchmark; a change costs a few milliseconds). Which attributes
are state is worked out from ``store.reset()`` (what it assigns), so a resource family that
adds a table in ``reset()`` is shared without a change here. The reconciliation faults
about the records (``faults.RECORD_FAULTS``) are state (``store.record_faults``); the other
faults and webhook deliveries are not (each process delivers what it emitted, with its own
retries)."""

import ast
import inspect
import pickle
import textwrap
import threading
import time

import sqlalchemy as sa

_META = sa.MetaData()
STATE = sa.Table(
    "sandbox_state",
    _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
)
# Besides what reset() assigns (the clock's offset among it): the id generator moves with
# the state.
EXTRA_STATE = ("_random",)


def _engine(url):
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    if url.startswith("sqlite"):
        # Transactions are begun by hand (BEGIN IMMEDIATE: the write lock up front).
        engine = sa.create_engine(url, connect_args={"timeout": 60, "isolation_level": None})
    else:
        engine = sa.create_engine(url, pool_size=2, max_overflow=8)
    # Several processes start at once: whoever loses the race to create the table or its
    # one row finds them made by another.
    for attempt in range(3):
        try:
            _META.create_all(engine)
            with engine.connect() as conn:
                if conn.scalar(sa.select(STATE.c.id).where(STATE.c.id == 1)) is None:
                    if engine.dialect.name == "sqlite":
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        conn.execute(STATE.insert().values(id=1, version=0, state=b""))
                        conn.exec_driver_sql("COMMIT")
                    else:
                        conn.execute(STATE.insert().values(id=1, version=0, state=b""))
                        conn.commit()
            break
        except sa.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.2)
    return engine


def state_names(store):
    """The attributes ``store.reset()`` assigns (read from its source), plus EXTRA_STATE."""
    source = textwrap.dedent(inspect.getsource(type(store).reset))
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return tuple(sorted(names | set(EXTRA_STATE)))


class SharedLock:
    """A re-entrant lock over threads of this process and, through the database, over
    every process using the same ``url``; loads and saves the store's state."""

    def __init__(self, store, url):
        self.store = store
        self.engine = _engine(url)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.names = state_names(store)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._conn = None
        self._version = None  # the version this process holds in memory
        self._saved = None  # its pickled bytes, to tell whether a block changed anything

    # --- the lock protocol --------------------------------------------------------------

    def __enter__(self):
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth == 1:
            try:
                self._begin()
            except BaseException:
                self._depth -= 1
                self._thread_lock.release()
                raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._depth == 1:
                self._end(commit=exc_type is None)
        finally:
            self._depth -= 1
            self._thread_lock.release()
        return False

    def acquire(self):
        self.__enter__()
        return True

    def release(self):
        self.__exit__(None, None, None)

    # --- the database -------------------------------------------------------------------

    def _begin(self):
        conn = self.engine.connect()
        try:
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.begin()
            row = conn.execute(
                sa.select(STATE.c.version).where(STATE.c.id == 1).with_for_update()
            ).first()
            if row.version == 0:
                # The first process here: its (fresh) state becomes the shared one.
                self._saved, self._version = None, 0
            elif row.version != self._version:
                blob = conn.scalar(sa.select(STATE.c.state).where(STATE.c.id == 1))
                self._load(blob)
                self._saved, self._version = blob, row.version
        except BaseException:
            self._close(conn, commit=False)
            raise
        self._conn = conn

    def _end(self, commit):
        conn, self._conn = self._conn, None
        try:
            if commit:
                blob = self._dump()
                if blob != self._saved:
                    self._version += 1
                    conn.execute(
                        STATE.update()
                        .where(STATE.c.id == 1)
                        .values(version=self._version, state=blob)
                    )
                    self._saved = blob
            else:
                # What the block half-did is not kept: the next block reloads the state.
                self._version = None
        finally:
            self._close(conn, commit=commit)

    def _close(self, conn, commit):
        try:
            if self.sqlite:
                conn.exec_driver_sql("COMMIT" if commit else "ROLLBACK")
            elif commit:
                conn.commit()
            else:
                conn.rollback()
        finally:
            conn.close()

    def _dump(self):
        return pickle.dumps(
            {name: getattr(self.store, name) for name in self.names},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def _load(self, blob):
        for name, value in pickle.loads(blob).items():
            setattr(self.store, name, value)

    def dispose(self):
        self.engine.dispose()


def attach(store, url):
    """Share ``store``'s state through the database at ``url`` from now on."""
    store.lock = SharedLock(store, url)
    return store.lock
