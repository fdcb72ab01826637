"""Coupon codes a patient has had refused are counted (COUPON_RATE_LIMIT): past the limit
the visit page says so beside the code, whatever is typed, and other patients go on."""

import pytest

from tests.plugin import rate_limited, sign_in
from tests.web.booking.helpers import hold, slot


@pytest.fixture
def limited(app):
    with rate_limited(
        app, RATELIMIT_STORAGE_URI="memory://", COUPON_RATE_LIMIT="3 per hour"
    ) as twin:
        yield twin


def test_refused_codes_are_counted_per_patient(app, world, limited):
    from tests.web.booking.test_patient_pages import _coupon

    _coupon(app)
    visit_id, _ = hold(app, world)
    patient = sign_in(limited, world.patient)
    url = f"/me/visits/{visit_id}/coupon"
    empty = patient.post(url, data={"code": ""})  # a blank form is not a try
    assert empty.status_code == 422
    for code in ("WRONG1", "WRONG2", "WRONG3"):
        refused = patient.post(url, data={"code": code})
        assert refused.status_code == 422
        assert "Enter a valid coupon code" in refused.get_data(as_text=True)
    blocked = patient.post(url, data={"code": "SAVE10"})
    assert blocked.status_code == 429
    html = blocked.get_data(as_text=True)
    assert "Too many coupon codes tried" in html and 'name="code"' in html
    other_visit, _ = hold(app, world, patient=world.other, start=slot(world.day, 11))
    other = sign_in(limited, world.other)
    assert (
        other.post(f"/me/visits/{other_visit}/coupon", data={"code": "SAVE10"}).status_code == 303
    )
