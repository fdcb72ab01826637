"""The top bar marks the section being shown (``portal.web.nav``)."""

import pytest
from markupsafe import Markup

from portal.web.nav import mark_current

LINKS = Markup(
    '<a href="/provider/">Today</a> <a href="/provider/schedule">Schedule</a> '
    '<a href="/provider/earnings">Earnings</a>'
)


@pytest.mark.parametrize(
    "path, current",
    [
        ("/provider/", "/provider/"),
        ("/provider/schedule", "/provider/schedule"),
        ("/provider/schedule/extra", "/provider/schedule"),
        ("/provider/earnings", "/provider/earnings"),
        # Re-read finding: a page under the home page that the bar does not name (a
        # booking's cancel page) was marked Today.
        ("/provider/bookings/7/cancel", None),
        ("/provider/schedulex", None),
    ],
)
def test_the_section_shown_is_marked_and_only_it(app, path, current):
    with app.test_request_context(path):
        marked = str(mark_current(LINKS))
    found = [href for href in ("/provider/", "/provider/schedule", "/provider/earnings")
             if f'<a href="{href}" aria-current="page"' in marked]  # fmt: skip
    assert found == ([current] if current else [])
