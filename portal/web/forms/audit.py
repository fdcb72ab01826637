"""The audit log viewer's filters (a GET form: no CSRF token, read from the query string).
The form only draws the fields: the values are read by the audit report's parser
(``portal.reports.audit_log.parse``), as its CSV reads them."""

from wtforms import SelectField, StringField
from wtforms.validators import Length

from portal.web.forms.base import PortalForm
from portal.web.forms.booking import options


class AuditFilterForm(PortalForm):
    class Meta:
        csrf = False

    actor = StringField("Actor (email or user id)", validators=[Length(max=254)])
    action = SelectField("Action", choices=[], validate_choice=False)
    object_type = SelectField("Object", choices=[], validate_choice=False)
    object_id = StringField("Object id", validators=[Length(max=64)])
    # Text, not a DateField: a second reading of the date (strptime took 2026-3-2, the
    # CSV's parser refuses it) is how the viewer and its CSV came to disagree.
    date_from = StringField("From (clinic date)", render_kw={"type": "date"})
    date_to = StringField("To (clinic date)", render_kw={"type": "date"})

    def set_choices(self, actions, object_types):
        self.action.choices = options(
            [("", "Any action")]
            + [(p, f"{p}*") for p in sorted({a.split(".")[0] + "." for a in actions if "." in a})]
            + [(a, a) for a in actions]
        )
        self.object_type.choices = options([("", "Any object")] + [(t, t) for t in object_types])
        return self
