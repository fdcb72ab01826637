"""Comparing two renders of a page: what may differ between them by design."""

import re
import time
from contextlib import contextmanager

import time_machine

# The CSRF token is signed once a request and its signature carries the second it was
# made (docs/security.md): two renders a second apart differ there, and only there. The
# layout prints it in htmx's header and in the sign-out and language forms, a form in its
# hidden field.
CSRF_TOKEN = re.compile(r'("X-CSRFToken": |name="csrf_token"[^>]*? value=)"[^"]*"')


def without_csrf(html):
    """``html`` with every CSRF token blanked, so that two renders compare equal."""
    return CSRF_TOKEN.sub(r'\1""', html)


@contextmanager
def a_second_later():
    """The clock one second on (ticking) meanwhile: a second render made within it is
    made in another second than the first, as a loaded run can make it, every time."""
    with time_machine.travel(time.time() + 1, tick=True):
        yield
