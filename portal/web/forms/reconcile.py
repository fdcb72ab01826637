"""Forms of the reconciliation screen: a run for a range of days, accepting a case with a
note, and resolving a selection of cases."""

from wtforms import DateField, RadioField, SelectMultipleField, TextAreaField
from wtforms.validators import InputRequired, Length, ValidationError

from portal.reconcile.resolve import ResolveError, checked_note
from portal.reconcile.window import WindowError, day_window
from portal.web.forms.base import MAX_INT, PortalForm
from portal.web.forms.booking import options

MAX_SELECTION = 100


class RunForm(PortalForm):
    """Whole clinic days, first to last, at most a year."""

    first_day = DateField(
        "First day",
        validators=[InputRequired(message="Enter the first day (YYYY-MM-DD).")],
    )
    last_day = DateField(
        "Last day",
        validators=[InputRequired(message="Enter the last day (YYYY-MM-DD).")],
    )

    def validate_last_day(self, field):
        if self.first_day.data and field.data:
            try:
                day_window(self.first_day.data, field.data)
            except WindowError as exc:
                raise ValidationError(str(exc)) from None


def _note_long_enough(note):
    # The service's rule (the policy's length), said beside the field.
    try:
        checked_note(note)
    except ResolveError as exc:
        raise ValidationError(str(exc)) from None


class AcceptForm(PortalForm):
    note = TextAreaField("Note", validators=[Length(max=2000)])

    def validate_note(self, field):
        _note_long_enough(field.data)


class BulkForm(PortalForm):
    """The cases ticked on the list, and what to do with them."""

    case = SelectMultipleField("Cases", coerce=int, validate_choice=False)
    action = RadioField(
        "Resolve by",
        choices=options([("sync", "Sync from the gateway"), ("accept", "Accept with a note")]),
    )
    note = TextAreaField("Note (to accept)", validators=[Length(max=2000)])

    def validate_case(self, field):
        if not field.data:
            raise ValidationError("Tick the cases to resolve.")
        if len(field.data) > MAX_SELECTION:
            raise ValidationError(f"At most {MAX_SELECTION} cases at a time.")
        if any(not 0 < n <= MAX_INT for n in field.data):
            raise ValidationError("Unknown case.")

    def validate_note(self, field):
        if self.action.data == "accept":
            _note_long_enough(field.data)
