"""What a doctor or lab is told when an appointment of theirs is cancelled (review finding:
the provider's notice said neither who cancelled nor anything but "Consultation with Dr Doc
1 … is cancelled." to Dr Doc 1: a patient's cancellation read as the clinic's, and the
reader was named to themself). It names the patient, says who cancelled (the patient, the
clinic, the clinic on someone's behalf, another provider of a team, or "you"), and on a
team appointment who else it is cancelled for. Through the real cancellations."""

import sqlalchemy as sa

from portal.accounts.models import User
from portal.catalog.models import Provider
from portal.extensions import db
from portal.notify.models import Notification
from tests.booking.factories import at
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    quoted_admin_cancel,
    quoted_cancel,
    quoted_provider_cancel,
)

START = at(4, 10)  # Friday 5 June 2026, 10:00 IST
WHAT = "Consultation with Patient 1 at Indiranagar Clinic, Fri 5 Jun 2026, 10:00 AM IST"


def _doctor(world, n):
    return db.session.get(User, db.session.get(Provider, world.doctors[n]).user_id)


def _booked(world, users, gateway, team=False):
    doctors = [world.doctors[0], world.doctors[1]] if team else [world.doctors[0]]
    visit = book_and_pay(
        world, users(world.patients[0]), gateway, [(world.consult, doctors, START)]
    )
    return visit.items[0]


def _cancelled(user):
    db.session.expire_all()
    (notice,) = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == user.id, Notification.kind == "booking.cancelled"
        )
    ).all()
    assert notice.title == "Cancelled: Patient 1"
    return notice.body


def test_the_patients_cancellation_says_so(world, users, gateway, clock):
    item = _booked(world, users, gateway)
    quoted_cancel(users(world.patients[0]), item.master_id, [item.id], reason="Feeling better")
    body = _cancelled(_doctor(world, 0))
    assert body == f"{WHAT} is cancelled by the patient. Reason: Feeling better."
    assert "Dr Doc 1" not in body


def test_the_clinics_cancellation_says_so(world, users, gateway, clock):
    item = _booked(world, users, gateway)
    quoted_admin_cancel(users(world.admin), item.id, "Clinic closed", mode="clinic")
    assert _cancelled(_doctor(world, 0)) == (
        f"{WHAT} is cancelled by the clinic. Reason: Clinic closed."
    )


def test_the_clinic_cancelling_for_the_patient_says_on_whose_behalf(world, users, gateway, clock):
    item = _booked(world, users, gateway)
    quoted_admin_cancel(users(world.admin), item.id, "Patient phoned", mode="patient")
    assert _cancelled(_doctor(world, 0)) == (
        f"{WHAT} is cancelled by the clinic on the patient's behalf. Reason: Patient phoned."
    )


def test_the_provider_who_cancelled_reads_you(world, users, gateway, clock):
    item = _booked(world, users, gateway)
    clock.move_to(START - hours(30))
    quoted_provider_cancel(_doctor(world, 0), item.id, "Emergency surgery")
    assert _cancelled(_doctor(world, 0)) == (f"You cancelled {WHAT}. Reason: Emergency surgery.")


def test_a_team_cancelled_by_one_doctor_tells_the_other_who_did(world, users, gateway, clock):
    """The co-doctor is told, by name of the one who cancelled; the one who did reads
    that it is cancelled for the co-doctor too. Neither is named to themself."""
    item = _booked(world, users, gateway, team=True)
    clock.move_to(START - hours(30))
    quoted_provider_cancel(_doctor(world, 0), item.id, "Called to surgery")
    assert _cancelled(_doctor(world, 0)) == (
        f"You cancelled {WHAT}. It is cancelled for Dr Doc 2 too. Reason: Called to surgery."
    )
    assert _cancelled(_doctor(world, 1)) == (
        f"{WHAT} is cancelled by Dr Doc 1. Reason: Called to surgery."
    )


def test_a_team_cancelled_by_the_clinic_names_the_others_it_is_cancelled_for(
    world, users, gateway, clock
):
    item = _booked(world, users, gateway, team=True)
    quoted_admin_cancel(users(world.admin), item.id, "Clinic closed", mode="clinic")
    assert _cancelled(_doctor(world, 0)) == (
        f"{WHAT} is cancelled by the clinic. It is cancelled for Dr Doc 2 too. "
        "Reason: Clinic closed."
    )
    assert _cancelled(_doctor(world, 1)) == (
        f"{WHAT} is cancelled by the clinic. It is cancelled for Dr Doc 1 too. "
        "Reason: Clinic closed."
    )


def test_the_clinic_cancelling_for_a_provider_of_a_team_says_for_whom(world, users, gateway, clock):
    item = _booked(world, users, gateway, team=True)
    clock.move_to(START - hours(30))
    quoted_admin_cancel(
        users(world.admin),
        item.id,
        "Doctor phoned in sick",
        mode="provider",
        penalty_provider_id=world.doctors[1],
    )
    assert _cancelled(_doctor(world, 1)) == (
        f"{WHAT} is cancelled by the clinic on your behalf. It is cancelled for Dr Doc 1 "
        "too. Reason: Doctor phoned in sick."
    )
    assert _cancelled(_doctor(world, 0)) == (
        f"{WHAT} is cancelled by the clinic on Dr Doc 2's behalf. Reason: Doctor phoned in sick."
    )


def test_the_providers_cancellation_notice_is_in_their_language(world, users, gateway, clock):
    item = _booked(world, users, gateway, team=True)
    for n in (0, 1):
        _doctor(world, n).language = "hi"
    db.session.commit()
    clock.move_to(START - hours(30))
    quoted_provider_cancel(_doctor(world, 0), item.id, "Called to surgery")
    what = "Patient 1 के साथ Consultation, Indiranagar Clinic में, शुक्र 5 जून 2026, 10:00 am IST"
    own, other = _cancelled_hi(_doctor(world, 0)), _cancelled_hi(_doctor(world, 1))
    assert own == (f"आपने {what} रद्द कर दी है। यह Dr Doc 2 के लिए भी रद्द है। कारण: Called to surgery।")
    assert other == f"{what} Dr Doc 1 द्वारा रद्द कर दी गई है। कारण: Called to surgery।"


def _cancelled_hi(user):
    db.session.expire_all()
    (notice,) = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == user.id, Notification.kind == "booking.cancelled"
        )
    ).all()
    assert notice.title == "रद्द: Patient 1"
    return notice.body


def test_who_cancelled_is_read_from_the_cancellation_row():
    """The rule from plain values: the provider who asked, else the one an administrator
    charged the penalty for, else the sole provider; unknown on a team without a penalty."""
    from types import SimpleNamespace

    from portal.notify.provider_words import Canceller, canceller_of

    asha, gopal = SimpleNamespace(id=1, user_id=11), SimpleNamespace(id=2, user_id=12)
    team = [asha, gopal]
    assert canceller_of("patient", 90, None, team) == Canceller("patient")
    assert canceller_of("admin", 99, None, team) == Canceller("patient", by_clinic=True)
    assert canceller_of("clinic", 99, None, team) == Canceller("clinic")
    assert canceller_of("provider", 12, 2, team) == Canceller("provider", gopal)
    assert canceller_of("provider", 12, None, team) == Canceller("provider", gopal)
    assert canceller_of("provider", 99, 1, team) == Canceller("provider", asha, by_clinic=True)
    assert canceller_of("provider", 99, None, [asha]) == Canceller("provider", asha, by_clinic=True)
    assert canceller_of("provider", 99, None, team) == Canceller("provider", None, by_clinic=True)


# --- the patient's own notice: read by the account holder ------------------------------

THEIRS = "Consultation with Dr Doc 1 at Indiranagar Clinic, Fri 5 Jun 2026, 10:00 AM IST"


def _patients_notice(world, users):
    db.session.expire_all()
    (notice,) = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == world.patients[0], Notification.kind == "booking.cancelled"
        )
    ).all()
    return notice


def test_the_patient_reads_their_own_cancellation_as_theirs(world, users, gateway, clock):
    """Review finding: the patient who cancelled was told "… is cancelled by the patient."
    of their own cancellation, as if someone else had. They read "You cancelled …" (the
    doctor still reads "by the patient", above), in Hindi too."""
    item = _booked(world, users, gateway)
    quoted_cancel(users(world.patients[0]), item.master_id, [item.id], reason="Feeling better")
    notice = _patients_notice(world, users)
    assert notice.title == "Cancelled: Consultation"
    assert notice.body.startswith(f"You cancelled {THEIRS}. Reason: Feeling better. ")
    assert "by the patient" not in notice.body


def test_the_patient_reads_their_own_cancellation_in_their_language(world, users, gateway, clock):
    item = _booked(world, users, gateway)
    users(world.patients[0]).language = "hi"
    db.session.commit()
    quoted_cancel(users(world.patients[0]), item.master_id, [item.id], reason="Feeling better")
    what = "Consultation, Dr Doc 1 के साथ, Indiranagar Clinic में, शुक्र 5 जून 2026, 10:00 am IST"
    body = _patients_notice(world, users).body
    assert body.startswith(f"आपने {what} रद्द कर दी है। कारण: Feeling better।"), body
    assert "मरीज़ द्वारा" not in body


def test_the_clinic_cancelling_for_the_patient_tells_the_patient_on_their_behalf(
    world, users, gateway, clock
):
    """An administrator cancelling for the patient (the patient phoned): the patient read
    "… is cancelled by the clinic.", as if the clinic had called it off; the doctor reads
    "on the patient's behalf", the patient "on your behalf"."""
    item = _booked(world, users, gateway)
    quoted_admin_cancel(users(world.admin), item.id, "Patient phoned", mode="patient")
    body = _patients_notice(world, users).body
    assert body.startswith(
        f"{THEIRS} is cancelled by the clinic on your behalf. Reason: Patient phoned."
    ), body


# --- a provider's cancellation without a penalty: whom it was for is still recorded -----


def _audited_cancel(item_id):
    from portal.audit.models import AuditEntry

    (entry,) = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "booking.cancel", AuditEntry.object_id == str(item_id)
        )
    ).all()
    return entry.after


def test_a_team_cancelled_for_one_doctor_without_a_penalty_still_says_for_whom(
    app, world, users, gateway, clock
):
    """Review finding: with the policy's provider penalty at ₹0, an administrator cancelling
    a team appointment for Dr Doc 2 (the form asks which provider cancelled) recorded no
    provider: ``penalty_provider_id`` was kept only with a penalty. The doctors were told
    "… is cancelled by the clinic on Dr Doc 2's behalf" with a penalty, but only "by the
    provider." without one, nor did the audit row say whom. Now the provider is recorded
    whatever the penalty: the same words as with one, and the audit row names them (no
    penalty notice for ₹0)."""
    from portal.domain.policy import DEFAULT_POLICY

    item = _booked(world, users, gateway, team=True)
    clock.move_to(START - hours(30))
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(provider_cancellation_penalty=0)
    try:
        done = quoted_admin_cancel(
            users(world.admin),
            item.id,
            "Doctor phoned in sick",
            mode="provider",
            penalty_provider_id=world.doctors[1],
        )
    finally:
        app.config["POLICY"] = saved
    assert (done.penalty, done.penalty_provider_id) == (0, world.doctors[1])
    assert _cancelled(_doctor(world, 1)) == (
        f"{WHAT} is cancelled by the clinic on your behalf. It is cancelled for Dr Doc 1 "
        "too. Reason: Doctor phoned in sick."
    )
    assert _cancelled(_doctor(world, 0)) == (
        f"{WHAT} is cancelled by the clinic on Dr Doc 2's behalf. Reason: Doctor phoned in sick."
    )
    after = _audited_cancel(item.id)
    assert (after["by"], after["penalty"], after["for_provider"]) == (
        "provider",
        0,
        world.doctors[1],
    )
    penalties = db.session.scalars(
        sa.select(Notification).where(Notification.kind.like("%penalty%"))
    ).all()
    assert penalties == []
    # The admin's page of the cancellation names the doctor too.
    import re

    from tests.refunds.helpers import login, with_known_passwords

    with_known_passwords()
    client = app.test_client()
    login(client, users(world.admin).email)
    page = client.get(f"/admin/bookings/{item.id}/cancel").get_data(as_text=True)
    said = re.search(r'<p id="cancelled-by">([^<]*)', page).group(1)
    assert said.startswith("Cancelled by the provider Dr Doc 2 ("), said


def test_every_cancellations_audit_row_says_whom_it_was_for(world, users, gateway, clock):
    """The same key on every cancellation's audit row: the provider it was for (with a
    penalty here), or none when it was not a provider's."""
    item = _booked(world, users, gateway)
    clock.move_to(START - hours(30))
    quoted_provider_cancel(_doctor(world, 0), item.id, "Emergency surgery")
    assert _audited_cancel(item.id)["for_provider"] == world.doctors[0]
    other = _booked(world, users, gateway)
    quoted_admin_cancel(users(world.admin), other.id, "Clinic closed", mode="clinic")
    assert _audited_cancel(other.id)["for_provider"] is None
