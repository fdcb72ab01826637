"""The account holder's name is checked by RazorpayX's own rule before RazorpayX is asked
(docs/payouts.md "Onboarding (fund accounts)"): a–z, A–Z, 0–9, space and ' ’ - _ / ( ) , .
only, not ending in one of those signs but ".", 3 to 50 characters (ours; RazorpayX takes
120). Review finding: a doctor who typed their name in Devanagari, or with "&", passed our
check (3–50 of anything), went to RazorpayX and back, and read only the generic
"This name was not accepted for payouts …"."""

import re
from html import unescape

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.payouts import fund_accounts
from portal.payouts import models as m
from tests.plugin import PASSWORD

NUMBER = "50100012345678"


def _name_error(name):
    """The message beside the name for ``name``, or None when the bank details pass."""
    try:
        fund_accounts.check_bank(name, "HDFC0001234", NUMBER, NUMBER)
    except fund_accounts.FundAccountError as exc:
        return exc.errors.get("holder_name")
    return None


@pytest.mark.parametrize(
    "name",
    [
        "Asha Rao",
        "Dr. A. K. Sharma",
        "Dr. A. K. Sharma.",  # "." is the one sign a name may end in
        "D'Souza Maria",
        "D’Souza Maria",  # RazorpayX's documents write the apostrophe ’
        "Sharma-Gupta Neha",
        "Rao, Asha",
        "Asha_Rao",
        "A/C Asha Rao",
        "Rao (HUF) Asha",
        "Ravi 2",
        "Abc",
        "A" * 50,
        "  Asha   Rao  ",  # spaces are collapsed and trimmed first
    ],
)
def test_a_name_of_razorpayxs_characters_passes(name):
    assert _name_error(name) is None
    assert fund_accounts.check_bank(name, "HDFC0001234", NUMBER)[0] == " ".join(name.split())


@pytest.mark.parametrize(
    "name",
    [
        "आशा राव",  # Devanagari, natural on the Hindi page
        "Dr. आशा Rao",
        "Asha & Rao",
        "Asha@Rao",
        "Asha Rao!",  # "!" is no character of the rule at all: this message, not the ending's
        "Zoë Rao",  # a letter beyond A–Z
        "Asha “Rao” Kumar",
        "Asha;Rao",
    ],
)
def test_a_name_with_other_characters_is_told_which_characters_to_use(name):
    assert _name_error(name) == fund_accounts.MSG_NAME_CHARACTERS


@pytest.mark.parametrize(
    "name", ["Asha Rao-", "Rao (HUF)", "Rao, Asha,", "Asha Rao'", "Asha Rao’", "A/C 123/", "Asha_"]
)
def test_a_name_ending_in_a_sign_but_a_full_stop_is_told_how_to_end_it(name):
    assert _name_error(name) == fund_accounts.MSG_NAME_END


@pytest.mark.parametrize("name", ["", "   ", "Al", "A" * 51, "आ"])
def test_a_name_too_short_or_too_long_is_told_the_length(name):
    assert _name_error(name) == fund_accounts.MSG_NAME


def test_the_other_fields_are_checked_with_the_name():
    """A wrong name does not hide a wrong IFSC or account number: all said at once."""
    with pytest.raises(fund_accounts.FundAccountError) as caught:
        fund_accounts.check_bank("आशा राव", "HDFC001234", "12ab")
    assert caught.value.errors == {
        "holder_name": fund_accounts.MSG_NAME_CHARACTERS,
        "ifsc": fund_accounts.MSG_IFSC,
        "account_number": fund_accounts.MSG_ACCOUNT,
    }


BANK_FORM = {
    "kind": "bank_account",
    "ifsc": "HDFC0001234",
    "account_number": NUMBER,
    "confirm_account_number": NUMBER,
}
CHARACTERS_HI = "केवल अंग्रेज़ी अक्षर (A–Z), अंक, स्पेस और . - ' ( ) / , _ लिखें, जैसा आपके बैंक खाते में है।"
END_HI = "नाम किसी अक्षर, अंक या पूर्ण विराम (.) पर ख़त्म करें, जैसा आपके बैंक खाते में है।"


def _field(html, name):
    return re.search(rf'<div class="field[^"]*">\s*<label for="{name}".*?</div>', html, re.S).group(
        0
    )


@pytest.mark.parametrize(
    "language, name, said",
    [
        ("hi", "आशा राव", CHARACTERS_HI),
        ("hi", "Asha & Rao", CHARACTERS_HI),
        ("hi", "Rao (HUF)", END_HI),
        ("en", "आशा राव", fund_accounts.MSG_NAME_CHARACTERS),
        ("en", "Asha Rao-", fund_accounts.MSG_NAME_END),
    ],
)
def test_the_bank_page_says_beside_the_name_what_to_change_without_asking_razorpayx(
    app, x, client, make_user, monkeypatch, language, name, said
):
    """At once, in the page's language, beside the name; RazorpayX is not asked (no
    contact, no fund account, no validation), nothing is saved, nothing is audited as
    RazorpayX's refusal."""
    from tests.payouts.conftest import World

    with app.app_context():
        provider, user = World(app, make_user, x).provider("WEEKLY", name="Asha Rao")
        provider_id, email = provider.id, user.email
        db.session.remove()
    asked = []
    for call in ("create_contact", "create_fund_account", "validate_fund_account"):
        monkeypatch.setattr(
            x.adapter, call, lambda *a, _call=call, **k: asked.append(_call) or {"id": "x"}
        )
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    client.post("/language", data={"language": language, "next": "/"})
    answer = client.post("/provider/bank", data={**BANK_FORM, "holder_name": name})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert f'lang="{language}' in html
    beside = _field(html, "holder_name")
    assert "has-error" in beside, beside
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', beside, re.S).group(1)
    assert unescape(message) == said
    for other in ("ifsc", "account_number", "confirm_account_number"):
        assert "has-error" not in _field(html, other), other
    assert asked == []
    assert not x.sandbox.store.contacts and not x.sandbox.store.fund_accounts
    with app.app_context():
        assert db.session.query(m.FundAccount).filter_by(provider_id=provider_id).count() == 0
        assert not db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "fund_account.field_refused")
        ).all()
        db.session.remove()
