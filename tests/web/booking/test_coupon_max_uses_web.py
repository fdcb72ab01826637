"""The coupon edit form: "Total uses allowed" below the uses made is a 422 beside the field,
nothing written; odd typed values are a 422 too, never a 500."""

import pytest

from portal.booking.models import Coupon
from portal.extensions import db
from tests.booking.factories import quoted_desk_payment
from tests.plugin import sign_in
from tests.web.booking.helpers import hold, slot


def _used_twice(app, world):
    """A coupon FEW (10 %, at most 3 uses) used by two visits paid at the desk."""
    from portal.accounts.models import User
    from portal.booking import coupons, visits

    with app.app_context():
        admin = db.session.get(User, world.admin.id)
        coupons.create_coupon(admin, code="FEW", kind="PERCENT", value=1_000, max_uses=3)
    for n, who in enumerate((world.patient, world.other)):
        visit_id, _ = hold(app, world, patient=who, start=slot(world.day, 10 + n))
        with app.app_context():
            visits.apply_coupon(db.session.get(User, who.id), visit_id, "FEW")
            quoted_desk_payment(db.session.get(User, world.admin.id), visit_id, f"R{n}")
    with app.app_context():
        coupon = db.session.scalar(db.select(Coupon).where(Coupon.code == "FEW"))
        assert coupon.used_count == 2
        return coupon.id, coupon.version


def test_lowering_total_uses_below_the_uses_made_is_a_422_beside_the_field(app, world):
    coupon_id, version = _used_twice(app, world)
    admin = sign_in(app, world.admin)
    form = {
        "edit-code": "FEW",
        "edit-description": "",
        "edit-kind": "PERCENT",
        "edit-value": "10",
        "edit-valid_from": "",
        "edit-valid_until": "",
        "edit-max_uses": "1",
        "edit-max_uses_per_patient": "",
        "edit-active": "y",
        "edit-version": str(version),
    }
    answer = admin.post(f"/admin/coupons/{coupon_id}/edit", data=form)
    assert answer.status_code == 422, answer.status_code
    assert "At least the 2 uses already made." in answer.get_data(as_text=True)
    with app.app_context():
        coupon = db.session.get(Coupon, coupon_id)
        assert (coupon.max_uses, coupon.used_count) == (3, 2)


@pytest.mark.parametrize(
    "changes",
    [
        {"valid_until": "9999-12-31"},
        {"valid_from": "9999-12-31", "valid_until": "9999-12-31"},
        {"max_uses": "99999999999"},
        {"max_uses_per_patient": "3000000000"},
        {"value": "1e2"},
        {"code": "ＳＡＶＥ１０"},
    ],
)
def test_odd_coupon_form_input_is_a_422_not_a_500(app, world, changes):
    admin = sign_in(app, world.admin)
    form = {
        "code": "ODD10",
        "description": "",
        "kind": "PERCENT",
        "value": "10",
        "valid_from": "",
        "valid_until": "",
        "max_uses": "",
        "max_uses_per_patient": "",
        "active": "y",
    }
    form.update(changes)
    answer = admin.post("/admin/coupons", data=form)
    assert answer.status_code in (303, 422), answer.status_code
