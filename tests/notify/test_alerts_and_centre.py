"""Admin alerts with priorities, notify_user's channels, and the SMS sender interface."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.db import utcnow
from portal.extensions import db
from portal.notify import alerts, channels
from portal.notify.center import mark_all_read, mark_read, notify_user, unread_count
from portal.notify.models import Delivery, MailMessage, Notification


def _notices(kind=None):
    query = sa.select(Notification).order_by(Notification.id)
    if kind:
        query = query.where(Notification.kind == kind)
    return db.session.scalars(query).all()


@pytest.mark.parametrize(
    "kind, priority",
    [
        ("NEW_BOOKING", "MEDIUM"),
        ("PAYMENT_FAILED", "HIGH"),
        ("CANCELLATION", "MEDIUM"),
        ("PAYOUT_FAILED", "HIGH"),
        ("RECONCILIATION_DISCREPANCY", "HIGH"),
        ("ADJUSTMENT_PENDING_APPROVAL", "MEDIUM"),
        ("payout_failed", "HIGH"),
        ("reconciliation.discrepancy", "HIGH"),
    ],
)
def test_alert_priority_follows_its_kind(world, kind, priority):
    notices = alerts.raise_alert(kind, "Title", "Body")
    db.session.commit()
    assert {n.user_id for n in notices} == {world.admin, world.admin2}
    assert {n.priority for n in notices} == {priority}
    mails = db.session.scalars(sa.select(MailMessage)).all()
    # HIGH alerts are mailed to every admin; the others stay in the app.
    assert len(mails) == (2 if priority == "HIGH" else 0)
    if mails:
        assert {m.subject for m in mails} == {"[HIGH] Title"}  # every mail, in any order


def test_an_in_app_alert_costs_the_same_for_any_number_of_admins(world):
    """Every admin's notice in one INSERT and their deliveries in another (after the one
    read of the admins), each notice in its reader's language: a clinic with more admins
    does not make every booking's confirmation job longer."""
    from flask_babel import lazy_gettext

    from portal.accounts.models import User
    from tests.querycount import counted_queries

    title = lazy_gettext("Cancelled: %(what)s", what="X")
    with counted_queries() as two:
        assert len(alerts.raise_alert("NEW_BOOKING", title, "B", dedupe_key="v:1")) == 2
    third = User(email="admin3@example.com", name="Admin Three", role="admin", language="hi")
    db.session.add(third)
    db.session.flush()
    with counted_queries() as three:
        notices = alerts.raise_alert("NEW_BOOKING", title, "B", dedupe_key="v:2")
    assert len(two) == len(three) == 3, [s.split("\n")[0][:80] for s in three]
    # One INSERT for the three notices and one for their deliveries, each with three rows
    # (a plain executemany would count once here but be three INSERTs on the server).
    for statement in three[1:]:
        assert statement.startswith("INSERT") and statement.count("), (") == 2, statement
    assert [n.user_id for n in notices] == sorted([world.admin, world.admin2, third.id])
    assert {n.user_id: n.title for n in notices}[third.id] == "रद्द: X"
    assert {n.title for n in notices if n.user_id != third.id} == {"Cancelled: X"}
    db.session.commit()
    sent = db.session.execute(
        sa.select(Delivery.notification_id, Delivery.user_id, Delivery.channel, Delivery.status)
        .where(Delivery.notification_id.in_([n.id for n in notices]))
        .order_by(Delivery.user_id)
    ).all()
    assert [tuple(row) for row in sent] == [(n.id, n.user_id, "in_app", "sent") for n in notices]
    # Told already under that key: nobody is told again, nothing more is written.
    assert alerts.raise_alert("NEW_BOOKING", title, "B", dedupe_key="v:2") == []
    assert len(_notices("alert.NEW_BOOKING")) == 5


def test_alert_priority_can_be_given(world):
    [n, _] = alerts.raise_alert("SOMETHING_ELSE", "T", "B", priority="LOW")
    assert n.priority == "LOW"
    [n, _] = alerts.raise_alert("SOMETHING_ELSE", "T", "B", severity="high")
    assert n.priority == "HIGH"


def test_an_unknown_priority_is_refused_before_anything_is_written(world):
    from portal.accounts.models import User
    from portal.notify.center import notify_in_app

    with pytest.raises(ValueError, match="unknown priority 'URGENT'"):
        alerts.raise_alert("SOMETHING_ELSE", "T", "B", priority="urgent")
    with pytest.raises(ValueError, match="unknown priority"):
        notify_user(world.admin, "x", "T", "B", priority="URGENT")
    admins = db.session.scalars(sa.select(User).where(User.id == world.admin)).all()
    with pytest.raises(ValueError, match="unknown priority"):
        notify_in_app(admins, "x", "T", "B", priority="URGENT")
    # Even with no admin to mail, the alert's priority is checked (no notice would).
    for user in db.session.scalars(sa.select(User).where(User.role == "admin")):
        user.active = False
    with pytest.raises(ValueError, match="unknown priority"):
        alerts.raise_alert("SOMETHING_ELSE", "T", "B", priority="URGENT", email=True)
    assert _notices() == [] and db.session.scalars(sa.select(Delivery)).all() == []


def test_alert_with_dedupe_key_reaches_each_admin_once(world):
    assert len(alerts.raise_alert("PAYOUT_FAILED", "T", "B", dedupe_key="payout:7")) == 2
    db.session.commit()
    assert alerts.raise_alert("PAYOUT_FAILED", "T", "B", dedupe_key="payout:7") == []
    assert len(_notices("alert.PAYOUT_FAILED")) == 2


def test_deactivated_admins_get_no_alerts(world):
    from portal.accounts.models import User

    db.session.get(User, world.admin2).active = False
    assert [n.user_id for n in alerts.raise_alert("NEW_BOOKING", "T", "B")] == [world.admin]


def test_payout_engine_alert_reaches_the_admins(world):
    """The payouts capability calls raise_alert by signature; its alert arrives HIGH."""
    from portal.payouts.alerts import raise_payout_alert

    result = raise_payout_alert("HIGH", "Payout failed 3 times", "Bank rejected the transfer")
    db.session.commit()
    assert len(result) == 2
    assert {(n.kind, n.priority, n.body) for n in _notices()} == {
        ("alert.PAYOUT_FAILED", "HIGH", "Bank rejected the transfer")
    }


def test_notify_user_writes_in_app_mail_and_sms_deliveries(world):
    notice = notify_user(world.patient, "test", "Hello", "Body", link="/me", text="sms")
    db.session.commit()
    channels_ = sorted(
        (d.channel, d.status)
        for d in db.session.scalars(
            sa.select(Delivery).where(Delivery.notification_id == notice.id)
        )
    )
    assert channels_ == [("email", "sent"), ("in_app", "sent"), ("sms", "sent")]
    sms = db.session.scalar(sa.select(Delivery).where(Delivery.channel == "sms"))
    assert sms.recipient == "+919812345678" and sms.provider_ref.startswith("log-")
    assert sms.text.startswith("Hello\nBody")


def test_the_in_app_delivery_is_written_whole(world):
    """Written by a statement built once (no ORM object): every column it should have, and
    a misspelt column refused instead of left NULL."""
    from portal.notify.deliveries import insert_delivery

    notice = notify_user(world.patient, "test", "Hello", "Body", email=False)
    db.session.commit()
    [row] = db.session.scalars(sa.select(Delivery).where(Delivery.notification_id == notice.id))
    assert (row.channel, row.recipient, row.kind, row.status, row.attempts) == (
        "in_app",
        str(world.patient),
        "test",
        "sent",
        1,
    )
    assert row.user_id == world.patient and None not in (row.sent_at, row.created_at)
    with pytest.raises(TypeError, match="notificaton_id"):
        insert_delivery(notificaton_id=notice.id, channel="in_app")
    # The model's defaults for what is not given, as the ORM would have applied them.
    insert_delivery(channel="sms", recipient="+919812345678", user_id=world.patient)
    db.session.commit()
    sms = db.session.scalar(sa.select(Delivery).where(Delivery.channel == "sms"))
    assert (sms.kind, sms.status, sms.attempts) == ("", "queued", 0)
    assert sms.created_at is not None and sms.updated_at == sms.created_at
    assert sms.sent_at is None
    # A mail's delivery: queued with its mail, at its mail's time (read before the commit:
    # the send job runs inline after it here).
    from portal.notify.mail import queue_mail
    from portal.notify.models import MailMessage

    mail_id = queue_mail("p@example.com", "Subject", "Text")
    mail = db.session.get(MailMessage, mail_id)
    [queued] = db.session.scalars(sa.select(Delivery).where(Delivery.mail_id == mail_id))
    assert (queued.channel, queued.status, queued.attempts) == ("email", "queued", 0)
    assert queued.created_at == queued.updated_at == mail.created_at


def test_in_app_only_when_mail_is_off(world):
    notify_user(world.patient, "test", "Quiet", "Body", email=False)
    db.session.commit()
    assert db.session.scalars(sa.select(MailMessage)).all() == []


def test_unread_count_and_marking(world):
    first = notify_user(world.patient, "a", "One", "", email=False)
    notify_user(world.patient, "a", "Two", "", email=False)
    notify_user(world.admin, "a", "Other's", "", email=False)
    db.session.commit()
    assert unread_count(world.patient) == 2
    assert mark_read(world.admin, first.id) is None  # not theirs
    assert mark_read(world.patient, first.id).read_at is not None
    assert unread_count(world.patient) == 1
    assert mark_all_read(world.patient) == 1
    assert unread_count(world.patient) == 0 and unread_count(world.admin) == 1


class FlakySender(channels.TextSender):
    calls = []
    fail_times = 1

    def send(self, to, text, *, reference):
        FlakySender.calls.append(to)
        if len(FlakySender.calls) <= FlakySender.fail_times:
            raise channels.TransientSendError("gateway timeout")
        return "msg-1"


class RefusingSender(channels.TextSender):
    def send(self, to, text, *, reference):
        raise channels.PermanentSendError("invalid number")


def test_sms_transient_failure_is_retried_and_recorded(world, app):
    FlakySender.calls = []
    app.config["NOTIFY_SENDERS"] = {"sms": FlakySender}
    try:
        delivery = channels.queue_text("sms", "+919800000000", "Hi")
        db.session.commit()
        db.session.expire_all()
        row = db.session.get(Delivery, delivery.id)
        assert (row.status, row.attempts, row.error) == (
            "retrying",
            1,
            "portal.notify.channels.TransientSendError: gateway timeout",
        )
        with time_machine.travel(utcnow() + timedelta(minutes=1), tick=False):
            assert jobs.sweep_outbox() == 1
        db.session.expire_all()
        row = db.session.get(Delivery, delivery.id)
        assert (row.status, row.attempts, row.provider_ref) == ("sent", 2, "msg-1")
        assert FlakySender.calls == ["+919800000000"] * 2
    finally:
        app.config.pop("NOTIFY_SENDERS")


def test_sms_permanent_failure_is_not_retried(world, app):
    app.config["NOTIFY_SENDERS"] = {"whatsapp": RefusingSender}
    try:
        delivery = channels.queue_text("whatsapp", "+91", "Hi")
        db.session.commit()
        db.session.expire_all()
        row = db.session.get(Delivery, delivery.id)
        assert (row.status, row.attempts) == ("failed", 1) and "invalid number" in row.error
    finally:
        app.config.pop("NOTIFY_SENDERS")


def test_the_sms_sender_is_a_setting_read_from_the_environment(tmp_path, monkeypatch):
    """Production could not choose an SMS or WhatsApp sender: NOTIFY_SENDERS was read but
    never set from the environment, so every SMS went to the log (review finding)."""
    from portal import create_app
    from portal.config import ConfigError
    from portal.notify.channels import sender_for
    from tests.conftest import _test_config

    monkeypatch.setenv("NOTIFY_SMS_SENDER", "tests.notify.test_alerts_and_centre:RefusingSender")
    app = create_app(_test_config("sqlite:///" + str(tmp_path / "s.sqlite3")))
    with app.app_context():
        assert type(sender_for("sms")).__name__ == "RefusingSender"
        assert type(sender_for("whatsapp")).__name__ == "LoggingSender"
    for wrong in ("not a class", "myclinic.smss:Msg91Sender"):  # a misspelt module too
        monkeypatch.setenv("NOTIFY_SMS_SENDER", wrong)
        with pytest.raises(ConfigError, match="NOTIFY_SMS_SENDER"):
            create_app(_test_config("sqlite:///" + str(tmp_path / "t.sqlite3")))
