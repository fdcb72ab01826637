"""The portal's form base: every form of the web layer derives from this ``FlaskForm``.

Every text field (StringField, TextAreaField, PasswordField, and their subclasses) gets a
validator refusing NUL and other control characters, with a message beside the field:
they have no business in a name, a note or an address, break some database drivers (NUL
in PostgreSQL text) and hide text in logs. Line breaks and tabs stay allowed in text
areas. ``tests/accounts/test_accounts_hardening.py`` checks every form derives from it."""

from flask_wtf import FlaskForm as _FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import ValidationError

from portal.accounts.service import CONTROL_CHARS, has_control_chars


def no_control_characters(form, field):
    multiline = isinstance(field, TextAreaField)
    value = field.data if isinstance(field.data, str) else ""
    if has_control_chars(value, allow_newlines=multiline):
        raise ValidationError(CONTROL_CHARS)


class FlaskForm(_FlaskForm):
    class Meta(_FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            if issubclass(unbound_field.field_class, (StringField, TextAreaField, PasswordField)):
                # Checked first, so no other validator sees the raw control characters.
                options["validators"] = [
                    no_control_characters,
                    *(unbound_field.kwargs.get("validators") or ()),
                ]
            return super().bind_field(form, unbound_field, options)
