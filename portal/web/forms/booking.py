"""Forms of the booking journey (patient and operator) and of the coupons admin.

Choices that depend on the person (dependents, earlier bookings) or on the catalog are set
by the view before validation. Money typed by people goes through ``RupeesField`` (Decimal,
never float)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
    ValidationError,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.accounts.service import RELATIONSHIPS
from portal.booking.shown import start_stamp
from portal.db import utcnow
from portal.domain.dates import in_span
from portal.domain.ids import parse_id
from portal.domain.slots import LIST_DAYS_AHEAD, MSG_BEYOND_LISTED, listed_day
from portal.domain.text import Text, in_hours
from portal.web.filters import clinic_time
from portal.web.forms.base import EditVersion, PortalForm
from portal.web.forms.money import RupeesField, parse_percent_bps, parse_rupees, shown_paise

SELF = "self"
PERCENT, FLAT = "PERCENT", "FLAT"


# A service's BookingError.field → the form field the message goes beside.
FIELD_MAP = {
    "dependent_id": "person",
    "referral_id": "referral",
    "coupon": "code",
    "wallet": "wallet",
    "receipt_no": "receipt_no",
    "meet_link": "meet_link",
    "provider_ids": "providers",
    "service_id": "service",
}


def options(pairs):
    """(value, label) pairs as WTForms choices (tuples are deprecated in WTForms 3.3)."""
    return [SelectChoice(value, label) for value, label in pairs]


def referral_label(booking):
    """An earlier booking a new one may refer to, as the patient's and the admin's forms
    list it: "Consultation · Priya Sharma · 02 Mar 2026", the date the clinic's."""
    when = clinic_time(booking.start_at, booking.clinic.timezone, "%d %b %Y")
    return f"{booking.service.name} · {booking.visit.for_name} · {when}"


def _required(message):
    # Patient forms pass an _l message; the admin's forms (English pages) a plain one.
    return DataRequired(message=message)


def parse_start(text):
    """An ISO 8601 instant ("2026-03-02T04:30:00Z" or with an offset) → aware UTC, else None.
    A time without a zone is refused: the slot links always carry UTC."""
    try:
        value = datetime.fromisoformat((text or "").strip())
        if value.tzinfo is None or not in_span(value):
            return None
        return value.astimezone(UTC)
    except (ValueError, OverflowError):  # the years 0001 and 9999 leave UTC's range
        return None


def _relationship(value):
    """A dependent's relationship as the person choice names it: "child" (or in Hindi)."""
    label = dict(RELATIONSHIPS).get(value)
    return gettext(label).lower() if label else value


def person_choices(user, dependents):
    """ "For me" and each of ``dependents`` (with ``id``, ``name``, ``relationship_``), as
    (value, label) pairs."""
    return options(
        [(SELF, _l("Me (%(name)s)", name=user.name))]
        + [
            (f"dependent:{d.id}", f"{d.name} ({_relationship(d.relationship_)})")
            for d in dependents
        ]
    )


def dependent_id_of(value):
    """ "dependent:7" → 7; "self", or anything that names no dependent, → None (a refused
    choice still reaches the page shown again)."""
    if isinstance(value, str) and value.startswith("dependent:"):
        return parse_id(value.split(":", 1)[1])
    return None


def person_value(dependent_id):
    return f"dependent:{dependent_id}" if dependent_id else SELF


class BookForm(PortalForm):
    """The patient's "hold this slot" step; the slot itself travels in hidden fields."""

    provider = HiddenField(validators=[_required(_l("Enter a provider."))])
    service = HiddenField(validators=[_required(_l("Enter a service."))])
    clinic = HiddenField(validators=[_required(_l("Enter a clinic."))])
    start = HiddenField(validators=[_required(_l("Enter a start time."))])
    visit = HiddenField()
    person = SelectField(
        _l("Who is the visit for?"),
        choices=options([(SELF, _l("Me"))]),
        validators=[_required(_l("Enter who the visit is for."))],
    )
    referral = SelectField(
        _l("Referred from an earlier visit"), choices=options([("", _l("No referral"))]), default=""
    )

    def validate_start(self, field):
        if field.data and parse_start(field.data) is None:
            raise ValidationError(_l("That slot time is not valid; pick a slot again."))


class OperatorItemForm(PortalForm):
    """An operator adds one service to a patient's visit: one provider, or several for a
    team appointment; the start is typed in the clinic's local time."""

    service = SelectField("Service", coerce=int, validators=[_required("Enter a service.")])
    providers = SelectMultipleField(
        "Provider(s)",
        coerce=int,
        validators=[DataRequired(message="Choose a provider.")],
        description="Choose several for a team appointment.",
    )
    clinic = SelectField("Clinic", coerce=int, validators=[_required("Enter a clinic.")])
    date = DateField("Date", validators=[DataRequired(message="Enter the date.")])
    time = TimeField(
        "Start time (clinic time)", validators=[DataRequired(message="Enter the start time.")]
    )
    person = SelectField(
        "For",
        choices=options([(SELF, "The patient")]),
        validators=[_required("Enter who the visit is for.")],
    )
    referral = SelectField("Referred from", choices=options([("", _l("No referral"))]), default="")
    meet_link = StringField(
        "Meeting link (online services)",
        validators=[Optional(), Length(max=2048)],
        render_kw={"type": "url", "placeholder": "https://meet.google.com/…"},
    )


class MeetLinkForm(PortalForm):
    """The meeting link of an online appointment: the provider's, from the schedule's row,
    and the admin's, from the visit page (one field, templates/components/meet_link.html)."""

    meet_link = StringField(
        _l("Meeting link"),
        validators=[_required(_l("Enter the meeting link.")), Length(max=2048)],
    )


class CouponCodeForm(PortalForm):
    code = StringField(
        _l("Coupon code"),
        validators=[_required(_l("Enter a coupon code.")), Length(max=32)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters"},
    )


class WalletForm(PortalForm):
    """ "Apply wallet": a preview (GET), so no CSRF token."""

    class Meta:
        csrf = False

    wallet = RupeesField(_l("Use from wallet (₹)"))


class PayForm(PortalForm):
    wallet = RupeesField(_l("Use from wallet (₹)"))
    # What the pay button stated (paise: the wallet part and what goes online,
    # ``booking.prices.pay_quote``): other amounts at the click are refused
    # (``booking.checkout.checkout``'s ``shown``).
    shown_wallet = HiddenField()
    shown_online = HiddenField()

    def shown(self):
        """``(wallet, online)`` paise as the button stated them, or None (not carried)."""
        parts = (shown_paise(self.shown_wallet.data), shown_paise(self.shown_online.data))
        return None if None in parts else parts


class DeskPaymentForm(PortalForm):
    receipt_no = StringField(
        "Desk receipt number", validators=[_required("Enter the receipt number."), Length(max=40)]
    )
    # The amount the button stated (paise, ``booking.prices.desk_quote``); the desk payment
    # records it or nothing (``booking.checkout.record_desk_payment``'s confirmed_amount).
    amount = HiddenField()

    def confirmed_amount(self):
        return shown_paise(self.amount.data)


class NewPatientForm(PortalForm):
    name = StringField(
        "Full name", validators=[_required("Enter the patient's name."), Length(max=120)]
    )
    email = StringField(
        "Email",
        validators=[_required("Enter the patient's email address.")],
        render_kw={"type": "email"},
    )
    phone = StringField(
        "Mobile number",
        validators=[_required("Enter the patient's mobile number.")],
        render_kw={"type": "tel", "placeholder": "98123 45678"},
    )


class CouponForm(EditVersion, PortalForm):
    """Create or edit a coupon. ``value`` is a percentage (1–100) or rupees ("250.50");
    the parsed integer is left in ``value_int`` (basis points or paise)."""

    code = StringField(
        "Code",
        validators=[_required("Enter a code."), Length(max=32)],
        render_kw={"autocomplete": "off"},
    )
    description = StringField("Description", validators=[Optional(), Length(max=200)])
    kind = SelectField(
        "Kind", choices=options([(PERCENT, "Percent off"), (FLAT, "Flat amount off")])
    )
    value = StringField(
        "Value",
        validators=[_required("Enter the discount.")],
        description="Percent: 1–100. Flat: rupees, e.g. 250 or 250.50.",
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    valid_from = DateField("Valid from", validators=[Optional()])
    valid_until = DateField("Valid until", validators=[Optional()])
    max_uses = IntegerField(
        "Total uses allowed",
        validators=[
            Optional(),
            NumberRange(min=1, message="Enter 1 or more, or leave empty for no limit."),
        ],
    )
    max_uses_per_patient = IntegerField(
        "Uses per patient",
        validators=[
            Optional(),
            NumberRange(min=1, message="Enter 1 or more, or leave empty for no limit."),
        ],
    )
    active = BooleanField("Active", default=True)

    value_int = None

    def validate_value(self, field):
        try:
            if self.kind.data == PERCENT:
                bps = parse_percent_bps(field.data)
                if bps is None or not 100 <= bps <= 10_000:
                    raise ValueError("Enter a percentage from 1 to 100.")
                self.value_int = bps
            else:
                paise = parse_rupees(field.data)
                if paise is None or paise <= 0:
                    raise ValueError("Enter an amount above ₹0.")
                self.value_int = paise
        except ValueError as exc:
            self.value_int = None
            raise ValidationError(str(exc)) from None

    def validate_valid_until(self, field):
        if field.data and self.valid_from.data and field.data < self.valid_from.data:
            raise ValidationError("The end must be on or after the start.")

    def validate_max_uses_per_patient(self, field):
        if field.data and self.max_uses.data and field.data > self.max_uses.data:
            raise ValidationError("Cannot be more than the total uses allowed.")


MOVE_FIELDS = {"start_at": "slot"}  # the booking service's field → the move form's


class MoveForm(PortalForm):
    """Moving a booking: a day to list free times for, and the chosen time."""

    day = DateField(_l("Day"), validators=[Optional()])
    start = HiddenField()
    slot = RadioField(_l("New time"), choices=[], validate_choice=False)
    # The fee the page showed (paise): another one at confirmation is asked again
    # (booking.reschedule.reschedule's expected_fee).
    shown_fee = HiddenField()
    # The booking's start the page showed (seconds since the epoch, ``booking.shown``):
    # a booking moved since (another tab, the desk) is not moved again for this page
    # (``reschedule``'s ``shown_start``).
    shown_start = HiddenField()

    def confirmed_fee(self):
        """The fee the move page showed (paise), which moving confirms; None when missing
        or not a number (a tampered or hand-made post). The rule is the service's:
        ``reschedule`` asks a move without a fee again (``MSG_FEE_UNSHOWN``), for any
        caller, never charging against no figure."""
        return shown_paise(self.shown_fee.data)

    def show_start(self, item):
        """Carry the booking's start as it is now (the page states it)."""
        self.shown_start.data = str(start_stamp(item))
        return self

    def confirmed_start(self):
        """The start the move page showed (aware UTC); None when missing, not a number or
        beyond any date (a twelve-digit stamp is past year 9999: a 500 before, review
        finding), which ``reschedule`` asks again (``MSG_START_UNSHOWN``)."""
        stamp = shown_paise(self.shown_start.data)  # a whole number, as a fee's is
        try:
            return datetime.fromtimestamp(stamp, UTC) if stamp is not None else None
        except (ValueError, OverflowError, OSError):
            return None


def move_day(form, item):
    """The local day whose free times a move page lists, put in the form: the chosen one
    kept within today … ``LIST_DAYS_AHEAD`` days ahead at the clinic, tomorrow by default.
    A day asked beyond is shown as the last one, a message beside the day saying why."""
    local_today = utcnow().astimezone(ZoneInfo(item.clinic.timezone)).date()
    asked = form.day.data if isinstance(form.day.data, date) else None
    day = listed_day(asked or local_today + timedelta(days=1), local_today)
    if asked is not None and asked > day:
        form.day.raw_data = None  # the date input shows the day listed, not the one asked
        form.day.errors = [*form.day.errors, Text(MSG_BEYOND_LISTED, days=LIST_DAYS_AHEAD)]
    form.day.data = day
    return day


class PatientMoveForm(MoveForm):
    pay_with = RadioField(
        _l("Pay the fee with"),
        choices=options([("wallet", _l("My wallet")), ("gateway", _l("Pay online"))]),
        validate_choice=False,
    )


class AdminMoveForm(MoveForm):
    override = BooleanField("Override the cut-off")  # named from the policy in __init__
    pay_with = RadioField(
        _l("Pay the fee with"),
        choices=options([("wallet", "The patient's wallet"), ("desk", "Paid at the desk")]),
        validators=[Optional()],
    )  # a zero fee needs none; anything else is refused
    receipt_no = StringField("Desk receipt number", validators=[Optional(), Length(max=64)])

    def __init__(self, *args, policy, **kwargs):
        """``policy``: the one the booking is moved under (``store.for_booking``): the box
        names its cut-off ("Override the 24-hour rule" by default)."""
        super().__init__(*args, **kwargs)
        hours = in_hours(policy.reschedule_min_notice)
        self.override.label.text = f"Override the {hours}-hour rule"
