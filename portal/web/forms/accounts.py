"""Forms for accounts. They check only presence and shape; the rules (phone format, password
length, unique email …) live in portal.accounts.service, whose ValidationError messages
``portal.web.errors.apply_errors`` puts beside the matching fields."""

from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from portal.accounts.models import ADMIN, PROVIDER
from portal.accounts.service import PASSWORD_MIN_LENGTH, RELATIONSHIPS
from portal.web.forms.base import PortalForm

PASSWORD_HINT = f"At least {PASSWORD_MIN_LENGTH} characters."


def _required(what):
    return DataRequired(message=f"Enter {what}.")


def _new_password(label):
    # A function, not a base class: WTForms orders fields by creation, so each form keeps
    # its password fields where it declares them.
    return PasswordField(
        label,
        validators=[_required("a password")],
        description=PASSWORD_HINT,
        render_kw={"autocomplete": "new-password"},
    )


def _repeat_password():
    return PasswordField(
        "Repeat password",
        validators=[
            _required("the password again"),
            EqualTo("password", message="The passwords do not match."),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class LoginForm(PortalForm):
    email = StringField(
        "Email",
        validators=[_required("your email address")],
        render_kw={"autocomplete": "username", "type": "email"},
    )
    password = PasswordField(
        "Password",
        validators=[_required("your password")],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in on this device")
    next = HiddenField()


class RegisterForm(PortalForm):
    name = StringField(
        "Full name",
        validators=[_required("your name"), Length(max=120)],
        render_kw={"autocomplete": "name"},
    )
    email = StringField(
        "Email",
        validators=[_required("your email address")],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    phone = StringField(
        "Mobile number",
        validators=[_required("your mobile number")],
        render_kw={"autocomplete": "tel", "type": "tel", "placeholder": "98123 45678"},
    )
    password = _new_password("Password")
    confirm = _repeat_password()


class ForgotPasswordForm(PortalForm):
    email = StringField(
        "Email",
        validators=[_required("your email address")],
        render_kw={"autocomplete": "email", "type": "email"},
    )


class SetPasswordForm(PortalForm):
    password = _new_password("New password")
    confirm = _repeat_password()


class ChangePasswordForm(SetPasswordForm):
    current_password = PasswordField(
        "Current password",
        validators=[_required("your current password")],
        render_kw={"autocomplete": "current-password"},
    )


class DependentForm(PortalForm):
    name = StringField("Name", validators=[_required("their name"), Length(max=120)])
    relationship = SelectField(
        "Relationship",
        choices=[
            SelectChoice("", "Choose…"),
            *(SelectChoice(v, label) for v, label in RELATIONSHIPS),
        ],
        validators=[_required("how they are related to you")],
    )
    date_of_birth = DateField("Date of birth", validators=[Optional()])


class InviteForm(PortalForm):
    name = StringField("Name", validators=[_required("their name"), Length(max=120)])
    email = StringField(
        "Email", validators=[_required("their email address")], render_kw={"type": "email"}
    )
    role = SelectField(
        "Role",
        choices=[
            SelectChoice(PROVIDER, "Provider (doctor or lab)"),
            SelectChoice(ADMIN, "Administrator"),
        ],
    )
    phone = StringField(
        "Mobile number",
        validators=[Optional()],
        render_kw={"type": "tel", "placeholder": "98123 45678"},
    )
