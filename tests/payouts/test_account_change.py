"""A change of bank account: until the new account is validated, payouts keep going to the
last validated one, and the bank and earnings pages say where they go (review finding: a
failed new account stopped payouts to the account that was working)."""

from datetime import datetime

from portal.domain.states import FundAccountStatus
from portal.extensions import db
from portal.payouts import models as m
from portal.payouts import reports
from portal.payouts.common import Skipped, payout_fund_account, pays_earlier_account
from portal.payouts.create import create_payout


def test_a_failed_new_account_leaves_payouts_going_to_the_validated_one(world, x):
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    failed = world.onboard(provider, user, number="123456780000")  # sandbox: ...0000 is dead
    assert failed.current and failed.status == FundAccountStatus.FAILED
    assert payout_fund_account(provider.id).id == first.id
    world.earn(provider, user, 100_000)
    payout = create_payout(provider.id, kind=m.CYCLE_KIND)
    assert not isinstance(payout, Skipped)
    assert payout.fund_account_id == first.id


def test_a_pending_new_account_leaves_payouts_going_to_the_validated_one_until_it_validates(
    world, x
):
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    second = world.onboard(provider, user, number="50100099990001", settle=False)
    assert second.status == FundAccountStatus.PENDING
    world.earn(provider, user, 100_000)
    payout = create_payout(provider.id, kind=m.CYCLE_KIND)
    assert payout.fund_account_id == first.id
    db.session.commit()
    x.settle()
    assert db.session.get(m.FundAccount, second.id).status == FundAccountStatus.VALIDATED
    world.earn(provider, user, 100_000)
    payout = create_payout(provider.id, kind=m.CYCLE_KIND)
    assert payout.fund_account_id == second.id


def test_an_account_replaced_before_it_validated_never_gets_payouts(world, x):
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    given_up = world.onboard(provider, user, number="50100099990001", settle=False)
    world.onboard(provider, user, number="123456780000", settle=False)
    x.settle()  # the given-up account's validation comes back after it was replaced
    assert db.session.get(m.FundAccount, given_up.id).status == FundAccountStatus.VALIDATED
    assert payout_fund_account(provider.id).id == first.id


def test_no_validated_account_at_all_still_pays_nothing(world, x):
    provider, user = world.provider("WEEKLY")
    world.onboard(provider, user, number="123456780000")
    world.earn(provider, user, 100_000)
    assert payout_fund_account(provider.id) is None
    assert isinstance(create_payout(provider.id, kind=m.CYCLE_KIND), Skipped)


def test_the_pages_flag_says_whether_payouts_go_to_an_earlier_account(world, x):
    """``pays_earlier_account``: computed once for the bank and earnings pages (each page
    compared the two accounts itself, in the page and again in the macro)."""
    assert not pays_earlier_account(None, None)
    provider, user = world.provider("WEEKLY")
    failed = world.onboard(provider, user, number="123456780000")  # nothing validated yet
    assert not pays_earlier_account(failed, None)
    assert reports.dashboard(provider)["pays_earlier_account"] is False
    first = world.onboard(provider, user)
    context = reports.dashboard(provider)
    assert context["payout_account"].id == context["fund_account"].id == first.id
    assert context["pays_earlier_account"] is False  # the current account pays
    second = world.onboard(provider, user, number="50100099990001", settle=False)
    context = reports.dashboard(provider)
    assert (context["fund_account"].id, context["payout_account"].id) == (second.id, first.id)
    assert context["pays_earlier_account"] is True  # until the new one validates
    x.settle()
    assert reports.dashboard(provider)["pays_earlier_account"] is False


def _save(client, number):
    form = {"kind": "bank_account", "holder_name": "Asha Rao", "ifsc": "HDFC0001234"}
    form |= {"account_number": number, "confirm_account_number": number}
    assert client.post("/provider/bank", data=form).status_code == 303


def test_the_pages_say_payouts_still_go_to_the_old_account(world, x, client, login):
    provider, user = world.provider("WEEKLY")
    db.session.commit()
    login(user)
    _save(client, "50100012345678")
    x.settle()
    _save(client, "50100099990001")  # pending: its result is not delivered yet
    bank = client.get("/provider/bank").get_data(as_text=True)
    assert "Payouts go to HDFC0001234 ••••5678 until the new account is validated." in bank
    earnings = client.get("/provider/earnings").get_data(as_text=True)
    assert "Payouts go to HDFC0001234 ••••5678 until the new account is validated." in earnings
    assert "Payouts start once your account is validated." not in earnings

    _save(client, "123456780000")  # dead; the replaced pending one validates late
    x.settle()
    bank = client.get("/provider/bank").get_data(as_text=True)
    assert (
        "The new account failed validation: The bank says this account is not active. "
        "Payouts still go to HDFC0001234 ••••5678."
    ) in bank
    assert "payouts go here" in bank.split("Earlier accounts", 1)[1]
    earnings = client.get("/provider/earnings").get_data(as_text=True)
    assert "Payouts still go to HDFC0001234 ••••5678." in earnings
    assert "Payouts start once your account is validated." not in earnings


def _row(page, provider_id):
    import re

    found = re.search(rf'<tr id="provider-{provider_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row for provider {provider_id}"
    return found.group(1)


def _validated_on(row):
    from portal.domain.rates import INDIA_TZ

    return row.validated_at.astimezone(INDIA_TZ).strftime("%d %b %Y")


def test_the_admin_pages_say_where_payouts_go(world, x, client, login, make_user):
    """The admin's accounts page showed the current account's status alone: a provider
    whose new account failed read "failed", with nothing to say payouts still go to the
    older validated account, or that none can (review finding). It says where they go,
    by the same rule (``payout_fund_account``), and so does a payout's page."""
    provider, user = world.provider("WEEKLY")
    first = world.onboard(provider, user)
    world.earn(provider, user, 100_000)
    payout = create_payout(provider.id, kind=m.CYCLE_KIND)
    assert payout.fund_account_id == first.id
    second = world.onboard(provider, user, number="50100099990001")
    failed = world.onboard(provider, user, number="123456780000")  # sandbox: ...0000 is dead
    assert failed.status == FundAccountStatus.FAILED
    assert payout_fund_account(provider.id).id == second.id
    world.earn(provider, user, 100_000)  # a payable again: Pay now is offered
    nowhere, nowhere_user = world.provider("WEEKLY")
    world.onboard(nowhere, nowhere_user, number="123456780000")
    world.earn(nowhere, nowhere_user, 100_000)
    db.session.commit()
    login(make_user("admin"))

    page = client.get("/admin/payouts/accounts").get_data(as_text=True)
    row = _row(page, provider.id)
    assert 'data-status="FAILED"' in row  # the current account, as before
    assert f"Payouts go to: {second.masked} (validated {_validated_on(second)})" in row
    assert f"/admin/payouts/providers/{provider.id}/pay" in row
    row = _row(page, nowhere.id)
    assert "No validated account: payouts wait" in row and "Payouts go to" not in row
    assert f"/admin/payouts/providers/{nowhere.id}/pay" not in row

    detail = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    assert first.masked in detail  # this payout's own account
    assert f"Payouts go to: {second.masked} (validated {_validated_on(second)})" in detail


def test_the_accounts_page_reads_where_payouts_go_without_a_query_per_provider(
    world, x, client, login, make_user
):
    from tests.querycount import counted_queries

    def provider_with_changes():
        provider, user = world.provider("WEEKLY")
        world.onboard(provider, user)
        world.onboard(provider, user, number="123456780000")

    provider_with_changes()
    login(make_user("admin"))
    client.get("/admin/payouts/accounts")  # warm: the signed-in user loaded, as below
    with counted_queries() as few:
        assert client.get("/admin/payouts/accounts").status_code == 200
    for _ in range(3):
        provider_with_changes()
    client.get("/admin/payouts/accounts")
    with counted_queries() as more:
        page = client.get("/admin/payouts/accounts").get_data(as_text=True)
    assert page.count("Payouts go to: ") == 4
    assert len(more) == len(few)


def test_a_validated_account_without_its_validation_time_is_no_older_accounts_proof():
    """A VALIDATED row with no ``validated_at`` (written before that column was) raised a
    TypeError in the rule when it was not the current one (re-read finding): it is passed
    over, and the current account, validated, still pays."""
    from types import SimpleNamespace

    from portal.payouts.common import payout_account_among

    new = SimpleNamespace(can_pay=False, validated_at=None, created_at=datetime(2026, 6, 2))
    old = SimpleNamespace(can_pay=True, validated_at=None, created_at=datetime(2026, 5, 1))
    older = SimpleNamespace(
        can_pay=True, validated_at=datetime(2026, 4, 2), created_at=datetime(2026, 4, 1)
    )
    assert payout_account_among([new, old, older]) is older
    assert payout_account_among([old, older]) is old


def _section(page, marker):
    return page.split(marker, 1)[1].split("</section>", 1)[0]


def test_a_not_validated_account_is_said_once_with_what_to_do(world, x, client, login):
    """Review finding: a new account RazorpayX could not validate read, on the bank page,
    "The account could not be validated. Check the details. Enter the details again
    below." and on the earnings page "The new account failed validation: The account
    could not be validated. Check the details. Payouts still go to …": the failure said
    twice, and a generic "Check the details". Now what is wrong (the ₹1 check did not go
    through) and what to do (the IFSC and the account number, or the UPI id), once each,
    on both pages and in Hindi."""
    from flask_babel import refresh

    provider, user = world.provider("WEEKLY")
    db.session.commit()
    login(user)
    _save(client, "50100012345678")
    x.settle()
    x.sandbox.set_faults(validation_outcome="failed")
    _save(client, "50100099990001")
    x.settle()
    said = (
        "The new account failed validation: The ₹1 check to this account did not go through. "
        "Payouts still go to HDFC0001234 ••••5678. Check the IFSC and the account number, "
        "and enter them again."
    )
    bank = _section(client.get("/provider/bank").get_data(as_text=True), 'id="fund-account-status"')
    earnings = _section(client.get("/provider/earnings").get_data(as_text=True), 'id="bank-status"')
    for page in (bank, earnings):
        assert said in " ".join(page.split()), page
        assert "Check the details" not in page and "could not be validated" not in page
        assert page.count("again") == 1
    client.post("/language", data={"language": "hi", "next": "/"})
    refresh()
    bank = _section(client.get("/provider/bank").get_data(as_text=True), 'id="fund-account-status"')
    assert "₹1 की जाँच" in bank and "IFSC" in bank and "विवरण जाँचें" not in bank


def test_a_first_account_not_validated_says_what_to_do(world, x, client, login):
    """No earlier account to pay meanwhile: the bank page says what is wrong and what to do
    once; the earnings page too, beside "Payouts start once your account is validated."
    A UPI id is told to check the UPI id."""
    provider, user = world.provider("WEEKLY")
    db.session.commit()
    login(user)
    x.sandbox.set_faults(validation_outcome="failed")
    form = {"kind": "vpa", "holder_name": "Asha Rao", "vpa": "asha@okhdfc"}
    assert client.post("/provider/bank", data=form).status_code == 303
    x.settle()
    bank = _section(client.get("/provider/bank").get_data(as_text=True), 'id="fund-account-status"')
    said = "The ₹1 check to this UPI id did not go through. Check the UPI id and enter it again."
    assert said in " ".join(bank.split()) and "Check the details" not in bank, bank
    earnings = _section(client.get("/provider/earnings").get_data(as_text=True), 'id="bank-status"')
    assert said in " ".join(earnings.split()), earnings
    assert "Payouts start once your account is validated." in earnings
