"""An SMS/WhatsApp text's attempts (review F). The gateway accepted a text and the
worker's commit after it was lost (the database went away, the worker was killed): the
delivery was still "queued", the outbox's retry handed the same text to the gateway
again, and the delivery said 1 attempt. Decided (docs/decisions.md): at-least-once, as
mail: a reminder lost is worse than one received twice. Each attempt is counted on a
connection of its own before the text is handed over, so the count is true whatever the
job's transaction does, and every attempt carries the delivery's stable reference, by
which a gateway that takes a client reference drops the repeat."""

import logging
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.db import utcnow
from portal.extensions import db
from portal.notify import channels
from portal.notify.models import Delivery


class CountingSender(channels.TextSender):
    """A gateway that accepts every text; ``handed`` is every text it was given."""

    handed = []

    def send(self, to, text, *, reference):
        CountingSender.handed.append((to, text, reference))
        return f"gw-{len(CountingSender.handed)}"


def test_a_text_whose_commit_was_lost_goes_again_with_the_same_reference_both_attempts_counted(
    world, app, monkeypatch
):
    CountingSender.handed = []
    app.config["NOTIFY_SENDERS"] = {"sms": CountingSender}
    real_mark_sent = channels.mark_sent
    lost = {"n": 0}

    def commit_lost_once(delivery, *args, **kwargs):
        if lost["n"] == 0:
            lost["n"] += 1
            # The gateway said "accepted"; the worker's transaction never commits.
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return real_mark_sent(delivery, *args, **kwargs)

    monkeypatch.setattr(channels, "mark_sent", commit_lost_once)
    try:
        delivery = channels.queue_text("sms", "+919800000000", "Your reminder")
        db.session.commit()  # the job runs (inline): the gateway accepts, the commit is lost
        assert len(CountingSender.handed) == 1
        db.session.expire_all()
        row = db.session.get(Delivery, delivery.id)
        assert (row.status, row.attempts) == ("queued", 1)  # the attempt is on record
        with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
            jobs.sweep_outbox()  # the outbox's retry
        db.session.expire_all()
        row = db.session.get(Delivery, delivery.id)
        # At least once: handed over again, with the same reference as the first time.
        reference = f"delivery-{delivery.id}"
        assert CountingSender.handed == [("+919800000000", "Your reminder", reference)] * 2
        assert (row.status, row.attempts, row.provider_ref) == ("sent", 2, "gw-2")
    finally:
        app.config.pop("NOTIFY_SENDERS", None)


def test_the_logging_sender_logs_the_reference(world, caplog):
    with caplog.at_level(logging.WARNING, logger="portal.notify.text"):
        delivery = channels.queue_text("sms", "+919800000000", "Hi")
        db.session.commit()
    assert f"reference=delivery-{delivery.id}" in caplog.text
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).attempts == 1
