"""An address as it was registered (review): sign-in reads it as registration does
(``normalise_email``: email_validator's form, NFC, an IDN domain in Unicode), so an
address registered as typed signs in as typed; and someone registering the address of a
deactivated account does not tell its owner to sign in or reset (neither works for it)."""

import pytest
import sqlalchemy as sa

from portal.accounts import service
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.web.booking.conftest import world  # noqa: F401

PW = "a long password 2027"
DECOMPOSED = "Jose\u0301.k@example.com"  # é as e and a combining accent (NFD)
PUNYCODE = "asha@xn--exmple-cua.com"  # the domain exämple.com as DNS spells it


@pytest.mark.parametrize(
    "registered,typed",
    [
        (DECOMPOSED, DECOMPOSED),
        (DECOMPOSED, "JOS\u00c9.K@example.com"),  # the same address, composed
        (PUNYCODE, PUNYCODE),
        (PUNYCODE, "Asha@ex\u00e4mple.com"),  # the same domain, in Unicode
    ],
)
def test_an_address_signs_in_as_it_was_registered(ctx, registered, typed):
    made = service.register_patient("Asha Rao", registered, "9812345678", PW)
    user = service.authenticate(typed, PW)
    assert user is not None and user.id == made.id


def test_no_address_is_not_looked_up_and_costs_a_password_check(ctx, monkeypatch):
    """An address registration would refuse finds no account, checks the dummy hash as
    an unknown address does (the answer takes as long), and is refused and audited."""
    service.register_patient("Asha Rao", "asha@example.com", "9812345678", PW)
    checked = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda h, p: checked.append(h) or real(h, p))
    looked_up = []
    monkeypatch.setattr(service, "_account_of", lambda *a, **k: looked_up.append(a))
    with pytest.raises(service.ValidationError) as refused:
        service.authenticate("asha@@example.com", PW)
    assert refused.value.errors == {service.FORM: service.BAD_LOGIN}
    assert checked == [service._dummy_hash()] and looked_up == []
    failed = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "login_failed")
    ).one()
    # Not kept: text no address rule accepts may be a password typed in the wrong box.
    assert failed.object_id is None
    assert failed.after == {"email": None, "not_an_address": True}


def test_a_deactivated_account_is_not_told_to_sign_in_or_reset(app, world):
    email = world.patient.email
    with app.app_context():
        service.deactivate_user(db.session.get(User, world.admin.id), world.patient.id)
        service.sign_up("Priya Sharma", email, "9812345678", PW)
        db.session.commit()
        subjects = db.session.scalars(
            sa.select(MailMessage.subject).where(MailMessage.to == email)
        ).all()
    assert "You already have a Clinic Portal account" not in subjects


def test_an_active_account_is_still_told(app, world):
    email = world.patient.email
    with app.app_context():
        service.sign_up("Priya Sharma", email, "9812345678", PW)
        db.session.commit()
        subjects = db.session.scalars(
            sa.select(MailMessage.subject).where(MailMessage.to == email)
        ).all()
    assert subjects == ["You already have a Clinic Portal account"]
