"""The base of every form: limits that hold for every field, whatever its own validators.

* text: at most its ``Length(max=…)``, or ``MAX_TEXT`` characters when it names none;
  no NUL or other control characters (a tab or a line break in a text area is fine);
  no bidi embedding, override or isolate controls, nor in a one-line field the direction
  marks (``accounts.service.has_bidi_controls``: a name shown reversed);
* numbers (an ``IntegerField``, a ``coerce=int`` choice): within the database's integers;
* dates (a ``DateField``, a ``DateTimeLocalField``): within 1900–2099 (``domain.dates``);
  one outside is taken as unreadable before any validator runs (its data None, its one
  message the span's), so no ``validate_*`` method ever sees it.

A value over a limit is a message beside its field (422 with the form), never a database
error (a NUL is refused by PostgreSQL; a number above 2**31 overflows its column).
``tests/accounts``' hardening test checks that every form of the web layer derives from it."""

import os
from datetime import date
from functools import lru_cache

from babel import support
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.i18n import messages_path
from wtforms.validators import Length, ValidationError

from portal.accounts.service import (
    BIDI_CHARS,
    CONTROL_CHARS,
    has_bidi_controls,
    has_control_chars,
    without_direction,
)
from portal.domain.dates import in_span
from portal.domain.ids import is_digits
from portal.domain.text import Text
from portal.i18n import N_

# The portal's catalogues (portal/translations; compiled when the app starts).
TRANSLATIONS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "translations"
)

MAX_TEXT = 2000  # a field that names no Length of its own
MAX_INT = 2**31 - 1
MSG_TOO_LONG = N_("This is too long: at most %(max)s characters.")
MSG_CONTROL = CONTROL_CHARS  # one wording for the accounts rule and every other form
MSG_BIDI = BIDI_CHARS
MSG_NUMBER = N_("That number is too large.")
MSG_DATE_SPAN = N_("Enter a date between 1900 and 2099.")


def has_control_characters(text):
    return has_control_chars(text, allow_newlines=True)


def _max_length(field):
    for validator in field.validators:
        if isinstance(validator, Length) and validator.max is not None and validator.max >= 0:
            return validator.max
    return MAX_TEXT


def _raw_texts(field):
    """What the person sent for the field (before any coercion)."""
    return [v for v in (field.raw_data or []) if isinstance(v, str)]


def _shown(field):
    """Whether the field's text is shown to anyone, so that direction controls in it could
    reorder what people read. Not a password (never shown; refusing one at sign-in would
    lock out whoever chose it before the rule), nor a phone number (``type="tel"``: its
    rule, ``accounts.service.normalise_phone``, drops them, as phone apps wrap a copied
    number in U+202A…U+202C)."""
    return field.type != "PasswordField" and (field.render_kw or {}).get("type") != "tel"


def _search_terms_without_direction(form):
    """A form declared without a CSRF token is a search or a filter (it changes nothing): what it
    reads is never stored or shown to anyone, so direction controls and marks are dropped
    from its text instead of refused (a mobile number pasted from a phone app arrives
    wrapped in U+202A…U+202C; a pasted Urdu name carries U+200F)."""
    for field in form:
        if isinstance(field.data, str):
            field.data = without_direction(field.data)
        if field.raw_data:
            field.raw_data = [
                without_direction(v) if isinstance(v, str) else v for v in field.raw_data
            ]


def field_limit_error(field):
    """The message for a field over a shared limit, or None."""
    for text in _raw_texts(field):
        if has_control_characters(text):
            return MSG_CONTROL
        if _shown(field) and has_bidi_controls(text, multiline=field.type == "TextAreaField"):
            return MSG_BIDI
        limit = _max_length(field)
        if field.type in ("StringField", "TextAreaField", "PasswordField", "EmailField") or (
            isinstance(field.data, str)
        ):
            if len(text) > limit:
                return Text(MSG_TOO_LONG, max=limit)
        elif len(text) > MAX_TEXT:
            return Text(MSG_TOO_LONG, max=MAX_TEXT)
    values = field.data if isinstance(field.data, list | tuple) else [field.data]
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            return MSG_NUMBER
        if isinstance(value, date) and not in_span(value):
            return MSG_DATE_SPAN
    return None


def _length_errors(form, field):
    """The messages the field's own ``Length`` validators give for what was sent."""
    found = []
    for validator in field.validators:
        if isinstance(validator, Length):
            try:
                validator(form, field)
            except ValidationError as exc:
                found.append(str(exc))
    return found


def _out_of_span(value):
    return isinstance(value, date) and not in_span(value)


@lru_cache(maxsize=8)
def _wtforms_translations(locale):
    """WTForms' messages in ``locale``: the portal's own catalogue for a language WTForms
    does not ship (Hindi: ``translations/hi/LC_MESSAGES/wtforms.po``), then WTForms'."""
    ours = support.Translations.load(TRANSLATIONS, [locale], domain="wtforms")
    ours.add_fallback(support.Translations.load(messages_path(), [locale], domain="wtforms"))
    return ours


# The prefix of a row's edit form on a list page that also has the New form of its kind
# (the doctor's hours, the admin's specializations and coupons): its fields' names and ids
# (edit-name) are not the New form's, whose label would otherwise name the first of two.
EDIT_PREFIX = "edit"


class PortalForm(FlaskForm):
    class Meta:
        def get_translations(self, form):
            # WTForms' own messages in the page's language, its catalogue read once per
            # process and language: Flask-WTF's default reads it again on every request.
            return _wtforms_translations(str(get_locale()))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Declared without CSRF (``Meta.csrf = False``): a search or filter, whatever the
        # app's CSRF setting (tests turn it off for every form).
        if getattr(type(self).Meta, "csrf", True) is False:
            _search_terms_without_direction(self)

    def validate(self, extra_validators=None):
        # A date outside the span is held back from every validator, as a date that could
        # not be read is: a form's own validate_* may do arithmetic on it or on another
        # field's (the reconciliation run's day_window overflowed on 9999-12-31).
        far = [field for field in self if _out_of_span(field.data)]
        for field in far:
            field.data = None
        ok = super().validate(extra_validators)
        for field in far:
            field.errors = [MSG_DATE_SPAN]
            ok = False
        for field in self:
            message = field_limit_error(field)
            if message is not None:
                # Said once, in the portal's words: a field's own Length already refused
                # it in WTForms' ("Field cannot be longer than 40 characters.").
                errors = field.errors
                if any(len(t) > _max_length(field) for t in _raw_texts(field)):
                    errors = [e for e in errors if e not in _length_errors(self, field)]
                errors = list(errors)
                if message not in errors:
                    errors.append(message)
                field.errors = errors
                ok = False
        return ok


class EditVersion:
    """Mixed into an admin's edit form of a row with a ``version`` (a coupon, a service, a
    provider): the version the form was filled from, sent back hidden, so that a save over
    a newer one is refused by the use case (``catalog.checks.lock_for_edit``) instead of
    putting back what another administrator changed; the policy form's ``base_version``."""

    version = HiddenField(validators=[Length(max=12)])

    def base_version(self):
        """The version the form was filled from, or None (not sent: not checked)."""
        text = (self.version.data or "").strip()
        return int(text) if is_digits(text) else None
