"""Errors the booking services raise. Messages are POLICY.md's where it gives one."""

from portal.accounts.service import NotFound, PermissionDenied  # noqa: F401  (re-exported)
from portal.domain.slots import MSG_TAKEN
from portal.i18n import N_

# A checkout's return that did not pay (a visit's or a reschedule fee's): fixed texts, never
# the request's. The first two complete "Payment not completed: %(reason)s" as its reason,
# so neither says that again.
MSG_BAD_SIGNATURE = N_("We could not verify this payment")
MSG_NOT_PAID = N_("It was declined or cancelled at the checkout")
MSG_CONFIRMING = N_(
    "We are still confirming your payment with the bank; check back in a few minutes"
)


class BookingError(Exception):
    """A booking rule was broken; ``message`` is for the person, ``field`` the form field."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class SlotUnavailable(BookingError):
    def __init__(self, message=MSG_TAKEN, field="start_at"):
        super().__init__(message, field)

    @property
    def taken(self):
        """Someone else holds the time (the provider's claim), rather than the person
        being busy elsewhere then: the answer points to other times, not to the form."""
        return self.message == MSG_TAKEN


# A hold (or a late payment's revival) for an account closed at that very moment: the
# claims' trigger refuses it once the closure has committed (claims.py, docs/privacy.md).
MSG_ACCOUNT_CLOSED = N_(
    "This account was closed just now, so the appointment was not booked. To book again, "
    "register a new account (the same e-mail address can be used)."
)


class AccountClosed(BookingError):
    def __init__(self, message=MSG_ACCOUNT_CLOSED):
        super().__init__(message)


# The same for an account an administrator deactivated at that very moment (the desk's
# hold, or the patient's own in a tab still open): refused as a closed one is.
MSG_ACCOUNT_DEACTIVATED = N_(
    "This account was deactivated just now, so the appointment was not booked. Ask the "
    "clinic to reactivate it."
)


class AccountDeactivated(BookingError):
    def __init__(self, message=MSG_ACCOUNT_DEACTIVATED):
        super().__init__(message)


class PaymentError(BookingError):
    """A payment could not be verified or taken (bad signature, gateway refused)."""
