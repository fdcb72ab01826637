"""Forms of manual wallet adjustments and of the approvals queue's decisions."""

import re
import secrets

from wtforms import HiddenField, RadioField, StringField, TextAreaField, ValidationError
from wtforms.validators import Length

from portal.wallet import cash
from portal.web.forms.base import PortalForm
from portal.web.forms.booking import options
from portal.web.forms.money import RUPEE_MESSAGE, RupeesField, parse_rupees

MSG_EMPTY = "Enter the amount."
MSG_ZERO = "Enter an amount above ₹0."
MSG_NEGATIVE_ZERO = "−0 is not an amount: enter an amount above ₹0."
MSG_SIGN = "Enter the amount without a sign, and choose credit or debit."
# The cash form has no direction to choose (money only goes out): re-read finding.
MSG_SIGN_CASH = "Enter the amount handed over, without a sign."
MSG_SIGN_BANK = "Enter the amount transferred, without a sign."
MSG_DECIMALS = "Use at most two decimals (rupees and paise), e.g. 1500.50."
_DECIMALS = re.compile(r"\.\d{3,}\s*$")
_MINUS = ("-", "−", "–")


class AdjustmentAmountField(RupeesField):
    """A positive rupee amount with at most two decimals; the direction is chosen apart,
    so a sign (including "-0") is refused with its own message (``sign_message``: the
    form's own words for it)."""

    def __init__(self, label=None, validators=None, sign_message=MSG_SIGN, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.sign_message = sign_message

    def pre_validate(self, form):
        self.paise = None
        text = (self.data or "").strip()
        if not text:
            raise ValidationError(MSG_EMPTY)
        signed = text.startswith(_MINUS)
        if _DECIMALS.search(text):
            raise ValidationError(MSG_DECIMALS)
        try:
            paise = parse_rupees(text.lstrip("".join(_MINUS)).lstrip("+") if signed else text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if paise is None:
            raise ValidationError(RUPEE_MESSAGE)
        if signed:
            raise ValidationError(MSG_NEGATIVE_ZERO if paise == 0 else self.sign_message)
        if paise <= 0:
            raise ValidationError(MSG_ZERO)
        self.paise = paise


class AdjustmentForm(PortalForm):
    direction = RadioField(
        "Adjustment",
        choices=options([("credit", "Credit (add to the wallet)"), ("debit", "Debit (take out)")]),
        validate_choice=False,
    )
    amount = AdjustmentAmountField("Amount (₹)")
    public_reason = StringField(
        "Reason the patient sees", validators=[Length(max=200)], render_kw={"maxlength": 200}
    )
    note = TextAreaField("Internal note (audit trail)")  # its length: the policy's, in the message
    token = HiddenField()

    def fresh_token(self):
        """A new one-time token for a form about to be shown empty (a double submit of the
        same form makes one adjustment)."""
        self.token.data = secrets.token_urlsafe(16)
        return self


class CashPayoutForm(PortalForm):
    """Paying the wallet's balance out in cash at the desk (``portal.wallet.cash``); on the
    wallet page beside the adjustment form, so its fields are prefixed ``cash-``."""

    amount = AdjustmentAmountField("Amount handed over (₹)", sign_message=MSG_SIGN_CASH)
    receipt_no = StringField(
        "Desk receipt number",
        validators=[Length(max=cash.RECEIPT_MAX)],
        render_kw={"maxlength": cash.RECEIPT_MAX},
    )
    note = TextAreaField("Internal note (audit trail)")  # its length: the policy's, in the message
    token = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="cash", **kwargs)

    fresh_token = AdjustmentForm.fresh_token


class BankPayoutForm(PortalForm):
    """Recording the wallet's balance sent to the patient's bank account by the clinic's
    bank (``portal.wallet.bank``); on the wallet page beside the other two, so its fields
    are prefixed ``bank-``. The UTR's shape is the use case's rule (its message)."""

    amount = AdjustmentAmountField("Amount transferred (₹)", sign_message=MSG_SIGN_BANK)
    utr = StringField("Bank's transfer reference (UTR)", render_kw={"maxlength": 40})
    note = TextAreaField("Internal note (audit trail)")  # its length: the policy's, in the message
    token = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="bank", **kwargs)

    fresh_token = AdjustmentForm.fresh_token


class DecisionForm(PortalForm):
    note = StringField("Note", validators=[Length(max=500)])
