"""Account mail in the account's language (docs/i18n.md: mail follows ``users.language``):
a password reset, a registration for an address already registered, an invitation and the
welcome of a patient the clinic added."""

import sqlalchemy as sa

from portal.extensions import db
from portal.notify import account_mail
from portal.notify.models import MailMessage


def _mail(to):
    db.session.expire_all()
    return db.session.scalars(sa.select(MailMessage).where(MailMessage.to == to)).one()


def _hindi(make_user, role="patient", email="asha@example.com"):
    from portal.accounts.models import User

    user = db.session.get(User, make_user(role, email=email, name="आशा").id)
    user.language = "hi"
    db.session.commit()
    return user


def test_password_reset_mail_is_in_the_hindi_speaking_patients_language(app, ctx, make_user):
    """It was "Reset your Clinic Portal password … Hello … Choose a new password" whatever
    the patient had chosen."""
    from portal.accounts import service as accounts

    _hindi(make_user)
    accounts.request_password_reset("asha@example.com")
    mail = _mail("asha@example.com")
    assert mail.subject == "अपने क्लिनिक पोर्टल पासवर्ड को रीसेट करें"
    assert "नमस्ते आशा" in mail.text and "/reset-password/" in mail.text, mail.text
    assert "Hello" not in mail.text and "Choose a new password" not in mail.text, mail.text


def test_the_other_account_mails_are_in_the_accounts_language(app, ctx, make_user):
    user = _hindi(make_user)
    provider = _hindi(make_user, "provider", "dr@example.com")
    admin = make_user("admin", email="boss@example.com", name="Boss")
    account_mail.existing_account_mail(user.id, "http://portal.test/auth/forgot")
    account_mail.welcome_patient_mail(user.id, admin.id, "http://portal.test/auth/set/x", 7)
    account_mail.invitation_mail(provider.id, admin.id, "http://portal.test/auth/set/y", 7)
    db.session.commit()
    mails = db.session.scalars(sa.select(MailMessage).order_by(MailMessage.id)).all()
    assert len(mails) == 3
    for mail in mails:
        assert "Hello" not in mail.text and "Clinic Portal" not in mail.subject, (
            mail.subject,
            mail.text,
        )
    assert "7 दिनों" in mails[1].text and "http://portal.test/auth/set/x" in mails[1].text
    assert "डॉक्टर या लैब के रूप में" in mails[2].text and "Boss" in mails[2].text


def test_an_invitation_to_someone_who_never_chose_a_language_is_in_english(app, ctx, make_user):
    provider = make_user("provider", email="new@example.com", name="New Doctor")
    admin = make_user("admin", email="boss@example.com", name="Boss")
    account_mail.invitation_mail(provider.id, admin.id, "http://portal.test/auth/set/z", 7)
    db.session.commit()
    mail = _mail("new@example.com")
    assert mail.subject == "You are invited to Clinic Portal"
    assert mail.text.startswith("Hello New Doctor,\n\nBoss has invited you to Clinic Portal as a ")
    assert "provider" in mail.text and "for 7 days" in mail.text
