"""A 'Pay me by' value that is neither of its two choices (a tampered or stale form) is
refused with its reason beside the choice, in the provider's language, not a bare 422
(review finding: the fieldset drew its options but never its errors)."""

import pytest

from portal.accounts.models import User
from portal.catalog.models import Provider
from portal.extensions import db
from tests.plugin import PASSWORD

FORM = {
    "kind": "bank",  # neither "bank_account" nor "vpa"
    "holder_name": "Asha Rao",
    "ifsc": "HDFC0001234",
    "account_number": "50100012345678",
    "confirm_account_number": "50100012345678",
}


@pytest.mark.parametrize("language", ["en", "hi"])
def test_a_bad_pay_me_by_choice_is_said_beside_it(app, make_user, language):
    user = make_user("provider")
    with app.app_context():
        db.session.add(Provider(user_id=user.id, display_name="Dr Asha Rao", kind="DOCTOR"))
        db.session.get(User, user.id).language = language
        db.session.commit()
    client = app.test_client()
    client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    response = client.post("/provider/bank", data=FORM)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    fieldset = html.split("<fieldset>", 1)[1].split("</fieldset>", 1)[0]
    assert 'class="error" role="alert"' in fieldset, fieldset
    if language == "en":
        assert "Not a valid choice" in fieldset
