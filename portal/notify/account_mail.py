"""Mail about an account: a password reset link and a staff invitation. Queued in the
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
