"""Coupons admin: create (percent/flat, Decimal rupees), validation beside the fields,
inline edit over htmx, deactivate."""

import re

import pytest

from portal.accounts.models import User
from portal.booking.models import Coupon
from portal.extensions import db
from tests.web.booking.helpers import hx


def _form(**changes):
    data = {
        "code": "WELCOME10",
        "description": "",
        "kind": "PERCENT",
        "value": "10",
        "valid_from": "",
        "valid_until": "",
        "max_uses": "",
        "max_uses_per_patient": "",
        "active": "y",
    }
    data.update(changes)
    return data


def _edit(**changes):
    """The edit form's fields, prefixed (``edit-code``): its ids are not the New form's."""
    return {f"edit-{name}": value for name, value in _form(**changes).items()}


def _coupon(app, code):
    with app.app_context():
        coupon = db.session.scalar(db.select(Coupon).where(Coupon.code == code))
        if coupon is not None:
            db.session.expunge(coupon)
        return coupon


@pytest.fixture
def admin(client, login, make_user):
    login(make_user("admin"))


@pytest.mark.parametrize(
    "kind, typed, stored",
    [
        ("PERCENT", "12.5", 1250),
        ("PERCENT", "100", 10_000),
        ("FLAT", "250", 25_000),
        ("FLAT", "250.50", 25_050),
        ("FLAT", "₹1,000.05", 100_005),
    ],
)
def test_values_are_stored_exactly(app, client, admin, kind, typed, stored):
    response = client.post("/admin/coupons", data=_form(code="C-1", kind=kind, value=typed))
    assert response.status_code == 303
    coupon = _coupon(app, "C-1")
    assert (coupon.kind, coupon.value) == (kind, stored)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"value": "0"}, "Enter a percentage from 1 to 100."),
        ({"value": "101"}, "Enter a percentage from 1 to 100."),
        ({"value": "0.5"}, "Enter a percentage from 1 to 100."),
        ({"value": "1_0"}, "Type the percentage without spaces, underscores or commas"),
        ({"value": "12,5"}, "Type the percentage without spaces, underscores or commas"),
        ({"value": "١٠"}, "Type the percentage in the digits 0–9 or ०–९"),
        ({"kind": "FLAT", "value": "0"}, "Enter an amount above ₹0."),
        ({"kind": "FLAT", "value": "12.345"}, "Enter an amount in rupees"),
        ({"kind": "FLAT", "value": "1e3"}, "Enter an amount in rupees"),
        ({"value": ""}, "Enter the discount."),
        ({"code": "x"}, "Use 3–32 letters, digits, - or _."),
        (
            {"valid_from": "2026-05-10", "valid_until": "2026-05-01"},
            "The end must be on or after the start.",
        ),
        ({"max_uses": "0"}, "Enter 1 or more"),
        ({"max_uses": "2", "max_uses_per_patient": "3"}, "Cannot be more than the total"),
    ],
)
def test_invalid_input_is_422_with_the_message(client, admin, changes, message):
    response = client.post("/admin/coupons", data=_form(**changes))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_duplicate_code_and_validity_days_in_india_time(app, client, admin):
    assert (
        client.post(
            "/admin/coupons", data=_form(valid_from="2026-05-01", valid_until="2026-05-31")
        ).status_code
        == 303
    )
    coupon = _coupon(app, "WELCOME10")
    # 1 May 00:00 IST is 30 Apr 18:30 UTC; "until 31 May" runs to 1 June 00:00 IST.
    assert coupon.valid_from.isoformat() == "2026-04-30T18:30:00+00:00"
    assert coupon.valid_until.isoformat() == "2026-05-31T18:30:00+00:00"
    again = client.post("/admin/coupons", data=_form(code="welcome10"))
    assert again.status_code == 422
    assert "already exists" in again.get_data(as_text=True)
    page = client.get("/admin/coupons").get_data(as_text=True)
    assert "01 May 2026" in page and "31 May 2026" in page and "10% off" in page


def test_inline_edit_and_deactivate(app, client, admin):
    client.post("/admin/coupons", data=_form(kind="FLAT", value="250.50"))
    coupon_id = _coupon(app, "WELCOME10").id
    target = hx(f"coupon-{coupon_id}")
    edit = client.get(f"/admin/coupons/{coupon_id}/edit", headers=target)
    html = edit.get_data(as_text=True)
    assert edit.status_code == 200 and "<html" not in html and 'value="250.50"' in html
    assert "<html" in client.get(f"/admin/coupons/{coupon_id}/edit").get_data(as_text=True)
    bad = client.post(
        f"/admin/coupons/{coupon_id}/edit", data=_edit(kind="FLAT", value="-1"), headers=target
    )
    assert bad.status_code == 422 and "<html" not in bad.get_data(as_text=True)
    saved = client.post(
        f"/admin/coupons/{coupon_id}/edit",
        data=_edit(kind="FLAT", value="300", max_uses="5"),
        headers=target,
    )
    assert saved.status_code == 200
    row = saved.get_data(as_text=True)
    assert row.lstrip().startswith("<tr") or "<tr" in row
    assert "₹300 off" in row and "0 / 5" in row
    off = client.post(f"/admin/coupons/{coupon_id}/deactivate", data={}, headers=target)
    assert off.status_code == 200 and "Inactive" in off.get_data(as_text=True)
    assert _coupon(app, "WELCOME10").active is False
    on = client.post(f"/admin/coupons/{coupon_id}/activate", data={})
    assert on.status_code == 303 and _coupon(app, "WELCOME10").active is True
    cancel = client.get(f"/admin/coupons/{coupon_id}", headers=target)
    assert "WELCOME10" in cancel.get_data(as_text=True)
    assert client.get("/admin/coupons/999999/edit").status_code == 404


def _hidden_version(html):
    return re.search(
        r'name="edit-version"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="edit-version"', html
    )


def _version_of(html):
    found = _hidden_version(html)
    assert found, "the edit form carries the version it was filled from"
    return found.group(1) or found.group(2)


def test_coupon_edit_form_saved_after_another_admin_deactivated_it_reactivates_it(
    app, client, admin, make_user
):
    """Admin A opens a coupon's edit form (Active ticked) to fix its description. Admin B
    deactivates the coupon (its code leaked). A's save wrote every field from the stale
    form: the coupon was active again and nobody was told (review finding). The form
    carries the coupon's version; a save over a newer one is refused (422, nothing
    written) and the form is shown again filled with the coupon as it is now."""
    from portal.booking import coupons as booking_coupons

    client.post("/admin/coupons", data=_form(code="LEAKED50", value="50"))
    coupon_id = _coupon(app, "LEAKED50").id
    page = client.get(f"/admin/coupons/{coupon_id}/edit").get_data(as_text=True)
    assert "checked" in re.search(r'<input[^>]*name="edit-active"[^>]*>', page).group(0)
    version = _version_of(page)

    with app.app_context():  # admin B, in another browser
        other = make_user("admin", name="Second Admin")
        booking_coupons.update_coupon(db.session.get(User, other.id), coupon_id, active=False)

    stale = _edit(code="LEAKED50", value="50", description="Half off for the launch")
    edited = {**stale, "edit-version": version}
    refused = client.post(f"/admin/coupons/{coupon_id}/edit", data=edited)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "changed by another administrator" in html
    coupon = _coupon(app, "LEAKED50")
    assert coupon.active is False and coupon.description == ""
    # The form shown again is the coupon as it is now (inactive): A makes the change again.
    assert "checked" not in re.search(r'<input[^>]*name="edit-active"[^>]*>', html).group(0)
    fresh = {**stale, "edit-version": _version_of(html)}
    del fresh["edit-active"]
    assert client.post(f"/admin/coupons/{coupon_id}/edit", data=fresh).status_code == 303
    coupon = _coupon(app, "LEAKED50")
    assert coupon.active is False and coupon.description == "Half off for the launch"
