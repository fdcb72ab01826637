"""The policy edit form: one text field per value of the policy, typed in the units people
use (₹, %, hours, minutes) and turned into the domain's (paise, basis points, seconds),
each read by the rules of every typed number (``numbers.read``: what the page refuses for
₹ it refuses for hours). The form checks only that each value parses; whether the whole
is a valid policy (percentages up to 100, tiers in order …) is
``portal.domain.policy_data.problems``, whose messages the view puts beside the same
fields.

A field's name is its value's path with ``__`` for ``.``
(``patient_cancellation_tiers__1__refund_bps``). The fields, their labels and units are
``portal.policies.describe.SPEC`` (the approvals queue describes a change by the same)."""

from __future__ import annotations

from wtforms import DateTimeLocalField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from portal.domain.ids import is_digits
from portal.domain.policy import GST_MODES, PAYOUT_SCHEDULES
from portal.domain.policy_data import FLOOR_SOURCES, FLOORS, flatten, second_admin_decides
from portal.policies.describe import SPEC, UNIT_SECONDS, to_text
from portal.web.forms.base import PortalForm
from portal.web.forms.booking import options
from portal.web.forms.money import (
    PERCENT_MESSAGE,
    RUPEE_MESSAGE,
    parse_percent_bps,
    parse_rupees,
)
from portal.web.forms.numbers import MSG_DECIMAL, parse_decimal

MSG_NUMBER = MSG_DECIMAL
MSG_WHOLE = "Enter a whole number."
MSG_LIST = "Enter whole minutes separated by commas, e.g. 1440, 60, 15."
MSG_TIME = "Enter a time of day as HH:MM."
HINT_SECOND_ADMIN = "A change needs a second administrator."
HINT_FLOOR = "At least {floor} ({source})."


def field_name(path: str) -> str:
    return path.replace(".", "__")


def _seconds(text, unit):
    """A duration typed in ``unit`` as whole seconds. Read by the rules every typed number
    follows (``numbers.parse_decimal``: no exponent, underscore or other script's digits,
    at most 20 digits), so the product is exact and small; whether it is too long for its
    field is the domain's rule (``policy_data._LONGEST``), said beside the field."""
    value = parse_decimal(text)
    if value is None:
        raise ValueError(MSG_NUMBER)
    seconds = value * UNIT_SECONDS[unit]
    if seconds != seconds.to_integral_value():
        raise ValueError(MSG_NUMBER)
    return int(seconds)


def from_text(kind, text):
    """What the person typed, in the domain's units; ValueError with a message."""
    text = (text or "").strip()
    if kind == "percent":
        value = parse_percent_bps(text)
        if value is None:
            raise ValueError(PERCENT_MESSAGE)
        return value
    if kind == "rupees":
        value = parse_rupees(text)
        if value is None:
            raise ValueError(RUPEE_MESSAGE)
        return value
    if kind in UNIT_SECONDS:
        return _seconds(text, kind)
    if kind == "count":
        # ASCII only (portal.domain.ids): "²".isdigit() is True, but int("²") raises.
        if not is_digits(text.removeprefix("-")) or len(text) > 9:
            raise ValueError(MSG_WHOLE)
        return int(text)
    if kind == "minutes_list":
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return [_seconds(p, "minutes") for p in parts]
        except ValueError:
            raise ValueError(MSG_LIST) from None
    if kind == "domains":
        return [p.strip().lower() for p in text.replace(" ", ",").split(",") if p.strip()]
    return text


def _field(kind, label):
    if kind == "gst_mode":
        labels = {
            "platform_only": "The platform fee (and fees of taxable services)",
            "fee_and_platform": "Fee and platform fee, every service (the seeds' formula)",
        }
        return SelectField(label, choices=options([(m, labels.get(m, m)) for m in GST_MODES]))
    if kind == "schedule":
        return SelectField(label, choices=options([(s, s.title()) for s in PAYOUT_SCHEDULES]))
    return StringField(label, validators=[Length(max=500)])


class _Base(PortalForm):
    effective_from = DateTimeLocalField(
        "Effective from (clinic time; empty = now)",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )
    reason = TextAreaField("Why (kept in the audit log)", validators=[Length(max=500)])
    # The version the form was filled from: saving it over a newer one would undo that.
    base_version = HiddenField(validators=[Length(max=12)])

    def base_version_id(self):
        """The version id the form was filled from, or None (not sent: not checked)."""
        text = (self.base_version.data or "").strip()
        return int(text) if is_digits(text) else None


PolicyForm = type(
    "PolicyForm",
    (_Base,),
    {field_name(path): _field(kind, label) for _, path, label, kind in SPEC},
)


def sections():
    """[(section, [field names])] in SPEC order, for the template."""
    out: list[tuple[str, list[str]]] = []
    for section, path, _, _ in SPEC:
        if not out or out[-1][0] != section:
            out.append((section, []))
        out[-1][1].append(field_name(path))
    return out


def hints():
    """{field name: hint} from the domain's rules, so the form says them where they apply:
    a value with a floor (POLICY.md's, or Razorpay's), and the values a second
    administrator decides (``policy_data.second_admin_decides``, the rule
    ``service.propose`` applies)."""
    out = {}
    for _, path, _, kind in SPEC:
        parts = []
        if path in FLOORS:  # in the field's own unit (15 minutes, not 900 seconds)
            floor = to_text(kind, FLOORS[path])
            parts.append(HINT_FLOOR.format(floor=floor, source=FLOOR_SOURCES[path]))
        if second_admin_decides(path):
            parts.append(HINT_SECOND_ADMIN)
        if parts:
            out[field_name(path)] = " ".join(parts)
    return out


def form_for(data: dict, version_id=None):
    """The form filled with a version's values (``policy_data.to_data``)."""
    flat = flatten(data)
    values = {} if version_id is None else {"base_version": str(version_id)}
    for _, path, _, kind in SPEC:
        if path in flat:
            values[field_name(path)] = to_text(kind, flat[path])
    return PolicyForm(formdata=None, data=values)


def changes_from(form) -> tuple[dict, dict]:
    """(flat changes in domain units, {field name: message}) from a submitted form."""
    changes, errors = {}, {}
    for _, path, _, kind in SPEC:
        name = field_name(path)
        try:
            changes[path] = from_text(kind, form[name].data)
        except ValueError as exc:
            errors[name] = str(exc)
    return changes, errors
