"""Forms of the catalog: clinics, specializations, providers, services (admin) and a
provider's own availability and leave."""

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
)

from portal.catalog.models import (
    DEFAULT_TIMEZONE,
    PAYOUT_SCHEDULES,
    PROVIDER_KINDS,
    SERVICE_KINDS,
    SERVICE_MODES,
    WEEKDAYS,
)
from portal.catalog.services import MSG_FEE_MIN
from portal.config import policy
from portal.domain.pricing import MIN_ONLINE_PAYMENT
from portal.i18n import N_
from portal.web.forms.base import EditVersion, PortalForm
from portal.web.forms.money import parse_percent_bps, parse_rupees


def _label(value):
    return value.replace("_", " ").capitalize()


def _required(what):
    return DataRequired(message=f"Enter {what}.")


class HundredthsField(DecimalField):
    """A fee in rupees or a rate in percent, typed: read by the money module's rules
    (``parse``: digits with at most two decimals, no exponent, finite) into a Decimal of
    whole hundredths. WTForms' own Decimal parsing took "Infinity" and "sNaN", which then
    failed the range check or the view's conversion with a 500."""

    def __init__(self, label=None, validators=None, parse=parse_rupees, **kwargs):
        super().__init__(label, validators, places=2, **kwargs)
        self.parse = parse

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        self.data = None
        hundredths = self.parse(valuelist[0])  # ValueError: the field's message
        if hundredths is not None:
            self.data = Decimal(hundredths) / 100

    def pre_validate(self, form):
        if self.process_errors:  # said once: not again as "out of range" by the validators
            raise StopValidation()

    @property
    def hundredths(self):
        """The value as an integer count of hundredths (paise, basis points), or None."""
        return None if self.data is None else int(self.data * 100)


class ClinicForm(EditVersion, PortalForm):
    name = StringField("Name", validators=[_required("the clinic's name"), Length(max=120)])
    city = StringField("City", validators=[_required("the city"), Length(max=80)])
    address = TextAreaField("Address", validators=[Optional()])
    timezone = StringField(
        "Time zone", default=DEFAULT_TIMEZONE, validators=[_required("a time zone"), Length(max=64)]
    )
    gstin = StringField(
        "GSTIN", validators=[Optional(), Length(max=20)], render_kw={"autocapitalize": "characters"}
    )
    active = BooleanField("Open for bookings", default=True)


# Opening hours: a pair of fields per weekday (opens_0 … closes_6).
for _day, _name in enumerate(WEEKDAYS):
    setattr(ClinicForm, f"opens_{_day}", TimeField(f"{_name} opens", validators=[Optional()]))
    setattr(ClinicForm, f"closes_{_day}", TimeField(f"{_name} closes", validators=[Optional()]))


class SpecializationForm(EditVersion, PortalForm):
    name = StringField("Name", validators=[_required("a name"), Length(max=80)])


class ProviderForm(EditVersion, PortalForm):
    display_name = StringField(
        "Name patients see", validators=[_required("the name patients see"), Length(max=120)]
    )
    kind = SelectField("Kind", choices=[SelectChoice(k, _label(k)) for k in PROVIDER_KINDS])
    registration_no = StringField("Registration no.", validators=[Optional(), Length(max=40)])
    # Checked by the catalog (catalog.pan.check_pan: the domain's rule, its one message
    # beside the field, a length too; no Length here to say it twice); blank clears it.
    pan = StringField(
        "PAN",
        validators=[Optional()],
        render_kw={
            "autocapitalize": "characters",
            "autocomplete": "off",
            "spellcheck": "false",
            "maxlength": 20,
        },
    )
    commission = HundredthsField(
        "Commission (%)",
        parse=parse_percent_bps,
        default=lambda: Decimal(policy().commission_bps) / 100,  # the policy in force
        validators=[InputRequired("Enter the commission."), NumberRange(0, 100, "Enter 0 to 100.")],
    )
    payout_schedule = SelectField(
        "Payouts",
        default=lambda: policy().default_payout_schedule,
        choices=[SelectChoice(k, _label(k)) for k in PAYOUT_SCHEDULES],
    )
    clinic_ids = SelectMultipleField("Clinics", coerce=int)
    specialization_ids = SelectMultipleField("Specializations", coerce=int)
    service_ids = SelectMultipleField("Services", coerce=int)
    bio = TextAreaField("About", validators=[Optional(), Length(max=2000)])
    active = BooleanField("Listed and bookable", default=True)


class NewProviderForm(ProviderForm):
    name = StringField("Login name", validators=[_required("the person's name"), Length(max=120)])
    email = StringField(
        "Email",
        validators=[_required("an email address"), Email("Enter a valid email address.")],
        render_kw={"type": "email"},
    )
    phone = StringField("Mobile", validators=[Optional()], render_kw={"type": "tel"})


class ServiceForm(EditVersion, PortalForm):
    name = StringField("Name", validators=[_required("the service's name"), Length(max=120)])
    kind = SelectField("Kind", choices=[SelectChoice(k, _label(k)) for k in SERVICE_KINDS])
    mode = SelectField("Mode", choices=[SelectChoice(k, _label(k)) for k in SERVICE_MODES])
    specialization_id = SelectField(
        "Specialization", coerce=int, validators=[InputRequired("Choose a specialization.")]
    )
    duration_minutes = IntegerField(
        "Duration (minutes)", default=30, validators=[InputRequired("Enter the duration.")]
    )
    fee = HundredthsField(
        "Fee (₹)",
        validators=[
            InputRequired("Enter the fee."),
            NumberRange(min=Decimal(MIN_ONLINE_PAYMENT) / 100, message=MSG_FEE_MIN),
        ],
    )
    taxable = BooleanField("GST on the fee (e.g. cosmetic)")
    provider_ids = SelectMultipleField("Offered by", coerce=int)
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    active = BooleanField("Bookable", default=True)


# The weekday names, for the catalogue (the choices below translate them).
WEEKDAY_LABELS = (
    N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
    N_("Sunday"),
)  # fmt: skip


class WindowForm(PortalForm):
    clinic_id = SelectField(_l("Clinic"), coerce=int)
    weekday = SelectField(
        _l("Day"), coerce=int, choices=[SelectChoice(i, _l(d)) for i, d in enumerate(WEEKDAYS)]
    )
    start_time = TimeField(_l("From"), validators=[InputRequired(_l("Enter the start time."))])
    end_time = TimeField(_l("Until"), validators=[InputRequired(_l("Enter the end time."))])


class WindowHoursForm(PortalForm):
    """One weekly window's new hours (its day and clinic stay)."""

    start_time = TimeField(_l("From"), validators=[InputRequired(_l("Enter the start time."))])
    end_time = TimeField(_l("Until"), validators=[InputRequired(_l("Enter the end time."))])


class LeaveForm(PortalForm):
    starts_at = DateTimeLocalField(
        _l("From"),
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired(_l("Enter when the leave starts."))],
    )
    ends_at = DateTimeLocalField(
        _l("Until"),
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired(_l("Enter when the leave ends."))],
    )
    reason = StringField(
        _l("Reason"),
        validators=[Optional(), Length(max=200)],
        render_kw={"placeholder": _l("Optional, e.g. conference")},
    )
