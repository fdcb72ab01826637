"""The lock on a provider's time. Whatever makes a provider busy (a claim: a hold, a move,
a revived booking; ``portal.booking.claims``) and whatever takes their time away (a leave,
a deactivation, weekly hours removed or shortened, a clinic taken with its hours; a
clinic's deactivation or new opening hours, for every provider with hours or bookings
there; a service's deactivation, mode or a provider taken from it, for every provider
offering it: ``lock_providers``) takes it, so of two at once the second sees the first's
commit.

PostgreSQL: a transaction-scoped advisory lock per subject (``provider:<id>``, the claims'
spelling). A leave, a deactivation or a change of hours takes it before reading the
bookings in its way; a claim takes it before it is written (``lock_subjects`` in a hold,
and the trigger ``tg_slot_claims_provider_present`` on ``slot_claims`` for every claim),
and the trigger then refuses a live claim over a leave, of an inactive provider, outside
the provider's weekly hours at the booking's clinic, at a clinic inactive or closed then
(migration clinic0open1), or of a service inactive or no longer the provider's (migration
svcoffer0001) as a lost race (SQLSTATE 23P01, the exclusion constraint's): a hold checks
leave, hours, the clinic and the service before it takes its locks, so only a check after
the lock can see a change that committed in between. The trigger adds no
statement to a hold (docs/booking.md, docs/performance.md).

Lock order: the lock on a provider's time comes LAST in a catalog edit, after the
``catalog_version`` row and the edited rows (``catalog.checks``, "Lock order"): a hold
takes it first and then inserts rows referring to the provider, service and clinic (their
foreign keys' ``FOR KEY SHARE``, which an edit's ``FOR NO KEY UPDATE`` lets through), and
never takes the ``catalog_version`` row, so neither waits for the other in a circle.

SQLite (the embedded mode, one process): one process-wide lock held from the check to the
commit (:func:`serialized`); the checks inside it are authoritative."""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import SQLITE_LOCK, serialized  # noqa: F401 -- the catalog's and claims' serialized
from portal.db import lock_subjects as db_lock_subjects
from portal.extensions import db


def provider_subject(provider_id):
    """A provider's claims' subject, and the name of the lock on their time."""
    return f"provider:{int(provider_id)}"


def is_postgres():
    return db.engine.dialect.name == "postgresql"


_HELD = "time_lock_held"


def hold_to_end():
    """:func:`serialized` for a check made inside a unit of work someone else opened (a
    receiver of the caller's signal, which cannot wrap the caller's commit): on SQLite the
    lock is taken now and let go when the session's transaction ends (its commit or
    rollback). Call it before the transaction writes anything. A no-op on PostgreSQL,
    whose advisory locks (``lock_provider``) last to the transaction's end anyway."""
    if is_postgres():
        return
    SQLITE_LOCK.take()
    session = db.session()
    session.info[_HELD] = session.info.get(_HELD, 0) + 1


@sa.event.listens_for(Session, "after_transaction_end")
def _let_go(session, transaction):
    if transaction.parent is None:  # the outermost transaction: committed or rolled back
        for _ in range(session.info.pop(_HELD, 0)):
            SQLITE_LOCK.release()


def lock_subjects(subjects):
    """PostgreSQL: take a transaction-scoped advisory lock per subject (in one order, so
    two claimers never wait for each other). Without it, concurrent inserts of overlapping
    claims each wait for the other's uncommitted index entry and one of them only learns it
    lost from the deadlock detector, a ``deadlock_timeout`` (1 s) later; with it, claimers
    of one slot queue here and each one after the winner is refused at once."""
    db_lock_subjects(subjects)  # one statement; a hold's new rows are flushed with its claims


def lock_provider(provider_id):
    """Before a leave, a deactivation or a change of weekly hours reads the bookings in its
    way: a hold writing its claims meanwhile commits first (and is then read), or waits for
    this commit (and its claims' trigger then sees the change)."""
    lock_subjects([provider_subject(provider_id)])


def lock_providers(provider_ids):
    """:func:`lock_provider` for several providers at once, in the order a hold takes them
    (``lock_subjects``: their subjects sorted), so a team's hold and this never wait for
    each other in a circle: a clinic's change takes the lock of everyone who could be
    booked there (``catalog.clinics``)."""
    lock_subjects([provider_subject(pid) for pid in provider_ids])
