"""An address and its compatibility forms are one account (re-read finding): a full-width
``ｐriya@example.com`` (U+FF50) registered as a second account beside ``priya@example.com``,
email_validator applying NFC only. ``normalise_email`` folds NFKC first, for registration,
sign-in, a reset and an invitation alike. An address stored before the rule under a
compatibility form is not changed: it is found by either form (``User.email_key``), and
its folded twin is refused as "already have an account" (docs/decisions.md). Homoglyphs
across scripts (a Cyrillic 'а') are other letters, out of scope."""

import pytest
import sqlalchemy as sa

from portal.accounts import service
from portal.accounts.models import User
from portal.extensions import db
from portal.notify.models import MailMessage

PW = "a long password 2027"
PLAIN = "priya@example.com"
WIDE = "\uff50riya@example.com"  # ｐriya: a full-width p
ALL_WIDE = "\uff30\uff52\uff49\uff59\uff41\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"
TAKEN = {"email": service.EMAIL_TAKEN}


def _accounts():
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


@pytest.mark.parametrize("typed", [WIDE, ALL_WIDE, "PRIYA@EXAMPLE.COM", "priya@ｅｘａｍｐｌｅ.com"])
def test_compatibility_forms_fold_to_the_one_address(typed):
    assert service.normalise_email(typed) == PLAIN


def test_homoglyphs_of_another_script_are_another_address():
    # Cyrillic 'а' (U+0430) is a letter of its own, not a compatibility form: out of scope.
    assert service.normalise_email("priy\u0430@example.com") != PLAIN


def test_the_full_width_twin_is_refused_and_signs_in_to_the_account(ctx):
    admin = _admin()
    db.session.commit()
    made = service.register_patient("Priya Sharma", PLAIN, "9812345678", PW)
    for typed in (WIDE, ALL_WIDE):
        with pytest.raises(service.ValidationError) as refused:
            service.register_patient("Someone Else", typed, "9812345679", PW)
        assert refused.value.errors == TAKEN
        assert service.sign_up("Someone Else", typed, "9812345679", PW) is None
        with pytest.raises(service.ValidationError) as refused:  # an invitation too
            service.add_patient(admin, "Someone Else", typed, "9812345679")
        assert refused.value.errors == TAKEN
        assert service.authenticate(typed, PW).id == made.id
    assert _accounts() == 2  # Priya and the admin
    # The owner is told of the sign-ups (their own address), and a reset asked with the
    # full-width form is mailed to the account's address.
    service.request_password_reset(WIDE)
    db.session.commit()
    subjects = db.session.scalars(sa.select(MailMessage.subject).where(MailMessage.to == PLAIN))
    assert "Reset your Clinic Portal password" in list(subjects)


def _admin():
    admin = db.session.scalar(sa.select(User).where(User.role == "admin"))
    if admin is None:
        admin = User(email="admin@example.com", name="Admin", role="admin", phone=None)
        db.session.add(admin)
        db.session.flush()
    return admin


def test_an_address_stored_before_the_rule_is_kept_and_found_by_either_form(ctx):
    """Stored as email_validator left it (NFC only): nothing stored changes. Its owner
    signs in with either form, and its folded twin cannot be registered."""
    legacy = User(email=WIDE, name="Priya Sharma", role="patient", phone=None)
    legacy.password_hash = service.hash_password(PW)
    db.session.add(legacy)
    db.session.commit()
    assert legacy.email_key == PLAIN  # as the migration keys it
    for typed in (WIDE, PLAIN):
        assert service.authenticate(typed, PW).id == legacy.id
    with pytest.raises(service.ValidationError) as refused:
        service.register_patient("Someone Else", PLAIN, "9812345679", PW)
    assert refused.value.errors == TAKEN
    db.session.expire_all()
    assert db.session.get(User, legacy.id).email == WIDE and _accounts() == 1


def test_twins_stored_before_the_rule_each_sign_in_as_stored(ctx):
    """Both forms registered before the rule (two accounts): the migration leaves the
    folded key with the plain one; each still signs in with its own address as stored."""
    _admin()
    plain = service.register_patient("Priya Sharma", PLAIN, "9812345678", PW)
    twin = service.register_patient("Priya Twin", "twin@example.com", "9812345679", PW + "!")
    # As the migration leaves a twin: its address as stored then, no key.
    db.session.execute(sa.update(User).where(User.id == twin.id).values(email=WIDE, email_key=None))
    db.session.commit()
    assert service.authenticate(PLAIN, PW).id == plain.id
    assert service.authenticate(WIDE, PW + "!").id == twin.id
