"""Forms of payouts: the provider's bank account or UPI id and their PAN, and the admin's
payout actions."""

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, Regexp

from portal.catalog.models import PAYOUT_SCHEDULES
from portal.domain.policy import NOTE_FLOOR
from portal.payouts import admin as payouts_admin
from portal.web.forms.base import PortalForm


class BankForm(PortalForm):
    kind = RadioField(
        _l("Pay me by"),
        default="bank_account",
        choices=[
            SelectChoice("bank_account", _l("Bank transfer (IMPS/NEFT)")),
            SelectChoice("vpa", "UPI"),
        ],
    )
    holder_name = StringField(_l("Account holder's name"))
    ifsc = StringField(
        "IFSC", render_kw={"placeholder": "HDFC0001234", "autocomplete": "off", "maxlength": 11}
    )
    account_number = StringField(
        _l("Account number"), render_kw={"inputmode": "numeric", "autocomplete": "off"}
    )
    confirm_account_number = StringField(
        _l("Account number again"), render_kw={"inputmode": "numeric", "autocomplete": "off"}
    )
    vpa = StringField(_l("UPI id"), render_kw={"placeholder": "name@bank", "autocomplete": "off"})


PAN_INPUT = {
    "autocapitalize": "characters",
    "autocomplete": "off",
    "spellcheck": "false",
    "maxlength": 20,
}


class PanForm(PortalForm):
    """A provider's own PAN, typed twice, while none is on file (``catalog.pan``: checked
    there, its one message beside the field, a length too)."""

    pan = StringField(_l("Your PAN"), render_kw=PAN_INPUT)
    confirm_pan = StringField(_l("PAN again"), render_kw=PAN_INPUT)


class ReasonForm(PortalForm):
    reason = TextAreaField(
        "Reason",
        validators=[
            InputRequired("Give a reason."),
            # The floor here; the service asks the policy's length (at least the floor).
            Length(min=NOTE_FLOOR, message=payouts_admin.MSG_REASON.format(n=NOTE_FLOOR)),
            Length(max=payouts_admin.MAX_REASON),
        ],
    )


class RunForm(PortalForm):
    schedule = SelectField(
        "Schedule", choices=[SelectChoice(s, s.title()) for s in PAYOUT_SCHEDULES]
    )


class ConfirmAmountForm(PortalForm):
    """The amount (paise, as shown on the confirmation page) an admin said yes to."""

    confirmed_amount = StringField(
        "Amount", validators=[InputRequired(), Length(max=15), Regexp(r"^\d+$")]
    )
    # What the page said goes to the bank (the amount less its TDS), where it says so.
    confirmed_net = StringField(
        "Sent to the bank", validators=[Optional(), Length(max=15), Regexp(r"^\d+$")]
    )

    @property
    def paise(self):
        return int(self.confirmed_amount.data)

    @property
    def net_paise(self):
        """The net confirmed, or None (not sent, or blank: not checked). Parsed here, not
        trusted to the Regexp: ``Optional()`` stops the validation on a blank value."""
        text = (self.confirmed_net.data or "").strip()
        return int(text) if text else None
