"""Forms of the operations desk: the appointments list's filters (a GET form, no CSRF),
resolving an attention flag with a note, a meeting link."""

from calendar import monthrange
from datetime import date, timedelta

from wtforms import (
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
    ValidationError,
)
from wtforms.validators import DataRequired, Length, Optional

from portal.booking.desk import NO_PAYMENT, VisitFilter
from portal.catalog.models import SERVICE_KINDS
from portal.domain.ids import parse_id
from portal.domain.states import PaymentStatus, VisitStatus
from portal.web.forms.accounts import DependentForm
from portal.web.forms.base import PortalForm
from portal.web.forms.booking import OperatorItemForm, options, parse_start

MAX_RANGE_DAYS = 366
PRESETS = {
    "today": "Today",
    "tomorrow": "Tomorrow",
    "next7": "Next 7 days",
    "last7": "Last 7 days",
    "last30": "Last 30 days",
    "month": "This month",
}


def preset_range(preset, today):
    """(first day, last day) of a preset, clinic days, inclusive."""
    return {
        "today": (today, today),
        "tomorrow": (today + timedelta(days=1), today + timedelta(days=1)),
        "next7": (today, today + timedelta(days=6)),
        "last7": (today - timedelta(days=6), today),
        "last30": (today - timedelta(days=29), today),
        # The whole month: the list is mostly of appointments ahead.
        "month": (today.replace(day=1), today.replace(day=monthrange(today.year, today.month)[1])),
    }.get(preset, (None, None))


def _stripped(value):
    """A filter's value without the spaces around it: a blank one (a stray space or tab in
    a hand-edited or copied link) is "Any", as an empty one is, instead of a value that
    ``Optional()`` waves through unchecked (``int(" ")`` in ``to_filter`` was a 500)."""
    return value.strip() if isinstance(value, str) else value


def _id_choices(rows, label):
    return options([("", "Any")] + [(str(r.id), label(r)) for r in rows])


class AppointmentFilterForm(PortalForm):
    """Read from the query string. Choices (clinics, providers) are set by the view."""

    class Meta:
        csrf = False

    preset = SelectField("Dates", validators=[Optional()], filters=[_stripped])
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    clinic = SelectField(
        "Clinic", validators=[Optional()], validate_choice=False, filters=[_stripped]
    )
    provider = SelectField(
        "Provider", validators=[Optional()], validate_choice=False, filters=[_stripped]
    )
    service_kind = SelectField("Service type", validators=[Optional()], filters=[_stripped])
    status = SelectField("Status", validators=[Optional()], filters=[_stripped])
    payment = SelectField("Payment", validators=[Optional()], filters=[_stripped])
    attention = SelectField("Needs attention", validators=[Optional()], filters=[_stripped])
    q = StringField(
        "Search",
        validators=[Optional(), Length(max=100)],
        render_kw={"placeholder": "Name, mobile, visit or invoice no., Razorpay id"},
    )

    def __init__(self, *args, clinics=(), providers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.preset.choices = options([("", "Any dates"), *PRESETS.items()])
        self.clinic.choices = _id_choices(clinics, lambda c: f"{c.name}, {c.city}")
        self.provider.choices = _id_choices(providers, lambda p: p.display_name)
        self.service_kind.choices = options(
            [("", "Any")] + [(k, k.replace("_", " ").capitalize()) for k in SERVICE_KINDS]
        )
        self.status.choices = options(
            [("", "Any")] + [(s.value, s.value.replace("_", " ").capitalize()) for s in VisitStatus]
        )
        self.payment.choices = options(
            [("", "Any"), (NO_PAYMENT, "Not asked yet")]
            + [(s.value, s.value.capitalize()) for s in PaymentStatus]
        )
        self.attention.choices = options([("", "Any"), ("yes", "Needs attention"), ("no", "No")])
        self._clinic_ids = {str(c.id) for c in clinics}
        self._provider_ids = {str(p.id) for p in providers}

    def validate_clinic(self, field):
        if field.data and field.data not in self._clinic_ids:
            raise ValidationError("Unknown clinic: choose one from the list.")

    def validate_provider(self, field):
        if field.data and field.data not in self._provider_ids:
            raise ValidationError("Unknown provider: choose one from the list.")

    def validate_date_to(self, field):
        start, end = self.date_from.data, field.data
        if start and end and end < start:
            raise ValidationError("The end date is before the start date.")
        if start and end and (end - start).days >= MAX_RANGE_DAYS:
            raise ValidationError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")

    def dates(self, today):
        if self.date_from.data or self.date_to.data:
            return self.date_from.data, self.date_to.data
        return preset_range(self.preset.data, today)

    def to_filter(self, today: date) -> VisitFilter:
        """The filter; only call after ``validate()`` (errors: nothing is filtered)."""
        first, last = self.dates(today)
        return VisitFilter(
            date_from=first,
            date_to=last,
            clinic_id=parse_id(self.clinic.data),
            provider_id=parse_id(self.provider.data),
            service_kind=self.service_kind.data or None,
            status=self.status.data or None,
            payment_status=self.payment.data or None,
            needs_attention={"yes": True, "no": False}.get(self.attention.data),
            search=(self.q.data or "").strip() or None,
        )

    def args(self):
        """The filters as query-string arguments (for the pager), empty ones left out."""
        return {f.name: f.raw_data[0] for f in self if f.raw_data and f.raw_data[0].strip()}


class ResolveForm(PortalForm):
    note = TextAreaField(
        "Note",
        validators=[
            DataRequired(message="Write a note saying how this was resolved."),
            Length(max=500),
        ],
    )
    # The visit flag the page showed (``attention.resolve_visit_flag``'s ``shown``).
    kind = HiddenField(validators=[Length(max=40)])

    def shown_kind(self):
        """The flag kind the form was shown for, or None (not sent: not checked)."""
        return (self.kind.data or "").strip() or None


class OnBehalfForm(OperatorItemForm):
    """Creating (or adding to) a visit for a patient: the operator picks a service, sees
    only the providers who offer it, and chooses one of the real free times (the slot
    picker); typing a date and time stays possible (a phone booking for a time the picker
    does not list is still checked by every booking rule)."""

    day = DateField("Free times from", validators=[Optional()])
    slot = RadioField("Free times", choices=[], validate_choice=False)
    date = DateField("Or type a date", validators=[Optional()])
    time = TimeField("Start time (clinic time)", validators=[Optional()])

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if self.slot.data:
            if parse_start(self.slot.data) is None:
                self.slot.errors = [*self.slot.errors, "That time is not valid; choose again."]
                return False
            return ok
        for field, message in (
            (self.date, "Enter the date."),
            (self.time, "Enter the start time."),
        ):
            if not field.data:
                field.errors = [*field.errors, message]
                ok = False
        return ok


class ChildForm(DependentForm):
    """A child (or other dependent) added for the patient on the spot."""
