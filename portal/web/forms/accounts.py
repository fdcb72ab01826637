"""Forms for accounts. They check only presence and shape; the rules (phone format, password
length, unique email …) live in portal.accounts.service, whose ValidationError messages
``portal.web.errors.apply_errors`` puts beside the matching fields."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from portal.accounts.models import ADMIN
from portal.accounts.service import PASSWORD_MIN_LENGTH, RELATIONSHIPS
from portal.web.forms.base import PortalForm

PASSWORD_HINT = _l("At least %(n)s characters.", n=PASSWORD_MIN_LENGTH)


def _required(message):
    return DataRequired(message=message)


def _new_password(label):
    # A function, not a base class: WTForms orders fields by creation, so each form keeps
    # its password fields where it declares them.
    return PasswordField(
        label,
        validators=[_required(_l("Enter a password."))],
        description=PASSWORD_HINT,
        render_kw={"autocomplete": "new-password"},
    )


def _repeat_password():
    return PasswordField(
        _l("Repeat password"),
        validators=[
            _required(_l("Enter the password again.")),
            EqualTo("password", message=_l("The passwords do not match.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class LoginForm(PortalForm):
    email = StringField(
        _l("Email"),
        validators=[_required(_l("Enter your email address."))],
        render_kw={"autocomplete": "username", "type": "email"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[_required(_l("Enter your password."))],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField(_l("Keep me signed in on this device"))
    next = HiddenField()


class RegisterForm(PortalForm):
    name = StringField(
        _l("Full name"),
        validators=[_required(_l("Enter your name.")), Length(max=120)],
        render_kw={"autocomplete": "name"},
    )
    email = StringField(
        _l("Email"),
        validators=[_required(_l("Enter your email address."))],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    phone = StringField(
        _l("Mobile number"),
        validators=[_required(_l("Enter your mobile number."))],
        render_kw={"autocomplete": "tel", "type": "tel", "placeholder": "98123 45678"},
    )
    password = _new_password(_l("Password"))
    confirm = _repeat_password()


class ForgotPasswordForm(PortalForm):
    email = StringField(
        _l("Email"),
        validators=[_required(_l("Enter your email address."))],
        render_kw={"autocomplete": "email", "type": "email"},
    )


class SetPasswordForm(PortalForm):
    password = _new_password(_l("New password"))
    confirm = _repeat_password()


class ChangePasswordForm(SetPasswordForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[_required(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )


class DependentForm(PortalForm):
    name = StringField(_l("Name"), validators=[_required(_l("Enter their name.")), Length(max=120)])
    relationship = SelectField(
        _l("Relationship"),
        choices=[
            SelectChoice("", _l("Choose…")),
            *(SelectChoice(v, _l(label)) for v, label in RELATIONSHIPS),
        ],
        validators=[_required(_l("Enter how they are related to you."))],
    )
    date_of_birth = DateField(_l("Date of birth"), validators=[Optional()])


class InviteForm(PortalForm):
    """The Users page's invitation: administrators only. A provider (doctor or lab) is
    created on the catalog's provider page, which invites their login with their profile
    (a login without one could never be booked, nor given one later)."""

    name = StringField(_l("Name"), validators=[_required(_l("Enter their name.")), Length(max=120)])
    email = StringField(
        _l("Email"),
        validators=[_required(_l("Enter their email address."))],
        render_kw={"type": "email"},
    )
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(ADMIN, "Administrator")],
        default=ADMIN,
    )
    phone = StringField(
        _l("Mobile number"),
        validators=[Optional()],
        render_kw={"type": "tel", "placeholder": "98123 45678"},
    )
    # Admin pages are English only: not in the catalogue.
    reason = TextAreaField(
        "Note for the approving administrator", validators=[Optional(), Length(max=500)]
    )


class CloseAccountForm(PortalForm):
    """The patient's "Close my account": the current password and a confirmation."""

    current_password = PasswordField(
        _l("Current password"),
        validators=[_required(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    confirm = BooleanField(
        _l("I understand that closing my account erases my personal details and cannot be undone."),
        validators=[_required(_l("Tick the box to confirm that you want to close your account."))],
    )
