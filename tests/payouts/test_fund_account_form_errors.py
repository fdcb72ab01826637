"""What a provider types on /provider/bank, and what RazorpayX answers to it, is said on the
form: a field's error beside the field, anything else about the whole form; never a 500
(docs/payouts.md "Onboarding (fund accounts)")."""

import json
import re
from html import unescape

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.gateway import errors as gw_errors
from portal.notify.models import Notification
from portal.payouts import fund_accounts
from portal.payouts import models as m
from tests.plugin import PASSWORD


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


def test_a_refused_api_key_is_not_said_beside_the_doctors_account_number(world, x, client, login):
    """After the clinic's RazorpayX key is rotated (docs/payouts.md names it: "a 401 after
    the API key was rotated"), a doctor saving their bank account was told RazorpayX's
    "The api key provided is invalid" as an error *of their account number* (and in
    English on a Hindi page): ``fund_accounts._register`` mapped every ``BadRequest``
    without a known field to ``account_number`` (review finding). The doctor's number is
    fine; nothing they can change fixes it. Expected: a message about the whole form (as
    for ``MSG_GATEWAY``), nothing beside the account number, nothing about API keys."""
    provider, user = world.provider("WEEKLY")
    login(user)
    x.sandbox.store.key_secret = "rotated_secret_456"  # RazorpayX now wants the new key
    answer = client.post(
        "/provider/bank",
        data={
            "kind": "bank_account",
            "holder_name": "Asha Rao",
            "ifsc": "HDFC0001234",
            "account_number": "50100012345678",
            "confirm_account_number": "50100012345678",
        },
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    number_field = re.search(
        r'<div class="field[^"]*">\s*<label for="account_number".*?</div>', html, re.S
    ).group(0)
    assert "has-error" not in number_field, number_field
    assert "api key" not in html.lower()


BANK_FORM = {
    "kind": "bank_account",
    "holder_name": "Asha Rao",
    "ifsc": "HDFC0001234",
    "account_number": "50100012345678",
    "confirm_account_number": "50100012345678",
}
REFUSED_HI = "RazorpayX ने खाता स्वीकार नहीं किया"


def _field(html, name):
    return re.search(rf'<div class="field[^"]*">\s*<label for="{name}".*?</div>', html, re.S).group(
        0
    )


def _form_errors(html):
    found = re.search(r'<div class="form-errors" role="alert">(.*?)</div>', html, re.S)
    return unescape(found.group(1)) if found else ""


def _refusal_alerts():
    db.session.expire_all()
    return db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "payout.alert").order_by(AuditEntry.id)
    ).all()


@pytest.mark.parametrize("language", ["en", "hi"])
def test_a_refused_api_key_is_said_about_the_form_and_told_to_the_admins(
    app, x, client, login, make_user, language
):
    """The doctor reads, in their language, that nothing they typed is at fault; every
    admin gets a HIGH alert naming the key (once a day per provider; every refusal is in
    the audit); nothing is saved. No app context is held while pages render (Flask-Babel
    keeps the locale on it), as in tests/i18n."""
    from tests.payouts.conftest import World

    with app.app_context():
        provider, user = World(app, make_user, x).provider("WEEKLY", name="Asha Rao")
        admin_id, provider_id, user_id = make_user("admin").id, provider.id, user.id
        db.session.remove()
    login(user)
    client.post("/language", data={"language": language, "next": "/"})
    x.sandbox.store.key_secret = "rotated_secret_456"
    for _ in range(2):
        answer = client.post("/provider/bank", data=BANK_FORM)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 422
        assert f'lang="{language}' in html
        said = _form_errors(html)
        assert (REFUSED_HI if language == "hi" else fund_accounts.MSG_REFUSED) in said, said
        for name in ("holder_name", "ifsc", "account_number", "confirm_account_number"):
            assert "has-error" not in _field(html, name), name
    with app.app_context():
        assert db.session.query(m.FundAccount).filter_by(provider_id=provider_id).count() == 0
        alerts = _refusal_alerts()
        assert [(a.object_type, a.object_id) for a in alerts] == [
            ("provider", str(provider_id))
        ] * 2
        alert = alerts[0].after
        assert (alert["kind"], alert["severity"]) == ("FUND_ACCOUNT_REFUSED", "HIGH")
        assert "API key" in alert["message"] and "(HTTP 401" in alert["message"]
        assert "contact request" in alert["message"]
        told = db.session.scalars(
            sa.select(Notification).where(
                Notification.user_id == admin_id,
                Notification.kind == "alert.FUND_ACCOUNT_REFUSED",
            )
        ).all()
        assert [n.link for n in told] == ["/admin/payouts/accounts"]
        assert not db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user_id)
        ).all()
        db.session.remove()


def test_the_clinics_razorpayx_account_refused_at_validation_is_not_the_doctors_number(
    world, x, client, login, monkeypatch
):
    """RazorpayX names ``account_number`` when the *clinic's* RazorpayX account number (the
    validation's debit account) is wrong: said about the form, a MEDIUM alert."""
    provider, user = world.provider("WEEKLY")
    login(user)
    monkeypatch.setattr(x.adapter, "account_number", "1111222233334444")
    answer = client.post("/provider/bank", data=BANK_FORM)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "has-error" not in _field(html, "account_number")
    assert fund_accounts.MSG_REFUSED in _form_errors(html)
    (alert,) = _refusal_alerts()
    assert (alert.after["kind"], alert.after["severity"]) == ("FUND_ACCOUNT_REFUSED", "MEDIUM")
    assert "validation request" in alert.after["message"]


@pytest.mark.parametrize(
    "kind, field, razorpayx_field",
    [
        ("bank_account", "ifsc", "ifsc"),
        ("bank_account", "ifsc", "bank_account.ifsc"),
        ("bank_account", "account_number", "account_number"),
        ("bank_account", "holder_name", "name"),
        ("vpa", "vpa", "vpa"),
        ("vpa", "vpa", "vpa.address"),
    ],
)
def test_razorpayxs_refusal_of_a_field_of_the_form_is_said_beside_it(
    world, x, client, login, monkeypatch, kind, field, razorpayx_field
):
    provider, user = world.provider("WEEKLY")
    login(user)

    def refuse(*args, **kwargs):
        raise gw_errors.BadRequest("Refused by RazorpayX", status=400, field=razorpayx_field)

    monkeypatch.setattr(x.adapter, "create_fund_account", refuse)
    form = BANK_FORM if kind == "bank_account" else {"kind": "vpa", "vpa": "asharao@okhdfc"}
    answer = client.post("/provider/bank", data=form)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    beside = unescape(_field(html, field))
    assert fund_accounts.FIELD_REFUSED[razorpayx_field.rsplit(".", 1)[-1]] in beside, beside
    assert "Refused by RazorpayX" not in html  # its words are the audit's, not the page's
    assert not _form_errors(html) and not _refusal_alerts()


DEVANAGARI = re.compile(r"[\u0900-\u097F]")
# The doctor's name and UPI id, and the bank formats' examples (docs/i18n.md keeps them).
KEPT_ON_THE_PAGE = ("Asha Rao", "asharao@okhdfc", "HDFC0001234", "name@bank", "ABCPK1234L")
# What RazorpayX answers for each field of the form (its own English), and the field of
# the form it lands beside: a refusal RazorpayX's validation of a fund account can make
# of details our own checks let through (its IFSC directory, its account number and
# name rules; docs/payouts.md "Onboarding (fund accounts)").
REFUSALS = [
    ("bank_account", "ifsc", "ifsc", "IFSC code not found in bank network"),
    ("bank_account", "account_number", "account_number", "The account number is invalid."),
    ("bank_account", "holder_name", "name", "Name cannot end with a special character."),
    ("vpa", "vpa", "address", "Invalid VPA. Please enter a valid Virtual Payment Address"),
]


@pytest.mark.parametrize("language", ["en", "hi"])
@pytest.mark.parametrize("kind, field, razorpayx_field, words", REFUSALS)
def test_a_field_razorpayx_refuses_is_said_in_the_doctors_language_not_in_razorpayxs_words(
    app, x, client, make_user, monkeypatch, language, kind, field, razorpayx_field, words
):
    """RazorpayX's own description of a refused field was put beside the field as it came,
    in English on the doctor's Hindi bank page (review finding; docs/i18n.md: the doctor's
    pages are wholly in their language). Expected: our own message for that field, in the
    page's language; RazorpayX's words only in the audit, for the clinic; nothing saved."""
    from tests.i18n.untranslated import untranslated
    from tests.payouts.conftest import World

    with app.app_context():
        provider, user = World(app, make_user, x).provider("WEEKLY", name="Asha Rao")
        provider_id, email = provider.id, user.email
        db.session.remove()
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    client.post("/language", data={"language": language, "next": "/"})
    store = x.sandbox.store

    def refuse(data):  # the sandbox answers RazorpayX's error object over HTTP
        from portal.gateway.sandbox.common import ApiError

        raise ApiError(words, field=razorpayx_field)

    monkeypatch.setattr(store, "create_fund_account", refuse)
    form = BANK_FORM if kind == "bank_account" else {"kind": "vpa", "vpa": "asharao@okhdfc"}
    answer = client.post("/provider/bank", data=form)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert f'lang="{language}' in html
    beside = _field(html, field)
    assert "has-error" in beside, beside
    said = unescape(re.search(r'<p class="error" role="alert">(.*?)</p>', beside, re.S).group(1))
    assert words not in html and words.lower() not in html.lower()
    if language == "hi":
        assert DEVANAGARI.search(said), said
        assert not untranslated(html, data=KEPT_ON_THE_PAGE), untranslated(html, KEPT_ON_THE_PAGE)
    else:
        assert said == fund_accounts.FIELD_REFUSED[razorpayx_field.rsplit(".", 1)[-1]]
    assert not _form_errors(html)
    with app.app_context():
        assert db.session.query(m.FundAccount).filter_by(provider_id=provider_id).count() == 0
        assert not _refusal_alerts()  # the doctor can fix it: no alert to the admins
        (kept,) = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "fund_account.field_refused")
        ).all()
        assert (kept.object_type, kept.object_id) == ("provider", str(provider_id))
        assert kept.after["field"] == razorpayx_field and words in kept.after["refused"]
        db.session.remove()


NUMBER, VPA = BANK_FORM["account_number"], "asharao@okhdfc"


def _all_audit_text():
    db.session.expire_all()
    rows = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
    return [(r.action, json.dumps([r.before, r.after], ensure_ascii=False)) for r in rows]


@pytest.mark.parametrize(
    "kind, form, secret, razorpayx_field, words",
    [
        ("bank", BANK_FORM, NUMBER, "account_number", f"Invalid account number {NUMBER}"),
        ("vpa", {"kind": "vpa", "vpa": VPA}, VPA, "address", f"Invalid VPA {VPA}"),
        # a field the form does not know: the alert (payout.alert) carries the description
        ("bank_other", BANK_FORM, NUMBER, "bank_account", f"Bank account {NUMBER} is blocked"),
    ],
)
def test_razorpayx_refusal_echoing_the_typed_number_is_not_kept_in_full_in_the_audit(
    world, x, client, login, monkeypatch, kind, form, secret, razorpayx_field, words
):
    """The audit log never holds a full bank account number or UPI id, even when
    RazorpayX's own description of a refusal repeats what the provider typed (review
    rv_audit: the audit is append-only and outlives a closed account; fund_account.created
    keeps them masked, docs/privacy.md)."""
    provider, user = world.provider("WEEKLY")
    login(user)

    def refuse(data):
        from portal.gateway.sandbox.common import ApiError

        raise ApiError(words, field=razorpayx_field)

    monkeypatch.setattr(x.sandbox.store, "create_fund_account", refuse)
    answer = client.post("/provider/bank", data=form)
    assert answer.status_code == 422
    texts = _all_audit_text()
    leaked = [action for action, text in texts if secret in text]
    assert not leaked, f"full {kind} detail stored in audit rows: {leaked}"
    # Still said, masked: the clinic can tell which account RazorpayX meant.
    masked = "••••5678" if secret == NUMBER else "as•••••@okhdfc"
    assert any(masked in text for _action, text in texts), texts
