"""The transactions console's filter form (a GET form: its values live in the URL).

Every value is checked here and refused with a message beside its field: an unknown
type or status, a malformed date, a range over a year, an amount that is not rupees. Query
keys the console does not know are refused too (``unknown_keys``), so a mistyped bookmark
says so instead of silently showing everything."""

from datetime import date

from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from portal.domain.dates import in_span
from portal.domain.ids import is_digits
from portal.domain.states import (
    AdjustmentStatus,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
    RescheduleStatus,
)
from portal.transactions import filters as tf
from portal.transactions import references
from portal.transactions.models import TYPES
from portal.web.forms.base import PortalForm
from portal.web.forms.money import parse_rupees

STATUSES = sorted(
    {*PaymentStatus, *RefundStatus, *PayoutStatus, *RescheduleStatus, *AdjustmentStatus, "POSTED"},
    key=str,
)
KNOWN_KEYS = {
    "type",
    "status",
    "preset",
    "from",
    "to",
    "party",
    "visit",
    "reference",
    "recon",
    "min",
    "max",
    "after",
    "before",
    "per_page",
}
REFERENCE_MESSAGE = (
    "Enter a Razorpay id (pay_…, order_…, plink_…, rfnd_…, pout_…, setl_…), a visit number "
    "(V000123), an invoice (CP/26-27/000001) or a credit note (CN/26-27/000001)."
)
DATE_MESSAGE = "Enter a date as YYYY-MM-DD, e.g. 2026-04-01."


def unknown_keys(args):
    return sorted(k for k in args if k not in KNOWN_KEYS)


def _choices(values, all_label):
    return [SelectChoice("", all_label)] + [SelectChoice(v, label) for v, label in values]


class TransactionFilterForm(PortalForm):
    class Meta:
        csrf = False  # a GET form that changes nothing

    type = SelectField("Type", choices=_choices(TYPES.items(), "All types"), validate_choice=False)
    status = SelectField(
        "Status",
        choices=_choices([(s, s.replace("_", " ").lower()) for s in STATUSES], "Any status"),
        validate_choice=False,
    )
    preset = SelectField(
        "Period", choices=_choices(tf.PRESETS.items(), "Dates below"), validate_choice=False
    )
    # "from" is a Python keyword: the attribute is from_, its query key "from".
    from_ = StringField(
        "From", name="from", validators=[Length(max=10)], render_kw={"type": "date"}
    )
    to = StringField("To", validators=[Length(max=10)], render_kw={"type": "date"})
    party = StringField(
        "Patient or provider",
        validators=[Length(max=100)],
        render_kw={"placeholder": "name or e-mail"},
    )
    visit = StringField(
        "Visit number", validators=[Length(max=16)], render_kw={"placeholder": "V000123"}
    )
    reference = StringField(
        "Reference (Razorpay id or invoice no.)",
        validators=[Length(max=64)],
        render_kw={"placeholder": "pay_…, order_…, plink_…, rfnd_…, pout_…, CP/…"},
    )
    recon = SelectField(
        "Reconciliation",
        choices=_choices([(s, s) for s in tf.RECON_STATUSES], "Any"),
        validate_choice=False,
    )
    min = StringField("Amount from (₹)", validators=[Length(max=20)])
    max = StringField("Amount to (₹)", validators=[Length(max=20)])

    def _one_of(self, field, allowed, what):
        if field.data and field.data not in allowed:
            field.errors.append(f"Unknown {what} {field.data!r}.")
            return False
        return True

    def _date(self, field):
        text = (field.data or "").strip()
        if not text:
            return None
        try:
            day = date.fromisoformat(text) if len(text) == 10 else _bad()
            return day if in_span(day) else _bad()
        except ValueError:
            field.errors.append(DATE_MESSAGE)
            return False

    def _amount(self, field):
        try:
            value = parse_rupees(field.data)
        except ValueError as exc:
            field.errors.append(str(exc))
            return False
        if value is not None and value < 0:
            field.errors.append("Enter an amount of zero or more.")
            return False
        return value

    def _reference(self):
        text = (self.reference.data or "").strip()
        if not text:
            return None
        ref = references.parse(text)
        if ref is None:
            self.reference.errors.append(REFERENCE_MESSAGE)
            return False
        return ref

    def to_filter(self, today):
        """A ``MovementFilter`` when every value is good, else None (messages on the
        fields). Call after ``validate()``."""
        ok = self._one_of(self.type, TYPES, "type")
        ok &= self._one_of(self.status, STATUSES, "status")
        ok &= self._one_of(self.preset, tf.PRESETS, "period")
        ok &= self._one_of(self.recon, tf.RECON_STATUSES, "reconciliation status")
        start, end = self._date(self.from_), self._date(self.to)
        low, high = self._amount(self.min), self._amount(self.max)
        reference = self._reference()
        pasted = references.parse(self.party.data)
        if pasted is not None and pasted.is_gateway:
            # a Razorpay id is no one's name: say where it goes instead of finding nothing
            self.party.errors.append("That is a Razorpay id: enter it under Reference.")
        if False in (start, end, low, high, reference) or not ok or self.errors:
            return None
        typed = start is not None or end is not None
        start, end = tf.window_for(start, end, self.preset.data, today, reference=bool(reference))
        if start is None:
            self.preset.data = ""  # a reference's every date, not the select's period
        elif not typed and not self.preset.data:
            self.preset.data = tf.DEFAULT_PRESET
        visit = (self.visit.data or "").strip().upper()
        if is_digits(visit) and len(visit) <= 12:
            visit = f"V{int(visit):06d}"
        try:
            return tf.MovementFilter(
                start=start,
                end=end,
                type=self.type.data or None,
                status=self.status.data or None,
                party=(self.party.data or "").strip() or None,
                visit_number=visit or None,
                reference=reference.text if reference else None,
                recon=self.recon.data or None,
                min_amount=low,
                max_amount=high,
            )
        except tf.FilterError as exc:
            target = self.min if "amount" in str(exc) else self.from_
            target.errors.append(str(exc))
            return None

    def args(self):
        """The filter's query keys (for the pager and links), empty ones left out."""
        out = {
            "type": self.type.data,
            "status": self.status.data,
            "preset": self.preset.data if not (self.from_.data or self.to.data) else None,
            "from": self.from_.data,
            "to": self.to.data,
            "party": self.party.data,
            "visit": self.visit.data,
            "reference": (self.reference.data or "").strip(),
            "recon": self.recon.data,
            "min": self.min.data,
            "max": self.max.data,
        }
        return {k: v for k, v in out.items() if v}


def _bad():
    raise ValueError
