"""What the browser shows when a limit stops a form (re-read finding).

Review I made the reset-link / registration limit page say the limit's own wait ("Please
try again in an hour." for 5 per hour) instead of "wait a minute". The forgot-password
and registration forms are boosted (base.html's ``hx-boost="true"``, the forms do not opt
out as sign-in's and close-account's do), so the browser sends them through htmx. The
page's htmx-config does not swap a 429 ("[45].." swap false): the portal's page with the
right wait is thrown away and portal.js shows its fixed data-429 text, "Too many
attempts. Wait a minute and try again." — the false wait review I removed.

The test plays htmx's part: it reads the htmx-config and the form from the page the
person is on, and checks that what the browser would then show says the limit's wait."""

import json
import re

import pytest

from tests.plugin import rate_limited
from tests.security.test_limit_and_method_pages import LIMITED_FORMS


def _response_handling(page):
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'", page).group(1)
    return json.loads(config)["responseHandling"]


def _swaps(rules, status):
    # htmx 2: the first rule whose code (a regular expression) matches the status.
    for rule in rules:
        if re.search(rule["code"], str(status)):
            return rule.get("swap", False)
    return False


def _form_is_boosted(page, action):
    pattern = r"<form[^>]*action=\"" + re.escape(action) + r"[^\"]*\"[^>]*>"
    form = re.search(pattern, page).group(0)
    body_boosts = re.search(r"<body[^>]*hx-boost=\"true\"", page) is not None
    return body_boosts and 'hx-boost="false"' not in form


@pytest.mark.parametrize("path,data", LIMITED_FORMS)
def test_a_limited_boosted_form_tells_the_limits_own_wait(app, path, data):
    with rate_limited(app, PASSWORD_RESET_RATE_LIMIT="1 per hour") as limited:
        client = limited.test_client()
        form_page = client.get(path).get_data(as_text=True)
        boosted = _form_is_boosted(form_page, path)
        headers = (
            {
                "HX-Request": "true",
                "HX-Boosted": "true",
                "HX-Current-URL": f"http://localhost{path}",
            }
            if boosted
            else {}
        )
        client.post(path, data=data, headers=headers)
        response = client.post(path, data=data, headers=headers)
    assert response.status_code == 429
    if boosted:
        # What htmx does with the answer: swapped (the portal's page is shown), or not
        # (portal.js shows data-429 of the page the person is on).
        if _swaps(_response_handling(form_page), response.status_code):
            shown = response.get_data(as_text=True)
        else:
            shown = re.search(r'data-429="([^"]*)"', form_page).group(1)
    else:
        shown = response.get_data(as_text=True)
    assert "Please try again in an hour." in shown, shown[:400]
    # Every page carries portal.js's fallback words (data-429); what it says is its main.
    main = re.search(r"<main.*?</main>", shown, re.S)
    assert "Wait a minute" not in (main.group(0) if main else shown)
