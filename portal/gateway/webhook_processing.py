"""Storing and processing verified webhook events.

``record_event`` stores an event once under its event id (Razorpay's ids are unique
across its pay-in and RazorpayX webhooks, so a copy on the other endpoint is a duplicate
too) and sends
``portal.events.webhook_stored`` in the same transaction (the job layer connects to it and
records the processing job in the outbox; the gateway never imports the jobs).
``process_webhook_event`` runs the handlers registered with ``on_event`` and marks the
event processed in one unit of work, claiming it with a conditional UPDATE so two workers
(or a redelivery) can never process it twice.

Handlers take the ``WebhookEvent`` row, run inside that unit of work (do not commit), and
must tolerate events out of order: compare states, never assume a sequence.

A handler may say how to know, when the event arrives, that it would do nothing with it
(``on_event(..., settled=…)``): most capture events repeat what the patient's signed return
already did. An event every handler of its type calls settled is stored processed, and no
job is made for it; the job would have read the same rows and done nothing."""

import logging
import traceback
from collections import defaultdict
from functools import cache

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from portal import events
from portal.db import bind_columns, insert_for, unit_of_work, utcnow
from portal.extensions import db
from portal.gateway import scrub
from portal.gateway.models import WebhookEvent
from portal.gateway.webhook_shapes import shape_problem

log = logging.getLogger("portal.gateway")

HANDLERS = defaultdict(list)  # event type -> [handler(event)]
SETTLED = {}  # handler -> settled(event): True when the handler would do nothing
JOB_NAME = "gateway.process_webhook"

# What ``record_event`` did with an event.
STORED, SETTLED_AT_RECEIPT, DUPLICATE = "stored", "settled", "duplicate"


def on_event(*event_types, settled=None):
    """Register a handler: ``@on_event("payment.captured", "order.paid")``. ``settled(event)``
    (optional): True when the handler would do nothing with the event, decided by reads
    only, in the transaction that receives it (the event is not stored yet)."""

    def register(fn):
        for event_type in event_types:
            if fn not in HANDLERS[event_type]:
                HANDLERS[event_type].append(fn)
        if settled is not None:
            SETTLED[fn] = settled
        return fn

    return register


def settled_at_receipt(event):
    """True when every handler of the event's type says it would do nothing with it. An
    event with no handler, or a handler that cannot tell, is processed by a job as ever."""
    handlers = HANDLERS.get(event.event_type) or ()
    return bool(handlers) and all(_says_settled(h, event) for h in handlers)


def _says_settled(handler, event):
    if handler not in SETTLED:
        return False
    try:
        return bool(SETTLED[handler](event))
    except SQLAlchemyError:
        raise  # the transaction is spoilt: the event cannot be stored either (a 500, resent)
    except Exception:  # a predicate's own fault must not lose the event: its job decides
        log.exception("settled predicate of %s failed on %s", handler.__name__, event)
        return False


def record_event(source, event_id, payload):
    """Store a verified event unless it is known; returns (row id, ``STORED``,
    ``SETTLED_AT_RECEIPT`` or ``DUPLICATE``). A stored event's processing job is recorded
    with it; a settled one is stored processed, with no job. What is stored is
    ``scrub.for_storage(payload)``: bank account numbers cut to their last four digits, a
    fund account's UPI id masked (docs/privacy.md), never the number in full."""
    payload = scrub.for_storage(payload)
    event_type = str(payload.get("event", ""))[:64]
    with unit_of_work():
        now = utcnow()
        settled = settled_at_receipt(WebhookEvent(event_type=event_type, payload=payload))
        row_id = db.session.execute(
            _store(db.engine.dialect.name),
            {
                "source": source,
                "event_id": event_id,
                "event_type": event_type,
                "payload": payload,
                "event_created_at": _int(payload.get("created_at")),
                "received_at": now,
                "processed_at": now if settled else None,
            },
        ).scalar()
        if row_id is None:  # known, or the same event arrived concurrently and won
            return _find(source, event_id), DUPLICATE
        if settled:
            return row_id, SETTLED_AT_RECEIPT
        events.webhook_stored.send("gateway", row_id=row_id)
        return row_id, STORED


@cache
def _store(dialect_name):
    """Built once (per dialect): the event inserted unless an event with its id is known
    from either endpoint, in one statement (a look-up and then an insert took two, three a
    booking). ``ON CONFLICT`` covers the same event stored concurrently on one endpoint."""
    table = WebhookEvent.__table__
    given = (
        "source",
        "event_id",
        "event_type",
        "payload",
        "event_created_at",
        "received_at",
        "processed_at",
    )
    row = sa.select(
        *bind_columns(table, given).values(),
        sa.true().label("signature_ok"),  # only verified events are stored
        sa.literal(0).label("attempts"),
    ).where(
        ~sa.exists().where(
            table.c.event_id == sa.bindparam("event_id", type_=table.c.event_id.type)
        )
    )
    return (
        insert_for(dialect_name)(table)
        .from_select([*given, "signature_ok", "attempts"], row)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(table.c.id)
    )


def _find(source, event_id):
    # Either endpoint: the same event id twice is one event (see the module docstring).
    del source
    return db.session.scalar(
        sa.select(WebhookEvent.id)
        .where(WebhookEvent.event_id == event_id)
        .order_by(WebhookEvent.id)
        .limit(1)
    )


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def process_webhook_event(row_id):
    """Run the handlers of one stored event, at most once. Returns True if it ran them.

    One unit of work (nested in the job runner's when there is one), so the handlers'
    effects — use cases that nest in it — and the 'processed' mark commit together."""
    with unit_of_work():
        return _process(row_id)


def _process(row_id):
    # Claim and read in one statement: the row comes back only to the one who marked it.
    event = db.session.scalars(
        sa.update(WebhookEvent)
        .where(WebhookEvent.id == row_id, WebhookEvent.processed_at.is_(None))
        .values(processed_at=utcnow(), attempts=WebhookEvent.attempts + 1, last_error=None)
        .returning(WebhookEvent)
        .execution_options(populate_existing=True, synchronize_session=False)
    ).one_or_none()
    if event is None:
        return False
    problem = shape_problem(event.payload)
    if problem:
        # Stored before shapes were checked at the door: park it with the reason (an admin
        # sees it) instead of crashing its handler at every retry.
        event.last_error = f"parked: {problem}"
        return False
    for handler in list(HANDLERS.get(event.event_type, ())):
        handler(event)
    return True


def process_webhook(event_id):
    """What the ``gateway.process_webhook`` job runs; an error propagates so the job runner
    retries it, and ``record_failure`` then notes why on the event (for admins)."""
    process_webhook_event(event_id)


def record_failure(exc, event_id):
    """After a failed attempt was rolled back: count it and keep the error on the event."""
    event = db.session.get(WebhookEvent, event_id)
    if event is not None:
        event.attempts += 1
        event.last_error = "".join(traceback.format_exception_only(exc)).strip()[:2000]


def unprocessed_events(limit=100):
    """Stored events not processed yet, oldest first (for an admin view or a sweep)."""
    return db.session.scalars(
        sa.select(WebhookEvent)
        .where(WebhookEvent.processed_at.is_(None))
        .order_by(WebhookEvent.received_at, WebhookEvent.id)
        .limit(limit)
    ).all()
