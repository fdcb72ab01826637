"""What a person stopped by a rate limit is told about waiting: the limit's own window
("5 per hour" → "Please try again in an hour."), not a fixed "a minute" whatever was
configured. The window is the longest wait (the count starts again at the latest then)."""

from flask import has_request_context
from flask_babel import gettext, ngettext

from portal.extensions import limiter

MINUTE, HOUR, DAY = 60, 3600, 86400


def _whole(seconds, unit):
    return -(-seconds // unit)  # rounded up: never promise less than the wait


def wait_sentence(seconds):
    """ "Please try again in …" for a window of ``seconds``, in the reader's language."""
    seconds = max(int(seconds), 1)
    if seconds <= MINUTE:
        return gettext("Please try again in a minute.")
    if seconds < HOUR:
        n = _whole(seconds, MINUTE)
        return ngettext(
            "Please try again in %(num)d minute.", "Please try again in %(num)d minutes.", n
        )
    if seconds == HOUR:
        return gettext("Please try again in an hour.")
    if seconds < DAY:
        n = _whole(seconds, HOUR)
        return ngettext(
            "Please try again in %(num)d hour.", "Please try again in %(num)d hours.", n
        )
    if seconds == DAY:
        return gettext("Please try again in a day.")
    n = _whole(seconds, DAY)
    return ngettext("Please try again in %(num)d day.", "Please try again in %(num)d days.", n)


def _seconds(item):
    return item.get_expiry() if hasattr(item, "get_expiry") else MINUTE


def wait_for(breach):
    """The sentence for the limit a request broke: a ``RateLimitExceeded`` (its ``.limit``
    a Flask-Limiter ``RuntimeLimit`` holding the ``limits`` item as ``.limit``) or an
    ``on_breach``'s ``RequestLimit`` (its ``.limit`` the item); a minute when none is told.
    Of a limit of several windows, the longest spent one (every window is counted:
    ``RATELIMIT_FAIL_ON_FIRST_BREACH`` off): waiting the shortest would be refused again."""
    item = getattr(breach, "limit", None)
    seconds = _seconds(getattr(item, "limit", item))
    if has_request_context():
        spent = [r.limit for r in (limiter.current_limits or ()) if r.breached]
        seconds = max([seconds, *map(_seconds, spent)])
    return wait_sentence(seconds)
