"""Where the closed patient's name and address could still sit after closing (review), and
what the closure now does about each (docs/privacy.md)."""

import json
from datetime import date

import pytest
import sqlalchemy as sa

from portal.accounts import dependents
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking import prices
from portal.extensions import db
from portal.notify.models import Delivery, MailMessage, Notification
from portal.transactions.models import MoneyMovement
from portal.wallet import adjustments
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.test_account_closure import _close, _completed_visit, text


def _adjust(app, world, direction, amount, note, reason):
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        return adjustments.create_adjustment(
            admin, world.patient.id, direction, amount, note, reason
        ).id


def _names(app, patient_id):
    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(MoneyMovement.party_name).where(MoneyMovement.patient_id == patient_id)
            )
        )


def test_the_transactions_console_shows_the_closed_name_even_after_a_rebuild(
    app, client, login, world
):
    """Review: the wallet pay-out the docs prescribe before closing (a debit adjustment)
    and the credit before it are rows whose party_name was the name at the time, never
    erased: the console (its CSV and its name search too) still showed "Priya Sharma".
    The closure renames them; a rebuild, of the rows as they are or of an empty table,
    does not bring the old name back."""
    _adjust(app, world, "credit", 50_000, "goodwill credit after the missed visit", "Goodwill")
    _adjust(app, world, "debit", 50_000, "wallet paid out in cash at the desk, R-17", "Paid out")
    assert _names(app, world.patient.id) == {"Priya Sharma"}
    login(world.patient)
    assert _close(client).status_code == 303
    closed = f"Closed account #{world.patient.id}"
    assert _names(app, world.patient.id) == {closed}
    login(world.admin)
    page = client.get("/admin/transactions")
    assert page.status_code == 200 and closed in text(page) and "Priya Sharma" not in text(page)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["transactions", "rebuild"]).exit_code == 0
    assert _names(app, world.patient.id) == {closed}
    with app.app_context():
        db.session.execute(sa.delete(MoneyMovement.__table__))
        db.session.commit()
    assert runner.invoke(args=["transactions", "rebuild"]).exit_code == 0
    assert _names(app, world.patient.id) == {closed}


def _about(app, patient_id, *needles):
    """Notices to others, and every mail and text, that still hold one of ``needles``."""
    with app.app_context():
        found = []
        for n in db.session.scalars(sa.select(Notification)):
            words = (n.title or "") + (n.body or "")
            if n.user_id != patient_id and any(x in words for x in needles):
                found.append(("notice", n.user_id, n.title, n.body))
        for m in db.session.scalars(sa.select(MailMessage)):
            words = (m.subject or "") + (m.text or "") + (m.html or "")
            if any(x in words for x in needles):
                found.append(("mail", m.to, m.subject))
        for d in db.session.scalars(sa.select(Delivery)):
            if any(x in (d.text or "") for x in needles):
                found.append(("delivery", d.recipient, d.kind))
        return found


def test_what_was_sent_to_others_about_the_patient_loses_name_and_email(app, client, login, world):
    """Review: only what was sent *to* the patient was erased; what was sent *about* them
    to the doctors and admins ("New appointment: Priya Sharma", admin alerts with her
    e-mail, the mails' bodies) kept her name. Now the closed name replaces it there."""
    email = world.patient.email
    _completed_visit(app, world)
    assert _about(app, world.patient.id, "Priya")
    login(world.patient)
    assert _close(client).status_code == 303
    assert _about(app, world.patient.id, "Priya", email) == []
    with app.app_context():
        closed = f"Closed account #{world.patient.id}"
        titles = db.session.scalars(
            sa.select(Notification.title).where(Notification.title == f"New appointment: {closed}")
        ).all()
    assert titles


def _notice_texts(app, visit_id):
    """Title and body of the notices to others about the visit: its admin alert (by its
    page) and its providers' "New appointment" (by its dedupe key)."""
    from portal.booking.models import IndividualBooking

    with app.app_context():
        items = db.session.scalars(
            sa.select(IndividualBooking.id).where(IndividualBooking.master_id == visit_id)
        ).all()
        rows = db.session.scalars(
            sa.select(Notification).where(
                sa.or_(
                    Notification.link == f"/admin/visits/{visit_id}",
                    *(Notification.dedupe_key.like(f"booking-confirmed:{i}:%") for i in items),
                )
            )
        ).all()
        return sorted(f"{n.title} | {n.body}" for n in rows)


def test_another_patient_of_the_same_name_keeps_theirs(app, client, login, world):
    """The rows changed are found by the records they are about, never by the name: what
    was sent about another "Priya Sharma" is left as it was."""
    with app.app_context():
        db.session.get(User, world.other.id).name = "Priya Sharma"
        db.session.commit()
    mine = _completed_visit(app, world)
    theirs = _completed_visit(app, world, patient=world.other, hour=12)
    before = _notice_texts(app, theirs)
    assert len(before) >= 2 and all("Priya Sharma" in t for t in before), before
    login(world.patient)
    assert _close(client).status_code == 303
    assert _notice_texts(app, theirs) == before
    about_mine = _notice_texts(app, mine)
    assert about_mine and not any("Priya" in t for t in about_mine), about_mine


def test_a_closed_accounts_wallet_cannot_be_credited_but_can_be_debited(app, client, login, world):
    """Review: nothing stopped money going into a closed account's wallet afterwards (a
    goodwill credit, an admin who picked the wrong row). A credit is refused with a
    message; a debit (to record money paid out) stays allowed."""
    login(world.patient)
    assert _close(client).status_code == 303
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        try:
            adjustments.create_adjustment(
                admin, world.patient.id, "credit", 5_000, "goodwill after the missed visit", "Goodwill"
            )  # fmt: skip
        except adjustments.AdjustmentError as exc:
            assert exc.errors == {"form": adjustments.MSG_CLOSED}
        else:
            raise AssertionError("a credit to a closed account was accepted")
        assert prices.wallet_balance(world.patient.id) == 0
    # The admin's form says so (a 422 with the message, not a 500).
    login(world.admin)
    answer = client.post(
        f"/admin/wallets/{world.patient.id}",
        data={
            "direction": "credit",
            "amount": "50",
            "note": "goodwill after the missed visit",
            "public_reason": "Goodwill",
        },
    )
    assert answer.status_code == 422 and "closed their account" in text(answer)
    # A debit is not refused for the closure (only for the balance it would overdraw).
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        with pytest.raises(adjustments.AdjustmentError) as exc:
            adjustments.create_adjustment(
                admin, world.patient.id, "debit", 5_000, "paid out in cash, receipt R-18", "Paid out"
            )  # fmt: skip
        assert exc.value.errors == {"amount": adjustments.MSG_INSUFFICIENT}


def test_other_devices_are_signed_out(app, client, login, world):
    """(Sound: passes.) A second browser's session ends with the closure."""
    from tests.plugin import PASSWORD

    other = app.test_client()
    other.post("/auth/login", data={"email": world.patient.email, "password": PASSWORD})
    assert other.get("/me/").status_code == 200
    login(world.patient)
    assert _close(client).status_code == 303
    assert other.get("/me/").status_code in (302, 303)
    assert other.get("/me/account/data.json").status_code in (302, 303)


def test_the_audit_rows_about_the_account_lose_names_dates_of_birth_and_email(
    app, client, login, world
):
    """Review: the closure erased a dependent's name and date of birth from the row, but
    the ``dependent.add`` / ``dependent.update`` audit rows held both (a child's name and
    birth date), as did the account's own rows their e-mail. Now those fields read
    "[erased]"; the action, actor, object and time stay, and the closure's own row counts
    the rows redacted."""
    email = world.patient.email
    with app.app_context():
        guardian = db.session.get(User, world.patient.id)
        dependents.add_dependent(guardian, "Meera Sharma", "child", date(2019, 2, 3))
        db.session.add(
            AuditEntry(
                actor_id=world.patient.id,
                action="user.register",
                object_type="user",
                object_id=str(world.patient.id),
                after={"email": email, "role": "patient"},
            )
        )
        db.session.commit()
        before = {
            (r.id, r.action, r.actor_id, r.object_type, r.object_id, r.at)
            for r in db.session.scalars(sa.select(AuditEntry))
        }
    login(world.patient)
    assert _close(client).status_code == 303
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEntry)).all()
        about = [
            r
            for r in rows
            if (r.object_type, r.object_id) == ("user", str(world.patient.id))
            or r.object_type == "dependent"
        ]
        dumped = json.dumps([[r.before, r.after] for r in about])
        kept = {(r.id, r.action, r.actor_id, r.object_type, r.object_id, r.at) for r in rows}
        closed = next(r for r in rows if r.action == "user.closed")
        added = next(r for r in rows if r.action == "dependent.add")
    assert "Meera" not in dumped and "2019-02-03" not in dumped and email not in dumped
    assert added.after["name"] == "[erased]" and added.after["relationship"] == "child"
    assert before <= kept  # nothing deleted, nothing else changed
    assert closed.after["audit_rows_redacted"] >= 2
