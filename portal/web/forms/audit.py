"""The audit log viewer's filters (a GET form: no CSRF token, read from the query string)."""

from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional

from portal.web.forms.base import PortalForm
from portal.web.forms.booking import options

MSG_DATE = "Enter a date such as 2026-03-31."


class AuditFilterForm(PortalForm):
    class Meta:
        csrf = False

    actor = StringField("Actor (email or user id)", validators=[Length(max=254)])
    action = SelectField("Action", choices=[], validate_choice=False)
    object_type = SelectField("Object", choices=[], validate_choice=False)
    object_id = StringField("Object id", validators=[Length(max=64)])
    date_from = DateField("From (clinic date)", validators=[Optional()])
    date_to = DateField("To (clinic date)", validators=[Optional()])

    def set_choices(self, actions, object_types):
        self.action.choices = options(
            [("", "Any action")]
            + [(p, f"{p}*") for p in sorted({a.split(".")[0] + "." for a in actions if "." in a})]
            + [(a, a) for a in actions]
        )
        self.object_type.choices = options([("", "Any object")] + [(t, t) for t in object_types])
        return self

    def process_errors(self):
        for f in (self.date_from, self.date_to):
            if f.errors:
                f.errors = [MSG_DATE]
