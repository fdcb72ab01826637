"""The data download's ``messages_sent`` lists the account's own mails (review: a password
reset, "You already have a Clinic Portal account", the welcome and the invitation were
queued by address only, so ``notify.queries.sent_to``, which reads by user id, left every
one out): each mail now records whom it was for. Subject, status and dates, never the body
(a reset link is a key to the account). Closing the account handles them as it handles
every other mail to the patient."""

import json
import re

import sqlalchemy as sa

from portal.accounts import service
from portal.accounts.models import User
from portal.extensions import db
from portal.notify.models import Delivery, MailMessage
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.test_account_closure import _close


def _download(client):
    answer = client.get("/me/account/data.json")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_data_download_lists_the_account_mails_sent(app, client, login, world):
    with app.app_context():
        service.request_password_reset(world.patient.email)
        db.session.commit()
    login(world.patient)
    document = json.loads(client.get("/me/account/data.json").get_data(as_text=True))
    assert document["messages_sent"] != []


def test_each_account_mail_is_listed_without_its_body(app, client, login, world):
    with app.app_context():
        service.request_password_reset(world.patient.email)
        service.sign_up("Priya Sharma", world.patient.email, "9812345678", "another one 2027")
        db.session.commit()
        admin = db.session.get(User, world.admin.id)
        walk_in = service.add_patient(admin, "Walk In", "walk.in@example.com", "9800000077")
        walk_in_id = walk_in.id
        db.session.commit()
        reset_text = db.session.scalar(
            sa.select(MailMessage.text).where(
                MailMessage.subject == "Reset your Clinic Portal password"
            )
        )
    link = re.search(r"https?://\S+", reset_text).group(0)
    login(world.patient)
    raw = _download(client)
    sent = json.loads(raw)["messages_sent"]
    assert [(m["kind"], m["channel"], m["subject"]) for m in sent] == [
        ("password_reset", "email", "Reset your Clinic Portal password"),
        ("existing_account", "email", "You already have a Clinic Portal account"),
    ]
    assert all(m["status"] in ("queued", "sent") and m["queued_at"] for m in sent)
    assert link not in raw and link.rsplit("/", 1)[-1] not in raw  # the reset token
    assert "Someone (hopefully you)" not in raw
    # Nobody else's: the walk-in's welcome is theirs.
    with app.app_context():
        kinds = db.session.scalars(
            sa.select(Delivery.kind).where(Delivery.user_id == walk_in_id)
        ).all()
    assert kinds == ["welcome"]


def test_closing_the_account_handles_its_account_mails_as_any_mail(app, client, login, world):
    with app.app_context():
        service.request_password_reset(world.patient.email)
        db.session.commit()
        (mail_id,) = db.session.scalars(sa.select(MailMessage.id)).all()
    login(world.patient)
    assert _close(client).status_code == 303
    with app.app_context():
        user = db.session.get(User, world.patient.id)
        mail = db.session.get(MailMessage, mail_id)
        (delivery,) = db.session.scalars(
            sa.select(Delivery).where(Delivery.mail_id == mail_id)
        ).all()
        assert mail.to == user.email == f"closed-{user.id}@closed.invalid"
        assert mail.text == "" and mail.subject == "Reset your Clinic Portal password"
        assert delivery.user_id == user.id and delivery.recipient == user.email
        assert delivery.kind == "password_reset"
    # The address registers a new account, which sees none of the old one's mails.
    client.post(
        "/auth/register",
        data={
            "name": "Priya Sharma",
            "email": world.patient.email,
            "phone": "98123 45678",
            "password": "a fresh start 2027",
            "confirm": "a fresh start 2027",
        },
    )
    client.post(
        "/auth/login", data={"email": world.patient.email, "password": "a fresh start 2027"}
    )
    assert json.loads(_download(client))["messages_sent"] == []
