"""Mail about an account: a password reset link, a registration for an address that
already has an account, and a staff invitation. Queued in the
accounts use case's transaction (``portal.notify.receivers``), sent after its commit."""

from portal.accounts.models import PROVIDER, User
from portal.extensions import db
from portal.notify.mail import queue_mail


def password_reset_mail(user_id, link, minutes):
    user = db.session.get(User, user_id)
    queue_mail(
        user.email,
        "Reset your Clinic Portal password",
        f"Hello {user.name},\n\n"
        f"Someone (hopefully you) asked to reset the password of your Clinic Portal "
        f"account. Choose a new password here (the link works once, for {minutes} "
        f"minutes):\n\n{link}\n\n"
        "If you did not ask for this, ignore this mail; your password stays as it is.\n",
    )


def existing_account_mail(user_id, reset_link):
    user = db.session.get(User, user_id)
    queue_mail(
        user.email,
        "You already have a Clinic Portal account",
        f"Hello {user.name},\n\n"
        "Someone (hopefully you) tried to register a new Clinic Portal account with this "
        "address, which already has one. No new account was made. Sign in with your "
        f"password, or choose a new one here:\n\n{reset_link}\n\n"
        "If it was not you, ignore this mail; your account is unchanged.\n",
    )


def invitation_mail(user_id, invited_by_id, link, days):
    user = db.session.get(User, user_id)
    invited_by = db.session.get(User, invited_by_id)
    queue_mail(
        user.email,
        "You are invited to Clinic Portal",
        f"Hello {user.name},\n\n{invited_by.name} has invited you to Clinic Portal as "
        f"{'a provider' if user.role == PROVIDER else 'an administrator'}. Choose your "
        f"password here (the link works once, for {days} days):\n\n{link}\n",
    )


def welcome_patient_mail(user_id, added_by_id, link, days):
    """A patient the clinic added (a walk-in or a phone booking): welcome, what the account
    is for, and the link to choose a password (not a "reset": they never had one)."""
    user = db.session.get(User, user_id)
    queue_mail(
        user.email,
        "Welcome to Clinic Portal: your appointments with us",
        f"Hello {user.name},\n\n"
        "Our clinic team has made you a Clinic Portal account to book your appointment. "
        "Your bookings, payment receipts and any refunds will be there, and you can "
        "reschedule or cancel online (up to 24 hours before a visit).\n\n"
        f"Choose your password here to sign in (the link works once, for {days} days):"
        f"\n\n{link}\n\n"
        "If you did not expect this mail, ignore it: nothing is booked in your name "
        "without the clinic having spoken to you.\n",
    )
