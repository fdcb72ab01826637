"""A field over its own length limit is told so once, in the portal's words (review
finding: the admin's provider form said "Field cannot be longer than 40 characters." and
"This is too long: at most 40 characters." under Registration no.)."""

from html import unescape

from tests.catalog.test_provider_pan_web import _form


def test_a_field_over_its_own_limit_is_told_once(client, catalog, login):
    login(catalog["admin"])
    url = f"/admin/providers/{catalog['doctor']}/edit"
    bad = client.post(url, data=_form(catalog, registration_no="K" * 41))
    assert bad.status_code == 422
    body = unescape(bad.get_data(as_text=True))
    assert body.count("This is too long: at most 40 characters.") == 1
    assert "Field cannot be longer than" not in body
