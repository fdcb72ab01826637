"""A coupon's "Total uses allowed" cannot go below the uses already made (the table's check
``ck_coupons_within_max_uses`` would refuse it): a clear refusal on the field, not a 500."""

import pytest

from portal.accounts.service import ValidationError
from portal.booking import coupons, visits
from portal.booking.models import Coupon
from portal.extensions import db
from tests.booking.factories import at, quoted_desk_payment


def test_admin_lowers_max_uses_below_used_count_is_a_clear_refusal(world, users):
    admin = users(world.admin)
    c = coupons.create_coupon(admin, code="FEW", kind="PERCENT", value=1000, max_uses=3)
    for i in range(2):
        who = users(world.patients[i])
        item = visits.add_item(
            who,
            patient_id=who.id,
            service_id=world.consult,
            provider_ids=[world.doctors[i]],
            clinic_id=world.clinic,
            start_at=at(1, 10),
        )
        visits.apply_coupon(who, item.master_id, "FEW")
        quoted_desk_payment(admin, item.master_id, f"R{i}")
    db.session.expire_all()
    assert db.session.get(Coupon, c.id).used_count == 2
    with pytest.raises(ValidationError) as refused:
        coupons.update_coupon(admin, c.id, max_uses=1)
    assert refused.value.errors == {"max_uses": "At least the 2 uses already made."}
    db.session.expire_all()
    assert db.session.get(Coupon, c.id).max_uses == 3
    # exactly the uses made is allowed: the coupon is then used up
    assert coupons.update_coupon(admin, c.id, max_uses=2).max_uses == 2
