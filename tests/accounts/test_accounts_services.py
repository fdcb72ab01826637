"""Account services against the database: registration, sign-in, staff, dependents."""

from datetime import date

import pytest
import sqlalchemy as sa

from portal.accounts import dependents, service
from portal.accounts.models import Dependent, User
from portal.accounts.passwords import verify_password
from portal.audit.models import AuditEntry
from portal.db import unit_of_work
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.conftest import PASSWORD

GOOD = dict(
    name="Asha Rao", email="Asha.Rao@Example.com", phone="098123 45678", password="a long password"
)


def actions():
    return [
        (a.action, a.object_type, a.actor_id)
        for a in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
    ]


def get_user(user_id):
    return db.session.get(User, user_id)


# --- registration ----------------------------------------------------------------------


def test_register_patient_normalises_and_audits(ctx):
    user = service.register_patient(**GOOD)
    assert (user.email, user.phone, user.role, user.active) == (
        "asha.rao@example.com",
        "+919812345678",
        "patient",
        True,
    )
    assert user.password_hash != GOOD["password"]
    assert verify_password(user.password_hash, GOOD["password"])
    assert actions() == [("user.register", "user", user.id)]


def test_duplicate_email_is_refused_whatever_the_case(ctx):
    service.register_patient(**GOOD)
    with pytest.raises(service.ValidationError) as exc:
        service.register_patient(**{**GOOD, "email": "ASHA.RAO@example.COM"})
    assert exc.value.errors == {"email": "An account with this email already exists."}
    # The public sign-up refuses it silently (the owner is mailed instead).
    assert service.sign_up(**{**GOOD, "email": "ASHA.RAO@example.COM"}) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_every_broken_rule_is_reported_at_once(ctx):
    with pytest.raises(service.ValidationError) as exc:
        service.register_patient(name=" ", email="not-an-email", phone="12345", password="short")
    assert set(exc.value.errors) == {"name", "email", "phone", "password"}
    assert "10-digit Indian mobile" in exc.value.errors["phone"]
    assert "at least 10 characters" in exc.value.errors["password"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


# --- sign-in ---------------------------------------------------------------------------


def test_authenticate_records_last_login_and_audits(ctx, make_user):
    made = make_user("patient", email="ravi@example.com")
    user = service.authenticate("  RAVI@example.com ", PASSWORD)
    assert user.id == made.id
    assert user.last_login_at is not None
    assert actions() == [("login", "user", made.id)]


@pytest.mark.parametrize(
    "email,password",
    [
        ("ravi@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("", PASSWORD),
    ],
)
def test_failed_sign_in_says_the_same_and_is_audited(ctx, make_user, email, password):
    made = make_user("patient", email="ravi@example.com")
    with pytest.raises(service.ValidationError) as exc:
        service.authenticate(email, password)
    assert exc.value.errors == {service.FORM: service.BAD_LOGIN}
    [entry] = db.session.scalars(sa.select(AuditEntry)).all()
    assert entry.action == "login_failed"
    assert entry.object_id == (str(made.id) if email == "ravi@example.com" else None)
    # An address is kept (known or not); text that is none is not (docs/security.md).
    assert entry.after == ({"email": email} if email else {"email": None, "not_an_address": True})
    assert get_user(made.id).last_login_at is None


def test_invited_user_without_password_cannot_sign_in(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    service.invite_user("doc@example.com", "Dr Mehta", "provider", admin)
    with pytest.raises(service.ValidationError):
        service.authenticate("doc@example.com", "")


def test_deactivated_user_cannot_sign_in(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    patient = make_user("patient")
    service.deactivate_user(admin, patient.id)
    with pytest.raises(service.ValidationError) as exc:
        service.authenticate(patient.email, PASSWORD)
    assert "deactivated" in exc.value.errors[service.FORM]


# --- staff -----------------------------------------------------------------------------


def test_invite_user_creates_a_passwordless_account_and_mails_a_link(ctx, make_user):
    admin = db.session.merge(make_user("admin", name="Meera Admin"))
    user = service.invite_user("Doc@Example.com", "Dr Mehta", "provider", admin, phone="9812345678")
    assert (user.email, user.role, user.phone, user.password_hash, user.active) == (
        "doc@example.com",
        "provider",
        "+919812345678",
        None,
        True,
    )
    [mail] = db.session.scalars(sa.select(MailMessage)).all()
    assert mail.to == "doc@example.com"
    assert "/auth/accept-invite/" in mail.text and "Meera Admin" in mail.text
    assert ("user.invite", "user", admin.id) in actions()


def test_invite_user_is_admin_only(ctx, make_user):
    provider = db.session.merge(make_user("provider"))
    with pytest.raises(service.PermissionDenied):
        service.invite_user("x@example.com", "X", "provider", provider)


def test_patients_are_not_invited(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    with pytest.raises(service.ValidationError) as exc:
        service.invite_user("x@example.com", "X", "patient", admin)
    assert set(exc.value.errors) == {"role"}


def test_invite_duplicate_email(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    make_user("patient", email="taken@example.com")
    with pytest.raises(service.ValidationError) as exc:
        service.invite_user("TAKEN@example.com", "X", "provider", admin)
    assert exc.value.errors == {"email": "An account with this email already exists."}


def test_invite_can_join_the_callers_transaction(ctx, make_user):
    """Inside a caller's unit of work (a provider profile added with the login) the invite
    nests: the caller commits once, or its failure rolls all back."""
    admin = db.session.merge(make_user("admin"))
    with pytest.raises(RuntimeError), unit_of_work():
        user = service.invite_user("doc@example.com", "Dr Mehta", "provider", admin)
        assert user.id is not None
        raise RuntimeError("the profile could not be added")
    assert db.session.scalar(sa.select(User).where(User.email == "doc@example.com")) is None
    assert db.session.scalars(sa.select(MailMessage)).all() == []


def test_deactivate_and_reactivate(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    patient = make_user("patient")
    assert service.deactivate_user(admin, patient.id).active is False
    assert service.reactivate_user(admin, patient.id).active is True
    assert [a for a in actions() if a[0].startswith("user.")] == [
        ("user.deactivate", "user", admin.id),
        ("user.reactivate", "user", admin.id),
    ]


def test_admin_cannot_deactivate_themselves(ctx, make_user):
    admin = db.session.merge(make_user("admin"))
    with pytest.raises(service.ValidationError):
        service.deactivate_user(admin, admin.id)
    assert get_user(admin.id).active


def test_deactivate_is_admin_only_and_needs_a_user(ctx, make_user):
    provider = db.session.merge(make_user("provider"))
    admin = db.session.merge(make_user("admin"))
    with pytest.raises(service.PermissionDenied):
        service.deactivate_user(provider, admin.id)
    with pytest.raises(service.NotFound):
        service.deactivate_user(admin, 999999)


# --- dependents ------------------------------------------------------------------------


def test_dependents_add_update_remove(ctx, make_user):
    guardian = db.session.merge(make_user("patient"))
    child = dependents.add_dependent(guardian, "  Anya  Rao ", "child", date(2019, 4, 2))
    assert (child.name, child.relationship_, child.guardian_id) == (
        "Anya Rao",
        "child",
        guardian.id,
    )
    dependents.update_dependent(guardian, child.id, "Anya R", "child", None)
    assert db.session.get(Dependent, child.id).date_of_birth is None
    dependents.remove_dependent(guardian, child.id)
    assert db.session.get(Dependent, child.id) is None
    assert [a[0] for a in actions()] == ["dependent.add", "dependent.update", "dependent.remove"]


def test_dependent_rules(ctx, make_user):
    guardian = db.session.merge(make_user("patient"))
    with pytest.raises(service.ValidationError) as exc:
        dependents.add_dependent(guardian, "", "cousin", date(2999, 1, 1))
    assert set(exc.value.errors) == {"name", "relationship", "date_of_birth"}


def test_another_patients_dependent_is_not_found(ctx, make_user):
    guardian = db.session.merge(make_user("patient"))
    other = db.session.merge(make_user("patient"))
    child = dependents.add_dependent(guardian, "Anya", "child", None)
    with pytest.raises(service.NotFound):
        dependents.update_dependent(other, child.id, "Mine now", "child", None)
    with pytest.raises(service.NotFound):
        dependents.remove_dependent(other, child.id)
    assert db.session.get(Dependent, child.id).name == "Anya"


def test_only_patients_have_dependents_and_admins_may_act_for_them(ctx, make_user):
    provider = db.session.merge(make_user("provider"))
    admin = db.session.merge(make_user("admin"))
    guardian = db.session.merge(make_user("patient"))
    with pytest.raises(service.PermissionDenied):
        dependents.add_dependent(provider, "X", "child", None)
    with pytest.raises(service.PermissionDenied):
        dependents.add_dependent(guardian, "X", "child", None, actor=provider)
    child = dependents.add_dependent(guardian, "Anya", "child", None, actor=admin)
    dependents.update_dependent(admin, child.id, "Anya Rao", "child", None)
    assert db.session.get(Dependent, child.id).name == "Anya Rao"
