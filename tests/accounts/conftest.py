"""Helpers for the accounts tests: reading the mail the portal sent, and a rate-limited app."""

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db, limiter
from portal.notify.models import MailMessage


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
    """A twin of the session app with rate limiting on (3 sign-in attempts a minute).

    The session app is built with RATELIMIT_ENABLED off, and Flask-Limiter then skips its
    setup, so flipping the config later would change nothing: build a second app on the same
    database with it on, and switch the shared limiter off again afterwards."""
    config = dict(app.config)
    config.update(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    limited = create_app(config)
    try:
        yield limited
    finally:
        limiter.enabled = False
        with limited.app_context():
            db.session.remove()
            db.engine.dispose()
