"""A closure and the names a family had before it (docs/privacy.md, closing an account):
a family member removed before the closure, a child renamed after a visit, a patient
whose name changed after one. The audit rows about each dependent the guardian ever had
lose name and date of birth, and what was sent to others loses every name they were sent
under, not only the names on the list at the closure."""

import json
from datetime import date

import pytest
import sqlalchemy as sa

from portal.accounts import dependents, service
from portal.accounts.models import Dependent, User
from portal.audit.models import AuditEntry
from portal.booking.models import MasterBooking
from portal.db import unit_of_work
from portal.extensions import db
from portal.payouts import completion
from portal.privacy import former_names
from tests.booking.factories import build_world
from tests.web.booking.conftest import world  # noqa: F401
from tests.web.booking.helpers import hold, slot
from tests.web.test_account_closure import _close, _paid
from tests.web.test_closure_erasure import _about


def _dependent_rows(app):
    with app.app_context():
        rows = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.object_type == "dependent")
        ).all()
        return json.dumps([[r.action, r.before, r.after] for r in rows], ensure_ascii=False)


def test_a_family_member_removed_before_the_closure_keeps_no_name_in_the_audit_log(
    app, client, login, world
):
    """Review: the guardian added a child and removed her again (no visits), then closed
    the account; the redaction took the dependents still on the list only, so the removed
    child's ``dependent.add`` (after) and ``dependent.remove`` (before) rows kept her name
    and date of birth for good."""
    login(world.patient)
    added = client.post(
        "/me/dependents",
        data={"name": "Meera Sharma", "relationship": "child", "date_of_birth": "2019-02-03"},
    )
    assert added.status_code == 303
    with app.app_context():
        meera = db.session.scalars(
            sa.select(AuditEntry.object_id).where(AuditEntry.action == "dependent.add")
        ).one()
    assert client.post(f"/me/dependents/{meera}/delete").status_code == 303
    assert _close(client).status_code == 303
    dumped = _dependent_rows(app)
    assert "Meera" not in dumped and "2019-02-03" not in dumped, dumped
    assert '"relationship": "child"' in dumped  # the rest of each row stays


def test_rows_written_before_the_guardian_was_recorded_are_found_by_their_actor(
    app, client, login, world
):
    """Rows from before ``guardian_id`` was recorded in them: an administrator added the
    child at the desk, the guardian removed her. The guardian's own row names the
    dependent's id, and through it the administrator's row is redacted too. Another
    family's removed child keeps hers (the closure is about this family only)."""
    with app.app_context():
        for actor, action, obj, before, after in (
            (world.admin.id, "dependent.add", 9001, None, {"name": "Diya Sharma"}),
            (world.patient.id, "dependent.remove", 9001, {"name": "Diya Sharma"}, None),
            (world.other.id, "dependent.add", 9002, None, {"name": "Kavya Other"}),
            (world.other.id, "dependent.remove", 9002, {"name": "Kavya Other"}, None),
        ):
            for facts in (before, after):
                if facts:
                    facts.update(relationship="child", date_of_birth="2020-02-02")
            db.session.add(
                AuditEntry(
                    actor_id=actor,
                    action=action,
                    object_type="dependent",
                    object_id=str(obj),
                    before=before,
                    after=after,
                )
            )
        db.session.commit()
    login(world.patient)
    assert _close(client).status_code == 303
    dumped = _dependent_rows(app)
    assert "Diya" not in dumped, dumped
    assert dumped.count("Kavya Other") == 2 and "2020-02-02" in dumped


def test_an_administrators_row_now_names_the_guardian(app, world):
    """A dependent's audit rows record whose family it is, whoever wrote them: a child an
    administrator added at the desk and the guardian removed later is found by it."""
    with app.app_context():
        guardian = db.session.get(User, world.patient.id)
        admin = db.session.get(User, world.admin.id)
        child = dependents.add_dependent(guardian, "Diya Sharma", "child", None, actor=admin)
        dependents.remove_dependent(guardian, child.id)
        rows = db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.object_type == "dependent", AuditEntry.object_id == str(child.id))
            .order_by(AuditEntry.id)
        ).all()
        assert [(r.actor_id, (r.after or r.before)["guardian_id"]) for r in rows] == [
            (world.admin.id, world.patient.id),
            (world.patient.id, world.patient.id),
        ]
        from portal.accounts.queries import dependent_ids_ever

        assert child.id in dependent_ids_ever(world.patient.id)
        assert child.id not in dependent_ids_ever(world.other.id)


def _dependents_completed_visit(app, world, hour=10):
    visit_id, item_id = hold(app, world, start=slot(world.day, hour), dependent=world.child)
    _paid(app, world, visit_id)
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        start = slot(world.day, hour)
        completion.start_booking(admin, item_id, now=start)
        completion.complete_booking(admin, item_id, now=start)
    return visit_id


def test_a_child_renamed_after_a_visit_keeps_no_old_name_in_what_others_were_sent(
    app, client, login, world
):
    """Review: the doctor's "New appointment: Aarav" (notice and mail) and the admins'
    alert name the child as she was called then. The guardian renamed her ("Aarav" →
    "Vihaan Sharma"), then closed the account; only the names at the closure were
    replaced, so the old one stayed in every notice, mail and text sent to others. The
    invoice keeps the name it was issued for (docs/privacy.md, names on documents)."""
    visit_id = _dependents_completed_visit(app, world)
    assert _about(app, world.patient.id, "Aarav")  # the doctor and the admins were told
    login(world.patient)
    renamed = client.post(
        f"/me/dependents/{world.child}/edit",
        data={"name": "Vihaan Sharma", "relationship": "child", "date_of_birth": "2018-05-01"},
    )
    assert renamed.status_code == 303
    assert _close(client).status_code == 303
    left = _about(app, world.patient.id, "Aarav", "Vihaan")
    assert left == [], left
    with app.app_context():
        assert _about(app, world.patient.id, f"Family member #{world.child}")
        assert db.session.get(MasterBooking, visit_id).billed_for_name == "Aarav"


def test_a_patient_renamed_after_a_visit_keeps_no_old_name_in_what_others_were_sent(
    app, client, login, world
):
    """The patient's own name as their invoice was issued (``billed_to_name``) is looked
    for as well: a name changed after the visit (no page changes it today; an older row
    may differ) is replaced by the closed name too."""
    hold_id, item_id = hold(app, world, start=slot(world.day, 11))
    _paid(app, world, hold_id)
    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        completion.start_booking(admin, item_id, now=slot(world.day, 11))
        completion.complete_booking(admin, item_id, now=slot(world.day, 11))
        db.session.get(User, world.patient.id).name = "Priya Verma"
        db.session.commit()
    assert _about(app, world.patient.id, "Priya Sharma")
    login(world.patient)
    assert _close(client).status_code == 303
    assert _about(app, world.patient.id, "Priya") == []


def test_the_names_now_come_first_and_each_old_name_once(app, world):
    """``former_names.replacements``: a child's every recorded name goes to her
    placeholder; a name a sibling bears now goes to the sibling's (the one it names now);
    an old name is replaced once, never by two placeholders; another family's names are
    not read."""
    with app.app_context():
        guardian = db.session.get(User, world.patient.id)
        meera = dependents.add_dependent(guardian, "Meera", "child", date(2019, 2, 3))
        dependents.update_dependent(guardian, meera.id, "Meera Sharma", "child", None)
        dependents.update_dependent(guardian, world.child, "Meera", "child", None)
        dependents.update_dependent(guardian, world.child, "Aarav Sharma", "child", None)
        other = db.session.get(User, world.other.id)
        dependents.add_dependent(other, "Kavya", "child", None)
        pairs = former_names.replacements(db.session.get(User, world.patient.id))
        assert db.session.get(Dependent, meera.id).name == "Meera Sharma"
    olds = [old for old, _new in pairs]
    assert len(olds) == len(set(olds)) and "Kavya" not in olds
    found = dict(pairs)
    assert found["Meera Sharma"] == f"Family member #{meera.id}"
    assert found["Aarav Sharma"] == f"Family member #{world.child}"
    # Both were called Meera once: either placeholder, once.
    assert found["Meera"] in {f"Family member #{meera.id}", f"Family member #{world.child}"}
    assert found["Priya Sharma"] == f"Closed account #{world.patient.id}"
    assert found[world.patient.email] == f"closed-{world.patient.id}@closed.invalid"


def test_a_name_is_replaced_as_a_whole_word_only():
    """``replace_whole``: "Indira" leaves "Indiranagar Clinic" (nor "Sindira") as it
    was; a name next to punctuation, tags or the text's ends is replaced; a Devanagari
    name followed by a vowel sign is inside a longer word."""
    from portal.notify.closure import replace_whole

    pairs = [("Indira", "Family member #7")]
    assert (
        replace_whole("Indira at Indiranagar Clinic, Sindira's friend: <b>Indira</b>.", pairs)
        == "Family member #7 at Indiranagar Clinic, Sindira's friend: <b>Family member #7</b>."
    )
    assert replace_whole("इंदिरा, इंदिराजी", [("इंदिरा", "X")]) == "X, इंदिराजी"
    assert replace_whole("रमा रमाकांत", [("रमा", "X")]) == "X रमाकांत"
    assert replace_whole("a@b.in wrote to xa@b.in", [("a@b.in", "c@d.in")]) == (
        "c@d.in wrote to xa@b.in"
    )
    assert replace_whole(None, pairs) is None and replace_whole("", pairs) == ""


def test_a_childs_name_inside_the_clinics_name_leaves_the_clinics_name(app, client, login, world):
    """A child called "Indira" at "Indiranagar Clinic": the closure replaces her name in
    what the doctor and the admins were sent, and the clinic's name stays whole there."""
    with app.app_context():
        db.session.get(Dependent, world.child).name = "Indira"
        db.session.commit()
    _dependents_completed_visit(app, world)
    email = world.patient.email
    before = [f for f in _about(app, world.patient.id, "Indiranagar") if f[1] != email]
    assert before and _about(app, world.patient.id, "Indira ")
    login(world.patient)
    assert _close(client).status_code == 303
    # What the patient was sent is erased whole (step 2); what others were sent keeps it.
    assert len(_about(app, world.patient.id, "Indiranagar")) == len(before)
    assert _about(app, world.patient.id, "nagar") == _about(app, world.patient.id, "Indiranagar")
    assert _about(app, world.patient.id, "Indira ", "Indira,", "Indira<") == []


def test_a_placeholder_written_is_never_replaced_again():
    """Re-read finding: each pair was applied over the text the earlier ones had written,
    so a sibling called "Family" (#9) turned Indira's placeholder into "Family member #9
    member #10", and a child called "Closed" the patient's into "Family member #9 account
    #5". One pass: what is written is not read again."""
    from portal.notify.closure import replace_whole

    pairs = [("Indira", "Family member #10"), ("Family", "Family member #9")]
    assert replace_whole("New appointment: Indira, Family at 10:00", pairs) == (
        "New appointment: Family member #10, Family member #9 at 10:00"
    )
    pairs = [("Priya Sharma", "Closed account #5"), ("Closed", "Family member #9")]
    assert replace_whole("Priya Sharma booked; Closed too", pairs) == (
        "Closed account #5 booked; Family member #9 too"
    )
    # The longest name first at a place, whatever order the pairs come in.
    pairs = [("Priya", "A"), ("Priya Sharma", "B")]
    assert replace_whole("Priya Sharma and Priya", pairs) == "B and A"


def _closed_family():
    """A patient with a child, whose account is then closed: (world, patient, admin, the
    child's id), the users read afresh after the closure."""
    world = build_world(n_patients=1)
    patient = db.session.get(User, world.patients[0])
    child = dependents.add_dependent(patient, "Diya Sharma", "child", date(2018, 4, 1))
    with unit_of_work():
        service.close_own_account(patient)
    db.session.expire_all()
    patient = db.session.get(User, world.patients[0])
    assert patient.closed_at is not None
    return world, patient, db.session.get(User, world.admin), child.id


def _family(patient_id):
    return db.session.execute(
        sa.select(Dependent.id, Dependent.name, Dependent.date_of_birth)
        .where(Dependent.guardian_id == patient_id)
        .order_by(Dependent.id)
    ).all()


def test_a_child_cannot_be_added_to_a_closed_account(app, ctx):
    """Review rv_privacy: the admin's "add a child" page refuses a closed account before it
    calls ``add_dependent``, but the use case itself never looked: an admin whose post read
    the patient as the closure committed wrote a named child with a date of birth onto the
    erased account, where nothing erases it again. The patient's own form (a tab left open)
    goes through the same use case."""
    world, patient, admin, child_id = _closed_family()
    erased = _family(patient.id)
    assert (child_id, f"Family member #{child_id}", None) in erased
    for actor in (admin, patient):
        with pytest.raises(service.ValidationError) as refused:
            dependents.add_dependent(
                patient, "Meera Sharma", "child", date(2020, 5, 1), actor=actor
            )
        assert refused.value.errors[service.FORM].template == dependents.MSG_CLOSED
    assert _family(patient.id) == erased
    added = sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "dependent.add")
    assert db.session.scalar(added) == 1  # the child added before the closure


def test_a_closed_accounts_family_member_cannot_be_renamed_or_removed(app, ctx):
    """The same for an edit or a removal that read the family member before the closure
    committed: a rename would write a real name (and its audit row) back onto the erased
    account, a removal an audit row with the name the closure erased."""
    world, patient, admin, child_id = _closed_family()
    erased = _family(patient.id)
    audit_rows = db.session.scalar(sa.select(sa.func.count(AuditEntry.id)))
    for actor in (patient, admin):
        with pytest.raises(service.ValidationError) as refused:
            dependents.update_dependent(actor, child_id, "Diya Sharma", "child", date(2018, 4, 1))
        assert refused.value.errors[service.FORM].template == dependents.MSG_CLOSED
        with pytest.raises(service.ValidationError):
            dependents.remove_dependent(actor, child_id)
    assert _family(patient.id) == erased
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == audit_rows
