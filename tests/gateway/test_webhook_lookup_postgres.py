"""On PostgreSQL, storing a webhook looks its event id up through an index of its own.

Every webhook is looked up by its event id alone (an event is known whichever endpoint it
came to). The unique (source, event_id) cannot serve that look-up: PostgreSQL scanned the
whole table, about 32 ms at 500,000 events, three a booking (docs/performance.md)."""

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.gateway import webhook_processing


@pytest.mark.postgres
def test_the_event_id_look_up_uses_its_own_index(pg_app):
    with pg_app.app_context():
        statement = webhook_processing._store("postgresql")
        compiled = statement.compile(dialect=db.engine.dialect)
        params = {
            "source": "razorpay",
            "event_id": "evt_lookup",
            "event_type": "payment.captured",
            "payload": "{}",
            "event_created_at": None,
            "received_at": None,
        }
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the plan of a big table
            plan = "\n".join(
                row[0]
                for row in conn.exec_driver_sql(
                    "EXPLAIN " + str(compiled), {k: params.get(k) for k in compiled.params}
                )
            )
            conn.rollback()
    assert "ix_webhook_event_event_id" in plan, plan
    assert "uq_webhook_event_source_event_id" in plan  # ON CONFLICT's arbiter, still there


@pytest.mark.postgres
def test_a_stored_event_is_found_by_its_id_from_either_endpoint(pg_app):
    with pg_app.app_context():
        payload = {"event": "payment.authorized", "payload": {}, "created_at": 1}
        try:
            first = webhook_processing.record_event("razorpay", "evt_either", payload)
            again = webhook_processing.record_event("razorpayx", "evt_either", payload)
            count = db.session.scalar(
                sa.select(sa.func.count()).select_from(webhook_processing.WebhookEvent)
            )
        finally:
            db.session.execute(sa.delete(webhook_processing.WebhookEvent))
            db.session.execute(sa.text("DELETE FROM outbox"))
            db.session.commit()
    assert first[1] == webhook_processing.STORED
    assert again == (first[0], webhook_processing.DUPLICATE)
    assert count == 1
