"""What a provider types on /provider/bank, and what RazorpayX answers to it, is said on the
form: a field's error beside the field, anything else about the whole form; never a 500
(docs/payouts.md "Onboarding (fund accounts)")."""

import re

import pytest

from portal.extensions import db
from portal.payouts import fund_accounts
from portal.payouts import models as m


def test_a_long_upi_id_is_refused_on_the_form_not_a_500(world, x, client, login):
    """The UPI id rule (``fund_accounts.VPA_RE``) takes a name of up to 256 characters,
    and so does RazorpayX's sandbox, but the masked id is stored in ``vpa_masked``
    (120 characters): a 150-character UPI id passed every check and then overflowed the
    column (review finding; PostgreSQL: a 500, after RazorpayX's contact, fund account
    and ₹1 validation were made)."""
    provider, user = world.provider("WEEKLY")
    login(user)
    vpa = "a" * 150 + "@okhdfc"
    answer = client.post("/provider/bank", data={"kind": "vpa", "vpa": vpa})
    assert answer.status_code in (303, 422), answer.status_code
    if answer.status_code == 303:  # accepted: stored as masked
        db.session.expire_all()
        row = db.session.query(m.FundAccount).filter_by(provider_id=provider.id).one()
        assert row.vpa_masked.endswith("@okhdfc")
    # Refused beside the UPI id, before anything was made at RazorpayX.
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    vpa_field = re.search(r'<div class="field[^"]*">\s*<label for="vpa".*?</div>', html, re.S)
    assert "has-error" in vpa_field.group(0) and "at most 100 characters" in vpa_field.group(0)
    assert not x.sandbox.store.contacts and not x.sandbox.store.fund_accounts
    assert db.session.query(m.FundAccount).filter_by(provider_id=provider.id).count() == 0


def test_the_longest_upi_id_taken_fits_where_its_masked_form_is_kept():
    longest = "a" * (fund_accounts.VPA_MAX - len("@okhdfc")) + "@okhdfc"
    assert fund_accounts.check_vpa(f"  {longest} ") == longest
    masked_length = m.FundAccount.__table__.c.vpa_masked.type.length
    assert len(fund_accounts.mask_vpa(longest)) <= masked_length
    assert len(fund_accounts.mask_vpa("ab@" + "c" * (fund_accounts.VPA_MAX - 3))) <= masked_length
    with pytest.raises(fund_accounts.FundAccountError) as caught:
        fund_accounts.check_vpa("a" + longest)
    assert caught.value.errors == {"vpa": fund_accounts.MSG_VPA_LONG}
