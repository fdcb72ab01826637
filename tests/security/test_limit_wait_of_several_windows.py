"""The wait said (re-read finding) for a limit of several windows ("10 per minute;50 per hour",
Flask-Limiter notation the settings accept). Flask-Limiter tests the shortest window
first and stops at the first it finds spent (``RATELIMIT_FAIL_ON_FIRST_BREACH``), so the
limit a breach carries is the shortest spent one, and ``web.limits.wait_for`` says its
window. When a longer window is spent too, waiting that long does not help: the person
is told "a minute" and is refused again after it, for up to an hour ("never promise less
than the wait", web.limits)."""

from tests.plugin import rate_limited


def test_a_spent_longer_window_is_the_wait_said(app):
    form = {"email": "asha@example.com"}
    with rate_limited(app, PASSWORD_RESET_RATE_LIMIT="1 per minute;1 per hour") as limited:
        client = limited.test_client()
        client.post("/auth/forgot-password", data=form)  # both windows spent now
        response = client.post("/auth/forgot-password", data=form)
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    # The request after a minute is refused again (the hour's window): the page must not
    # say a minute.
    assert "Please try again in a minute." not in page
    assert "Please try again in an hour." in page
