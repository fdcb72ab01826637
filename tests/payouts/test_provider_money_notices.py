"""What the provider is told about their money (review finding: every notice a doctor or
a lab got was about appointments; a payout paid, failed or reversed, and a bank account
that failed validation, reached only the admins): each in the app and by mail, once per
event, in the provider's language, linking to the Earnings or Bank account page."""

from datetime import date

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.domain.states import FundAccountStatus, PayoutStatus
from portal.extensions import db
from portal.notify import payout_notices
from portal.notify.models import MailMessage, Notification
from portal.payouts import runs
from tests.payouts.conftest import payouts_of

# On file: these payouts deduct 194J's 10% (without one, section 206AA's 20%).
PAN = "ABCPK1234L"


def _told(user_id, kind_prefix=("payout.", "bank.")):
    db.session.expire_all()
    return [
        n
        for n in db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
        )
        if n.kind.startswith(kind_prefix)
    ]


def _mails(user):
    return db.session.scalars(sa.select(MailMessage).where(MailMessage.to == user.email)).all()


def test_a_processed_payout_is_told_once_with_its_account_utr_and_tds(world, x):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 6_000_000)  # ₹60,000: crosses the TDS threshold at once
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and payout.tds == 600_000 and payout.utr
    (notice,) = _told(user.id)
    assert notice.kind == "payout.processed" and notice.link == "/provider/earnings"
    assert notice.title == "Payout of ₹54,000 paid"
    assert notice.body == (
        f"₹54,000 paid to HDFC ••••5678, UTR {payout.utr}. TDS of ₹6,000 "
        "(section 194J) was withheld from ₹60,000."
    )
    assert [m.subject for m in _mails(user) if "Payout" in m.subject] == [notice.title]
    # The job again (a retry after a lost commit): nothing more.
    payout_notices.payout_moved(payout.id, PayoutStatus.PROCESSED, 1, retried=False)
    db.session.commit()
    assert len(_told(user.id)) == 1
    assert len([m for m in _mails(user) if "Payout" in m.subject]) == 1


def test_a_payout_without_tds_or_utr_yet_says_where_the_utr_will_be(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    payout.utr = None
    db.session.query(Notification).delete()
    db.session.commit()
    payout_notices.payout_moved(payout.id, PayoutStatus.PROCESSED, 1, retried=False)
    db.session.commit()
    (notice,) = _told(user.id)
    assert notice.body == (
        "₹1,000 paid to HDFC ••••5678. The bank's reference (UTR) will show on the "
        "Earnings page when the bank sends it."
    )


def test_failed_attempts_say_retried_then_back_on_the_balance(world, x, immediate_retries):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.FAILED and payout.attempts == 3 and payout.returned
    told = _told(user.id)
    assert [n.kind for n in told] == ["payout.failed"] * 3
    assert [n.dedupe_key for n in told] == [f"payout-failed:{payout.id}:{i}" for i in (1, 2, 3)]
    assert {n.link for n in told} == {"/provider/earnings"}
    assert told[0].title == "Payout of ₹1,000 failed"
    assert told[0].body == (
        "Your payout of ₹1,000 to HDFC ••••5678 failed: Beneficiary bank is down. "
        "It will be tried again."
    )
    assert told[2].body == (
        "Your payout of ₹1,000 to HDFC ••••5678 failed: Beneficiary bank is down. "
        "The amount is back on your payable balance."
    )
    payout_notices.payout_moved(payout.id, PayoutStatus.FAILED, 3, retried=False)
    db.session.commit()
    assert len(_told(user.id)) == 3


def test_a_reversed_payout_is_told_once(world, x):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="reversed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.REVERSED
    (notice,) = _told(user.id)
    assert notice.kind == "payout.reversed" and notice.link == "/provider/earnings"
    assert notice.title == "Payout of ₹1,000 reversed"
    assert notice.body.startswith("Your payout of ₹1,000 to HDFC ••••5678 was reversed")
    assert notice.body.endswith("The amount is back on your payable balance.")


def test_a_failed_bank_validation_is_told_once_with_its_reason(world, x):
    provider, user = world.provider("INSTANT")
    row = world.onboard(provider, user, number="123456780000")  # sandbox: ...0000 is dead
    assert row.status == FundAccountStatus.FAILED
    (notice,) = _told(user.id)
    assert notice.kind == "bank.validation_failed" and notice.link == "/provider/bank"
    assert notice.title == "Bank account not validated"
    assert notice.body == (
        "Your new bank account could not be validated: The bank says this account is not "
        "active. Check the details on the Bank account page."
    )
    payout_notices.fund_account_failed(row.id)
    db.session.commit()
    assert len(_told(user.id)) == 1


def _validation_failed(world, x, *, language="en", vpa=None):
    provider, user = world.provider("INSTANT")
    db.session.get(User, user.id).language = language
    db.session.commit()
    x.sandbox.set_faults(validation_outcome="failed")
    row = world.onboard(provider, user, vpa=vpa)
    assert row.status == FundAccountStatus.FAILED
    (notice,) = _told(user.id)
    return row, notice


@pytest.mark.parametrize(
    ("language", "vpa", "body"),
    [
        (
            "en",
            None,
            "Your new bank account could not be validated. Check the details on the Bank "
            "account page.",
        ),
        ("hi", None, "आपका नया बैंक खाता सत्यापित नहीं हो सका। बैंक खाता पेज पर विवरण जाँचें।"),
        (
            "en",
            "asha@okhdfc",
            "Your new UPI id could not be validated. Check the details on the Bank account page.",
        ),
    ],
)
def test_the_generic_validation_failure_says_each_thing_once(world, x, language, vpa, body):
    """Review finding: the stored reason, "The account could not be validated. Check the
    details.", went inside the notice's own sentence, which adds "Check the details on the
    Bank account page.": "could not be validated: The account could not be validated.
    Check the details. Check the details on the Bank account page." (Hindi alike). The
    generic reason says nothing the notice does not: it reads once."""
    _row, notice = _validation_failed(world, x, language=language, vpa=vpa)
    assert notice.body == body


@pytest.mark.parametrize(
    ("stored", "body"),
    [
        (
            "Beneficiary name does not match. Check the details.",
            "Your new bank account could not be validated: Beneficiary name does not match. "
            "Check the details on the Bank account page.",
        ),
        (
            "Invalid IFSC. check the details",
            "Your new bank account could not be validated: Invalid IFSC. Check the details "
            "on the Bank account page.",
        ),
        (
            "Check the details.",
            "Your new bank account could not be validated. Check the details on the Bank "
            "account page.",
        ),
    ],
)
def test_razorpayxs_own_reason_is_told_without_a_second_check_the_details(world, x, stored, body):
    """Whatever the stored reason (RazorpayX's own words, English as it sent them): its
    "Check the details" is the notice's own closing sentence, said once."""
    row, _notice = _validation_failed(world, x)
    row.status_reason = stored
    db.session.execute(sa.delete(Notification).where(Notification.user_id == row.provider.user_id))
    db.session.commit()
    payout_notices.fund_account_failed(row.id)
    db.session.commit()
    (notice,) = _told(row.provider.user_id)
    assert notice.body == body


@pytest.mark.parametrize(
    ("language", "stored", "said"),
    [
        ("en", "The account could not be validated. Check the details.", ""),
        ("hi", "The account could not be validated. Check the details.", ""),
        ("hi", "The bank says this account is not active.", "बैंक के अनुसार यह खाता सक्रिय नहीं है"),
        ("hi", "Invalid IFSC. Check the details.", "Invalid IFSC"),
        ("hi", "IFSC अमान्य। विवरण जाँचें।", "IFSC अमान्य"),
        ("en", "Please check the details", "Please check the details"),
        ("en", None, ""),
    ],
)
def test_a_stored_reason_is_said_in_the_readers_language_without_its_pointer(
    app, language, stored, said
):
    from flask_babel import force_locale

    with app.test_request_context(), force_locale(language):
        assert payout_notices.validation_reason(stored) == said


def test_money_notices_are_in_the_providers_language(world, x):
    provider, user = world.provider("INSTANT", commission_bps=0)
    db.session.get(User, user.id).language = "hi"
    db.session.commit()
    world.onboard(provider, user)
    world.earn(provider, user, 100_000)
    x.settle()
    (notice,) = _told(user.id)
    assert notice.title == "₹1,000 का भुगतान हो गया"
    assert "HDFC ••••5678" in notice.body and "UTR" in notice.body


def test_a_payout_without_its_section_stored_names_its_years_rule(app, world, x):
    """Re-read: the notice fell back to a literal "194J" for a payout whose section was not
    stored (rows older than the column); the section is a setting per financial year."""
    from portal.domain.policy import DEFAULT_POLICY, TdsRule
    from portal.domain.rates import rupees

    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 6_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    payout.tds_section = None  # as an old row has it
    db.session.commit()
    db.session.execute(sa.delete(Notification).where(Notification.user_id == user.id))
    db.session.commit()
    rule = TdsRule(from_fy="2025-26", rate_bps=1_000, threshold=rupees(50_000), section="194JB")
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(tds_rules=(rule,))
    try:
        payout_notices.payout_moved(payout.id, PayoutStatus.PROCESSED, 1, retried=False)
        db.session.commit()
    finally:
        app.config["POLICY"] = saved
    (notice,) = _told(user.id)
    assert "(section 194JB) was withheld" in notice.body


# --- section 206AA: no PAN on file when the payout was made -------------------------------

NO_PAN = (
    "No PAN on file: TDS at 20% (section 206AA). Add your PAN to have 10% deducted on later "
    "payouts."
)


def _paid_without_a_pan(world, x, *, language="en", enter_pan_before_it_is_paid=False):
    """A ₹60,000 payout made while the provider has no PAN on file (20% under section
    206AA), paid; its notice and the provider."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    db.session.get(User, user.id).language = language
    db.session.commit()
    world.earn(provider, user, 6_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    db.session.commit()
    if enter_pan_before_it_is_paid:
        from portal.catalog.pan import enter_own_pan

        enter_own_pan(db.session.get(User, user.id), PAN, PAN)
        db.session.commit()
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED and payout.tds_higher_section == "206AA"
    assert payout.tds == 1_200_000 and payout.tds_rate_bps == 2_000
    (notice,) = _told(user.id)
    return notice, user, payout


def test_a_payout_at_section_206aas_rate_says_why_in_its_notice_and_mail(world, x):
    """Review finding: the notice said "TDS of ₹12,000 … was withheld from ₹60,000", twice
    194J's 10%, with no word why; the earnings page says it (``payouts.common.tds_note``),
    and so does the notice now, in the same words."""
    notice, user, payout = _paid_without_a_pan(world, x)
    assert notice.kind == "payout.processed"
    assert notice.body == (
        f"₹48,000 paid to HDFC ••••5678, UTR {payout.utr}. TDS of ₹12,000 (section 194J) was "
        f"withheld from ₹60,000. {NO_PAN}"
    )
    (mail,) = [m for m in _mails(user) if "Payout" in m.subject]
    assert NO_PAN in " ".join(mail.text.split())


def test_a_pan_entered_before_the_payout_is_paid_is_said_so(world, x):
    """The payout deducted 20% (no PAN when it was made); by the time it is paid the PAN is
    on file: later payouts deduct 10% (as the earnings page says of it)."""
    notice, _user, _payout = _paid_without_a_pan(world, x, enter_pan_before_it_is_paid=True)
    assert notice.body.endswith(
        "No PAN was on file when this payout was made: TDS at 20% (section 206AA). Your PAN "
        "is on file now: later payouts deduct 10%."
    )


def test_the_206aa_reason_in_hindi(world, x):
    notice, user, _payout = _paid_without_a_pan(world, x, language="hi")
    assert notice.body.endswith(
        "आपका PAN रिकॉर्ड में नहीं है: TDS 20% की दर से (धारा 206AA)। आगे के भुगतानों से "
        "10% कटवाने के लिए अपना PAN जोड़ें।"
    )
    assert "No PAN" not in notice.body
    (mail,) = [m for m in _mails(user) if "206AA" in m.text]
    assert "अपना PAN जोड़ें" in mail.text


def test_a_catch_up_at_section_206aas_rate_says_both_as_the_earnings_page(mid_year, world, x):
    """The payout that crosses the threshold without a PAN deducts 20% of the year's
    untaxed gross (₹12,000 of a ₹30,000 payout): "section 206AA" alone would not say why
    it is 40% of this one. The notice says the earnings page's note of it, whole."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    _first, crossing = payouts_of(provider.id)
    assert (crossing.gross, crossing.tds, crossing.tds_higher_section) == (
        3_000_000,
        1_200_000,
        "206AA",
    )
    notice = _told(user.id)[-1]
    assert notice.body.endswith(
        "TDS of ₹12,000 (section 194J) was withheld from ₹30,000. TDS catch-up: this payout "
        "took your gross payouts for FY 2026-27 over the ₹50,000 threshold, so 20% of the "
        "year's untaxed gross so far (this payout included, or a shortfall carried from it) "
        f"is deducted here (section 194J). {NO_PAN}"
    )
