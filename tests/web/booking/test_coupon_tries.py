"""Coupon codes a patient tries are counted before they are looked at (COUPON_RATE_LIMIT):
past the limit the visit page says so beside the code, whatever is typed, and other
patients go on."""

import pytest

from portal.extensions import limiter
from portal.web.patient import visits as patient_visits
from tests.plugin import rate_limited, sign_in
from tests.web.booking.helpers import hold, slot
from tests.web.booking.test_patient_pages import _coupon


@pytest.fixture
def limited(app):
    with rate_limited(
        app, RATELIMIT_STORAGE_URI="memory://", COUPON_RATE_LIMIT="3 per hour"
    ) as twin:
        yield twin


def test_tried_codes_are_counted_per_patient(app, world, limited):
    _coupon(app)
    visit_id, _ = hold(app, world)
    patient = sign_in(limited, world.patient)
    url = f"/me/visits/{visit_id}/coupon"
    for code in ("WRONG1", "WRONG2", "WRONG3"):
        refused = patient.post(url, data={"code": code})
        assert refused.status_code == 422
        assert "Enter a valid coupon code" in refused.get_data(as_text=True)
    blocked = patient.post(url, data={"code": "SAVE10"})
    assert blocked.status_code == 429
    assert blocked.headers.get("X-Swap-Form") == "true"  # htmx swaps it (portal.js)
    html = blocked.get_data(as_text=True)
    assert "Too many coupon codes tried" in html and 'name="code"' in html
    assert "Please try again in an hour." in html  # the limit's own window, not "later"
    other_visit, _ = hold(app, world, patient=world.other, start=slot(world.day, 11))
    other = sign_in(limited, world.other)
    assert (
        other.post(f"/me/visits/{other_visit}/coupon", data={"code": "SAVE10"}).status_code == 303
    )


def test_each_try_is_counted_before_its_code_is_looked_at(app, world, limited, monkeypatch):
    """The count goes up before the code is looked at (one atomic increment), so tries
    sent all at once cannot all pass the check: counting refusals after the answer let
    them (review finding)."""
    _coupon(app)
    visit_id, _ = hold(app, world)
    patient = sign_in(limited, world.patient)
    left = []
    original = patient_visits.booking_visits.apply_coupon

    def looked_at(*args, **kwargs):
        left.append(limiter.current_limit.remaining)
        return original(*args, **kwargs)

    monkeypatch.setattr(patient_visits.booking_visits, "apply_coupon", looked_at)
    for code in ("GUESS1", "SAVE10", "GUESS2"):  # an applied code counts too
        patient.post(f"/me/visits/{visit_id}/coupon", data={"code": code})
    assert left == [2, 1, 0]
