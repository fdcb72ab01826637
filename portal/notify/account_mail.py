"""Mail about an account: a password reset link, a registration for an address that
already has an account, and a staff invitation. Queued in the
accounts use case's transaction (``portal.notify.receivers``), sent after its commit.

Each is written in the account's language (``users.language``, docs/i18n.md): a user who
chose Hindi gets them in Hindi; one who never chose (an invitation to a new user) in
English.

Each records whom it was for (``user_id`` and a ``kind`` on its delivery), as every other
mail to a user does: what a user was sent is read by their id (``notify.queries.sent_to``,
their data download; ``notify.closure`` at closure), never by the address they have now."""

from flask_babel import gettext as _

from portal.accounts.models import PROVIDER, User
from portal.config import policy
from portal.domain.text import in_hours
from portal.extensions import db
from portal.notify.mail import queue_mail
from portal.notify.wording import speaking_to


def password_reset_mail(user_id, link, minutes):
    user = db.session.get(User, user_id)
    with speaking_to(user.id):
        subject = _("Reset your Clinic Portal password")
        text = _(
            "Hello %(name)s,\n\n"
            "Someone (hopefully you) asked to reset the password of your Clinic Portal "
            "account. Choose a new password here (the link works once, for %(minutes)s "
            "minutes):\n\n%(link)s\n\n"
            "If you did not ask for this, ignore this mail; your password stays as it is.\n",
            name=user.name, minutes=minutes, link=link,
        )  # fmt: skip
    queue_mail(user.email, subject, text, kind="password_reset", user_id=user.id)


def existing_account_mail(user_id, reset_link):
    user = db.session.get(User, user_id)
    with speaking_to(user.id):
        subject = _("You already have a Clinic Portal account")
        text = _(
            "Hello %(name)s,\n\n"
            "Someone (hopefully you) tried to register a new Clinic Portal account with this "
            "address, which already has one. No new account was made. Sign in with your "
            "password, or choose a new one here:\n\n%(link)s\n\n"
            "If it was not you, ignore this mail; your account is unchanged.\n",
            name=user.name, link=reset_link,
        )  # fmt: skip
    queue_mail(user.email, subject, text, kind="existing_account", user_id=user.id)


def invitation_mail(user_id, invited_by_id, link, days):
    user = db.session.get(User, user_id)
    invited_by = db.session.get(User, invited_by_id)
    with speaking_to(user.id):
        subject = _("You are invited to Clinic Portal")
        if user.role == PROVIDER:
            invited = _(
                "%(inviter)s has invited you to Clinic Portal as a provider.",
                inviter=invited_by.name,
            )
        else:
            invited = _(
                "%(inviter)s has invited you to Clinic Portal as an administrator.",
                inviter=invited_by.name,
            )
        text = (
            _("Hello %(name)s,", name=user.name)
            + "\n\n"
            + invited
            + " "
            + _(
                "Choose your password here (the link works once, for %(days)s days):",
                days=days,
            )
            + f"\n\n{link}\n"
        )
    queue_mail(user.email, subject, text, kind="invitation", user_id=user.id)


def welcome_patient_mail(user_id, added_by_id, link, days):
    """A patient the clinic added (a walk-in or a phone booking): welcome, what the account
    is for, and the link to choose a password (not a "reset": they never had one). In the
    patient's language; the online cut-offs are the policy's (never typed-in hours)."""
    user = db.session.get(User, user_id)
    rules = policy()
    with speaking_to(user_id):
        subject = _("Welcome to Clinic Portal: your appointments with us")
        text = "\n\n".join(
            [
                _("Hello %(name)s,", name=user.name),
                _(
                    "Our clinic team has made you a Clinic Portal account to book your "
                    "appointment. Your bookings, payment receipts and any refunds will be "
                    "there. You can reschedule online up to %(move)s hours before a visit, "
                    "and cancel online up to %(cancel)s hours before it.",
                    move=in_hours(rules.reschedule_min_notice),
                    cancel=in_hours(rules.patient_cancellation_cut_off),
                ),
                _(
                    "Choose your password here to sign in (the link works once, for "
                    "%(days)s days):",
                    days=days,
                ),
                link,
                _(
                    "If you did not expect this mail, ignore it: nothing is booked in your "
                    "name without the clinic having spoken to you."
                ),
            ]
        )
    queue_mail(user.email, subject, text + "\n", kind="welcome", user_id=user.id)
