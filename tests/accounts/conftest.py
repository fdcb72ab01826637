"""Helpers for the accounts tests: reading the mail the portal sent, and a rate-limited app."""

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.notify.models import MailMessage
from tests.plugin import rate_limited


@pytest.fixture
def mailbox(app):
    """mailbox(to) → the mails sent to that address, oldest first."""

    def read(to):
        with app.app_context():
            rows = db.session.scalars(
                sa.select(MailMessage).where(MailMessage.to == to).order_by(MailMessage.id)
            )
            mails = [(m.subject, m.text, m.status) for m in rows]
            db.session.remove()
            return mails

    return read


@pytest.fixture
def limited_app(app):
    """A twin of the session app with rate limiting on (3 sign-in attempts a minute)."""
    with rate_limited(app, LOGIN_RATE_LIMIT="3 per minute") as limited:
        yield limited
