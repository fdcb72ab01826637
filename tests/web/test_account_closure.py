"""A patient's data download and closing their account (docs/privacy.md): the account
page in English and Hindi, the JSON document (their data only), the refusals while
something is still owed, the erasure, the kept financial records and a sound ledger,
signing in afterwards, registering again with the same address, the admin's list."""

import json
import re
from html import unescape

import pytest
import sqlalchemy as sa

from portal.accounts import service
from portal.accounts.models import Dependent, User
from portal.audit.models import AuditEntry
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from portal.ledger.check import verify_ledger
from portal.ledger.models import LedgerEntry, LedgerTransaction
from portal.notify.models import Delivery, MailMessage
from portal.payments.models import Payment
from portal.payouts import completion
from portal.refunds.models import Refund
from tests.booking.factories import quoted_desk_payment
from tests.i18n.untranslated import untranslated
from tests.plugin import PASSWORD, rate_limited
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.booking.helpers import credit_wallet, hold, slot

CLOSE = "/me/account/close"


def text(response):
    return response.get_data(as_text=True)


def _paid(app, world, visit_id):
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        quoted_desk_payment(admin, visit_id, f"R-{visit_id}")


def _completed_visit(app, world, patient=None, hour=10):
    """A visit paid at the desk and completed (its appointment over): nothing owed."""
    visit_id, item_id = hold(app, world, patient=patient, start=slot(world.day, hour))
    _paid(app, world, visit_id)
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        start = slot(world.day, hour)
        completion.start_booking(admin, item_id, now=start)
        completion.complete_booking(admin, item_id, now=start)
    return visit_id


def _close(client, password=PASSWORD, confirm="y"):
    data = {"current_password": password}
    if confirm:
        data["confirm"] = confirm
    return client.post(CLOSE, data=data)


def _user(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


# --- the page -------------------------------------------------------------------------


def test_the_account_page_offers_the_download_and_the_close(client, login, world):
    login(world.patient)
    page = client.get("/me/account")
    assert page.status_code == 200
    html = text(page)
    assert "Download my data" in html and 'href="/me/account/data.json"' in html
    assert "Close my account" in html and f'action="{CLOSE}#close-account"' in html
    assert 'name="csrf_token"' in html
    assert 'href="/me/account"' in text(client.get("/me/"))  # in the patient's menu


def test_the_account_page_in_hindi(client, login, world):
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    html = text(client.get("/me/account"))
    assert "मेरा डेटा डाउनलोड करें" in html and "मेरा खाता बंद करें" in html
    data = {"Priya Sharma", world.patient.email, "+919812345678", "JSON"}
    assert untranslated(html, data=data) == []


# --- the download ---------------------------------------------------------------------


def test_the_download_holds_the_patients_own_data_only(app, client, login, world):
    mine = _completed_visit(app, world)
    theirs = _completed_visit(app, world, patient=world.other, hour=12)
    credit_wallet(app, world.patient.id, 12_345)
    login(world.patient)
    answer = client.get("/me/account/data.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    document = json.loads(text(answer))
    with app.app_context():
        mine_v, theirs_v = (
            db.session.get(MasterBooking, mine),
            db.session.get(MasterBooking, theirs),
        )
        mine_number, theirs_number = mine_v.number, theirs_v.number
        total = mine_v.items[0].total
    assert document["profile"]["email"] == world.patient.email
    assert document["profile"]["name"] == "Priya Sharma"
    assert [d["name"] for d in document["dependents"]] == ["Aarav"]
    assert [v["number"] for v in document["visits"]] == [mine_number]
    (appointment,) = document["visits"][0]["appointments"]
    assert appointment["status"] == "COMPLETED"
    assert appointment["service"] == "Consultation"
    assert appointment["starts_at"].endswith("+05:30") and "T10:00:00" in appointment["starts_at"]
    assert appointment["total"] == f"{total // 100}.{total % 100:02d}"
    assert [p["receipt"] for p in document["payments"]] == [f"R-{mine}"]
    assert document["wallet"]["balance"] == "123.45"
    assert document["wallet"]["transactions"][-1]["change"] == "123.45"
    raw = text(answer)
    assert theirs_number not in raw and "Other Patient" not in raw
    assert world.other.email not in raw and f"R-{theirs}" not in raw
    # An admin's or another patient's session gets no such file.
    client.post("/auth/logout")
    login(world.other)
    other_doc = json.loads(text(client.get("/me/account/data.json")))
    assert mine_number not in json.dumps(other_doc) and "Aarav" not in json.dumps(other_doc)


def test_the_download_is_rate_limited_per_patient(app, world):
    with rate_limited(app, DATA_EXPORT_RATE_LIMIT="2 per hour") as limited:
        client = limited.test_client()
        client.post("/auth/login", data={"email": world.patient.email, "password": PASSWORD})
        assert [client.get("/me/account/data.json").status_code for _ in range(2)] == [200, 200]
        third = client.get("/me/account/data.json")
        assert third.status_code == 429
        assert "downloaded your data several times" in text(third)


def test_anonymous_and_staff_get_no_download(client, login, world):
    assert client.get("/me/account/data.json").status_code in (302, 303)
    login(world.admin)
    assert client.get("/me/account/data.json").status_code == 403


# --- refusals -------------------------------------------------------------------------


def _unchanged(app, world):
    user = _user(app, world.patient.id)
    assert user.active and user.closed_at is None
    assert user.name == "Priya Sharma" and user.email == world.patient.email


def test_refused_while_an_appointment_is_ahead(app, client, login, world):
    visit_id, _ = hold(app, world)
    _paid(app, world, visit_id)
    login(world.patient)
    answer = _close(client)
    assert answer.status_code == 422
    assert "booked or under way" in text(answer) and "Cancel the" in text(answer)
    _unchanged(app, world)


def test_refused_while_a_visit_waits_for_payment(app, client, login, world):
    hold(app, world)
    login(world.patient)
    answer = _close(client)
    assert answer.status_code == 422
    assert "waiting for payment" in text(answer)
    _unchanged(app, world)


def _visit_numbers(app, *visit_ids):
    with app.app_context():
        return [db.session.get(MasterBooking, v).number for v in visit_ids]


def test_one_visit_is_said_in_the_singular_two_in_the_plural(app, client, login, world):
    # Review rev4: one held visit read "Visits V000001 are waiting for payment. Open each
    # one …"; one booked visit "(visits V000002)".
    (held,) = _visit_numbers(app, hold(app, world, start=slot(world.day, 10))[0])
    paid = hold(app, world, start=slot(world.day, 12))[0]
    _paid(app, world, paid)
    (booked,) = _visit_numbers(app, paid)
    login(world.patient)
    html = unescape(text(_close(client)))
    assert f"Visit {held} is waiting for payment. Open it and cancel it" in html
    assert f"(visit {booked}). Cancel the ones ahead from the visit's page" in html
    client.post("/language", data={"language": "hi", "next": "/"})
    html = unescape(text(_close(client)))
    assert f"विज़िट {held} भुगतान की प्रतीक्षा में है।" in html
    assert f"(विज़िट {booked})। पहले आने वाले अपॉइंटमेंट विज़िट के पेज से" in html


def test_two_visits_are_said_in_the_plural(app, client, login, world):
    held = [hold(app, world, start=slot(world.day, h))[0] for h in (10, 12)]
    paid = [hold(app, world, start=slot(world.day, h))[0] for h in (14, 16)]
    for visit_id in paid:
        _paid(app, world, visit_id)
    held, paid = _visit_numbers(app, *held), _visit_numbers(app, *paid)
    login(world.patient)
    html = unescape(text(_close(client)))
    assert f"Visits {', '.join(held)} are waiting for payment. Open each one" in html
    assert f"(visits {', '.join(paid)}). Cancel the ones ahead from each visit's page" in html


def test_refused_with_money_in_the_wallet(app, client, login, world):
    credit_wallet(app, world.patient.id, 50_000)
    login(world.patient)
    answer = _close(client)
    assert answer.status_code == 422
    assert "Your wallet holds ₹500" in text(answer) and "Ask the clinic" in text(answer)
    _unchanged(app, world)


def test_refused_while_a_refund_is_in_flight(app, client, login, world):
    visit_id = _completed_visit(app, world)
    with app.app_context():
        item = db.session.scalar(
            sa.select(IndividualBooking).where(IndividualBooking.master_id == visit_id)
        )
        db.session.add(
            Refund(
                booking_id=item.id,
                visit_id=visit_id,
                patient_id=world.patient.id,
                amount=100,
                destination="GATEWAY",
                razorpay_payment_id="pay_test_inflight",
                idempotency_key=f"test-{visit_id}",
                status="PENDING",
            )
        )
        db.session.commit()
    login(world.patient)
    answer = _close(client)
    assert answer.status_code == 422 and "refund to you is not finished" in text(answer)
    _unchanged(app, world)


def test_refused_in_hindi(app, client, login, world):
    credit_wallet(app, world.patient.id, 50_000)
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    answer = _close(client)
    assert answer.status_code == 422
    assert "आपके वॉलेट में ₹500" in text(answer)


def test_a_wrong_password_or_no_confirmation_changes_nothing(app, client, login, world):
    login(world.patient)
    wrong = _close(client, password="not-my-password-at-all")
    assert wrong.status_code == 422 and "Your current password is incorrect." in text(wrong)
    assert _user(app, world.patient.id).failed_logins == 1  # counts toward the lockout
    unticked = _close(client, confirm=None)
    assert unticked.status_code == 422 and "Tick the box" in text(unticked)
    _unchanged(app, world)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"current_password": "\x00" * 5, "confirm": "y"},
        {"current_password": "x" * 10_000, "confirm": "y"},
        {"current_password": PASSWORD, "confirm": "\x00"},
        {"current_password": ["a", "b"], "confirm": "y"},
    ],
)
def test_bad_input_is_a_message_never_a_500(app, client, login, world, data):
    login(world.patient)
    answer = client.post(CLOSE, data=data)
    assert answer.status_code == 422
    _unchanged(app, world)


def test_closing_needs_a_csrf_token(app, client, login, world, monkeypatch):
    login(world.patient)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    answer = client.post(CLOSE, data={"current_password": PASSWORD, "confirm": "y"})
    assert answer.status_code == 400
    _unchanged(app, world)


# --- closing --------------------------------------------------------------------------


def _ledger_rows(app):
    with app.app_context():
        return (
            db.session.scalar(sa.select(sa.func.count(LedgerTransaction.id))),
            db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
        )


def test_closing_erases_the_person_and_keeps_the_records(app, client, login, world):
    visit_id = _completed_visit(app, world)
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        kept_visit = (visit.number, visit.invoice_no, visit.billed_to_name, visit.status)
        kept_payments = [(p.id, p.amount, p.status) for p in visit.payments]
        # A mail and a text still waiting to go to them.
        mail = MailMessage(to=world.patient.email, subject="Hello", text="Priya, hello")
        db.session.add(mail)
        db.session.flush()
        db.session.add_all(
            [
                Delivery(
                    user_id=world.patient.id, channel="email", recipient=world.patient.email,
                    kind="test", mail_id=mail.id,
                ),
                Delivery(
                    user_id=world.patient.id, channel="sms", recipient="+919812345678",
                    kind="test", text="Priya, your visit",
                ),
            ]
        )  # fmt: skip
        db.session.commit()
        mail_id = mail.id
    ledger_before = _ledger_rows(app)
    login(world.patient)
    answer = _close(client)
    assert answer.status_code == 303 and answer.location == "/auth/closed"
    assert "Your account is closed" in text(client.get(answer.location))
    # Signed out: this browser's session ended with the account.
    assert client.get("/me/").status_code in (302, 303)

    user = _user(app, world.patient.id)
    assert not user.active and user.closed_at is not None
    assert user.name == f"Closed account #{user.id}"
    assert user.email == f"closed-{user.id}@closed.invalid"
    assert user.phone is None and user.password_hash is None
    with app.app_context():
        child = db.session.get(Dependent, world.child)
        assert child.name == f"Family member #{child.id}" and child.date_of_birth is None
        assert child.name_key == f"family member #{child.id}"  # the folded name goes too
        visit = db.session.get(MasterBooking, visit_id)
        # Financial records as they were; the issued invoice keeps its name.
        assert (visit.number, visit.invoice_no, visit.billed_to_name, visit.status) == kept_visit
        assert visit.billed_to_name == "Priya Sharma"
        assert [(p.id, p.amount, p.status) for p in visit.payments] == kept_payments
        assert db.session.scalar(
            sa.select(sa.func.count(Payment.id)).where(Payment.master_id == visit_id)
        ) == len(kept_payments)
        assert verify_ledger() == []
        # Nothing more goes to them; the copies lost their address and words.
        mails = db.session.scalars(sa.select(MailMessage)).all()
        assert all(m.to != world.patient.email for m in mails)
        assert db.session.get(MailMessage, mail_id).status == "withdrawn"
        deliveries = db.session.scalars(
            sa.select(Delivery).where(Delivery.user_id == world.patient.id)
        ).all()
        assert {d.status for d in deliveries if d.kind == "test"} == {"withdrawn"}
        assert all(d.recipient in (user.email, str(user.id)) and d.text is None for d in deliveries)
        # One audit row says so, without what was erased.
        closed = db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "user.closed", AuditEntry.object_id == str(user.id)
            )
        ).all()
        assert len(closed) == 1
        dumped = json.dumps([closed[0].before, closed[0].after])
        assert world.patient.email not in dumped and "Priya" not in dumped
    assert _ledger_rows(app) == ledger_before


def test_old_credentials_fail_like_an_unknown_account_and_the_address_registers_again(
    app, client, login, world
):
    login(world.patient)
    assert _close(client).status_code == 303
    unknown = client.post(
        "/auth/login", data={"email": "nobody-here@example.com", "password": PASSWORD}
    )
    old = client.post("/auth/login", data={"email": world.patient.email, "password": PASSWORD})
    assert old.status_code == unknown.status_code == 422
    # The CSRF token is signed anew each second (docs/security.md): not compared.
    strip = re.compile(r'name="csrf_token"[^>]*>|value="[^"]*"|"X-CSRFToken": "[^"]*"')
    assert strip.sub("", text(old)) == strip.sub("", text(unknown))
    with app.app_context():
        with pytest.raises(service.ValidationError) as refused:
            service.authenticate(world.patient.email, PASSWORD)
        assert refused.value.errors[service.FORM] == service.BAD_LOGIN
    registered = client.post(
        "/auth/register",
        data={
            "name": "Priya Sharma",
            "email": world.patient.email,
            "phone": "98123 45678",
            "password": "a fresh start 2027",
            "confirm": "a fresh start 2027",
        },
    )
    assert registered.status_code == 303
    with app.app_context():
        again = service.authenticate(world.patient.email, "a fresh start 2027")
        assert again.id != world.patient.id and again.active


def test_admins_see_the_account_closed_and_cannot_reactivate_it(app, client, login, world):
    login(world.patient)
    assert _close(client).status_code == 303
    login(world.admin)
    html = text(client.get("/admin/users"))
    row = re.search(rf'<tr id="user-{world.patient.id}">(.*?)</tr>', html, re.S).group(1)
    assert "Closed" in row and f"Closed account #{world.patient.id}" in row
    assert "Reactivate" not in row
    client.post(f"/admin/users/{world.patient.id}/reactivate")
    assert not _user(app, world.patient.id).active
    assert "cannot be reactivated" in text(client.get("/admin/users"))


def test_a_close_that_finds_the_account_gone_signs_out_without_a_500(
    client, login, world, monkeypatch
):
    """The same form sent twice at once: the second finds the account closed by the first
    (tests/accounts/test_accounts_postgres.py); its page signs the browser out."""
    from portal.privacy import closure

    def gone(*args):
        raise service.NotFound("user")

    login(world.patient)
    monkeypatch.setattr(closure, "close_account", gone)
    answer = _close(client)
    assert answer.status_code == 303 and answer.location.startswith("/auth/login")
    assert client.get("/me/").status_code in (302, 303)


def test_the_wrong_password_that_locks_the_account_signs_out(app, client, login, world):
    """The close form's password counts as the password change's does: the guess that
    locks the account ends its sessions, this one too (docs/security.md)."""
    login(world.patient)
    with app.app_context():
        db.session.get(User, world.patient.id).failed_logins = (
            app.config["LOGIN_LOCKOUT_THRESHOLD"] - 1
        )
        db.session.commit()
    answer = _close(client, password="not-my-password-at-all")
    assert answer.status_code == 303 and answer.location.startswith("/auth/login")
    assert "signed out" in text(client.get(answer.location))
    assert client.get("/me/").status_code in (302, 303)
    _unchanged(app, world)
