"""Forms of payouts: the provider's bank account or UPI id, and the admin's payout actions."""

from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Regexp

from portal.catalog.models import PAYOUT_SCHEDULES
from portal.payouts import admin as payouts_admin
from portal.web.forms.base import PortalForm


class BankForm(PortalForm):
    kind = RadioField(
        "Pay me by",
        default="bank_account",
        choices=[
            SelectChoice("bank_account", "Bank transfer (IMPS/NEFT)"),
            SelectChoice("vpa", "UPI"),
        ],
    )
    holder_name = StringField("Account holder's name")
    ifsc = StringField(
        "IFSC", render_kw={"placeholder": "HDFC0001234", "autocomplete": "off", "maxlength": 11}
    )
    account_number = StringField(
        "Account number", render_kw={"inputmode": "numeric", "autocomplete": "off"}
    )
    confirm_account_number = StringField(
        "Account number again", render_kw={"inputmode": "numeric", "autocomplete": "off"}
    )
    vpa = StringField("UPI id", render_kw={"placeholder": "name@bank", "autocomplete": "off"})


class ReasonForm(PortalForm):
    reason = TextAreaField(
        "Reason",
        validators=[
            InputRequired("Give a reason."),
            Length(min=10, message=payouts_admin.MSG_REASON),
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

    @property
    def paise(self):
        return int(self.confirmed_amount.data)
