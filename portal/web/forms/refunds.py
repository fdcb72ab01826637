"""Forms of cancellations and refunds: the patient's, the provider's and the admin's."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from portal.refunds.previews import admin_modes
from portal.web.forms.base import PortalForm
from portal.web.forms.booking import options
from portal.web.forms.money import RupeesField, shown_paise

ORIGINAL, WALLET = "original", "wallet"


class CancelForm(PortalForm):
    items = SelectMultipleField(
        _l("Appointments to cancel"), choices=[], coerce=int, validate_choice=False
    )
    destination = RadioField(
        _l("Refund to"),
        default=ORIGINAL,
        choices=options(
            [
                (ORIGINAL, _l("The original payment method")),
                (WALLET, _l("My Clinic Portal wallet (instant)")),
            ]
        ),
    )
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional(), Length(max=500)])
    # The total refund the preview showed (paise): a different one at confirmation is asked
    # again (refunds.cancel.cancel_items_as_patient's expected_refund). ``shown_for``: the
    # choice it was shown for (``choice``).
    shown_refund = HiddenField()
    shown_for = HiddenField()

    def choice(self):
        """What the refund depends on: the appointments chosen."""
        return ",".join(str(i) for i in sorted(self.items.data or []))

    def shown_total(self):
        """The refund shown for this very choice (paise), else None: a refund shown for
        another choice (a page without JavaScript, its preview drawn for the first one)
        is no refund shown, so the person is asked again, never told it "changed"."""
        if self.shown_for.data and self.shown_for.data != self.choice():
            return None
        return shown_paise(self.shown_refund.data)


class ProviderCancelForm(PortalForm):
    # Required (refunds.cancel refuses an empty one); the label says so before it is sent.
    reason = TextAreaField(
        _l("Reason (required; the patient sees it)"), validators=[Length(max=2000)]
    )


class AdminCancelForm(PortalForm):
    mode = RadioField("Cancelled", default="patient", choices=[])
    penalty_provider = SelectField("Provider who cancelled", choices=[], validate_choice=False)
    override = RupeesField("Refund amount (optional override, ₹)")
    destination = RadioField(
        _l("Refund to"),
        default="original",
        choices=options(
            [("original", _l("The original payment method")), ("wallet", "The patient's wallet")]
        ),
    )
    reason = TextAreaField("Reason", validators=[Length(max=2000)])
    # The refund the page showed (paise): another one at confirmation, or none, is asked
    # again, as the patient's is (refunds.cancel.cancel_as_admin's required
    # expected_refund).
    shown_refund = HiddenField()
    shown_for = HiddenField()
    shown_total = CancelForm.shown_total

    def override_paise(self):
        """The override typed (paise), or None (none, or not a valid amount)."""
        return self.override.paise if not self.override.errors else None

    def choice(self):
        """What the refund depends on: the mode and the override typed."""
        override = self.override_paise()
        return f"{self.mode.data or 'patient'}:{'' if override is None else override}"

    def __init__(self, *args, policy, until_start=None, **kwargs):
        """``policy``: the one the booking is cancelled under (``store.for_booking``);
        ``until_start``: the booking's time left, so the patient option names its tier."""
        super().__init__(*args, **kwargs)
        self.mode.choices = options(admin_modes(policy, until_start))


class FurtherRefundForm(PortalForm):
    """More money back for a cancelled booking; a second administrator approves it."""

    amount = RupeesField("Further refund (₹)")
    destination = RadioField(
        _l("Refund to"),
        default="same",
        choices=options(
            [
                ("same", "As chosen at cancellation"),
                ("original", _l("The original payment method")),
                ("wallet", "The patient's wallet"),
            ]
        ),
    )
    reason = TextAreaField("Reason", validators=[Length(max=2000)])

    def prefer_wallet(self):
        return {"wallet": True, "original": False}.get(self.destination.data)


class NoteForm(PortalForm):
    note = StringField("Note", validators=[Optional(), Length(max=500)])


class SettleForm(NoteForm):
    """A failed refund settled against a dashboard refund (``refunds.outside``): the note
    (the use case asks its length) and what the page said goes to the wallet."""

    shown_to_wallet = StringField("To the wallet", validators=[Optional(), Length(max=15)])

    @property
    def shown(self):
        """The paise the page showed going to the wallet, or None (missing, unreadable)."""
        text = (self.shown_to_wallet.data or "").strip()
        return int(text) if text.isascii() and text.isdigit() else None
