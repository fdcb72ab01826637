"""A returned payout whose money the provider's later payouts already paid out again
(review finding G): its retry is refused, it no longer needs a look, and its page says so;
a retry pays at most what of it is still owed (docs/payouts.md). Before, "Retry" made a
MANUAL payout of whatever the payable held (newer earnings, early, below the ₹500 minimum)
and the pages said "retried as #N"."""

from datetime import date

import pytest

from portal.accounts.models import User
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.payouts import admin as payout_admin
from portal.payouts import runs
from portal.payouts.common import PayoutError
from portal.payouts.returned import still_owed
from tests.payouts.conftest import payable, payouts_of
from tests.payouts.test_retry_returned import REASON, returned_cycle_payout


def _repaid_by_the_next_run(world, x, make_user):
    """₹1,000 returned (3 failures), ₹1,000 earned since; the next WEEKLY run pays the
    whole ₹2,000 (the returned ₹1,000 with it); then ₹400 is earned for the week after."""
    admin, provider, payout = returned_cycle_payout(world, x, make_user("admin").id)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    later = payouts_of(provider.id)[-1]
    assert later.gross == 200_000 and later.status == PayoutStatus.PROCESSED
    user = provider.user
    world.earn(provider, user, 40_000)  # ₹400: below the ₹500 minimum, waits for its cycle
    assert payable(provider.id) == 40_000
    return admin, provider, payout


def test_retrying_a_returned_payout_already_paid_again_does_not_pay_new_earnings_early(
    mid_year, world, x, immediate_retries, make_user
):
    admin, provider, payout = _repaid_by_the_next_run(world, x, make_user)
    assert still_owed(payout) == 0
    with pytest.raises(PayoutError) as refused:
        payout_admin.retry_payout_now(admin, payout.id, REASON)
    assert refused.value.message == payout_admin.MSG_PAID_AGAIN
    x.settle()
    # The ₹400 is next cycle's, under its ₹500 minimum: not paid out by a "retry" of money
    # that already went out with the 8 Nov run.
    assert payable(provider.id) == 40_000
    assert [p.kind for p in payouts_of(provider.id)] == ["CYCLE", "CYCLE"]


def test_a_returned_payout_already_paid_again_does_not_need_a_look(
    mid_year, world, x, immediate_retries, make_user, client, login
):
    from portal.payouts.queries import attention_count

    _repaid_by_the_next_run(world, x, make_user)
    assert attention_count() == 0


def test_a_retry_pays_only_what_of_the_returned_money_is_still_owed(
    mid_year, world, x, immediate_retries, make_user
):
    """₹1,000 returned, a ₹250 penalty since (recovered from the oldest money on the payable,
    as from the next payout), ₹1,000 earned since: the retry pays ₹750, and the ₹1,000
    earned waits for its cycle."""
    admin, provider, payout = returned_cycle_payout(world, x, make_user("admin").id)
    world.penalty(provider, 25_000)
    assert payable(provider.id) == 175_000 and still_owed(payout) == 75_000
    made = payout_admin.retry_payout_now(admin, payout.id, REASON)
    x.settle()
    assert (made.kind, made.gross) == ("MANUAL", 75_000)
    assert payable(provider.id) == 100_000


def test_a_later_payout_that_carried_the_returned_money_holds_it_when_it_returns(
    mid_year, world, x, immediate_retries, make_user
):
    """Two returned payouts, the later one made after the first came back: it paid the
    first's money out again, so its return holds it; the first is owed nothing more."""
    admin, provider, first = returned_cycle_payout(world, x, make_user("admin").id)
    x.sandbox.set_faults(payout_outcome="failed")
    runs.run_cycle("WEEKLY", date(2026, 11, 8))  # pays ₹2,000 (the first's ₹1,000 too)
    x.settle()
    second = payouts_of(provider.id)[-1]
    assert second.returned and second.gross == 200_000 and payable(provider.id) == 200_000
    # The second carried the first's money: the first's claim went with it.
    assert still_owed(first) == 0 and still_owed(second) == 200_000
    x.sandbox.set_faults(payout_outcome="processed")
    payout_admin.retry_payout_now(admin, second.id, REASON)
    x.settle()
    assert payable(provider.id) == 0 and still_owed(first) == 0
    with pytest.raises(PayoutError, match="paid its money out again"):
        payout_admin.retry_payout_now(admin, first.id, REASON)


def test_the_payout_page_says_it_was_paid_again_and_offers_no_retry(
    mid_year, world, x, immediate_retries, make_user, client, login
):
    admin, provider, payout = _repaid_by_the_next_run(world, x, make_user)
    login(admin)
    url = f"/admin/payouts/{payout.id}"
    page = client.get(url).get_data(as_text=True)
    assert f'formaction="{url}/retry"' not in page
    paid_again = page.split('id="paid-again">', 1)[1].split("</td>", 1)[0]
    assert "payouts made since it came back" in paid_again
    assert f'href="/admin/payouts?provider_id={provider.id}"' in paid_again
    assert "need a look" not in client.get("/admin/payouts").get_data(as_text=True)
    refused = client.post(f"{url}/retry", data={"reason": REASON})
    assert refused.status_code == 422
    assert "nothing of it is left to retry" in refused.get_data(as_text=True)
    assert [p.kind for p in payouts_of(provider.id)] == ["CYCLE", "CYCLE"]


def test_two_returns_of_one_money_are_retried_for_it_once(
    mid_year, world, x, immediate_retries, make_user
):
    """Re-read finding: the first payout failed for good; the next run paid its ₹1,000
    out again and failed for good too, while the doctor earned ₹400 (next cycle's, under
    the minimum). Both claimed the one ₹1,000, so retrying both paid ₹1,400. The later
    payout took the oldest money, so the ₹1,000 is its to retry and the first's claim
    went with it: the retries pay ₹1,000 in all, and the ₹400 waits for its cycle."""
    admin = db.session.get(User, make_user("admin").id)
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    runs.run_cycle(provider.payout_schedule, date(2026, 11, 1))
    x.settle()
    (first,) = payouts_of(provider.id)
    assert first.returned and payable(provider.id) == 100_000
    # The next run pays the returned ₹1,000 out again, and that payout fails for good too;
    # while it was on its way the doctor earned ₹400 (next cycle's, under the minimum).
    runs.run_cycle(provider.payout_schedule, date(2026, 11, 8))
    second = payouts_of(provider.id)[-1]
    assert second.id != first.id and second.gross == 100_000
    world.earn(provider, user, 40_000)
    x.settle()
    db.session.expire_all()
    second = db.session.get(type(second), second.id)
    assert second.returned and payable(provider.id) == 140_000
    assert still_owed(first) == 0 and still_owed(second) == 100_000
    with pytest.raises(PayoutError, match="paid its money out again"):
        payout_admin.retry_payout_now(admin, first.id, REASON)
    x.sandbox.set_faults(payout_outcome="processed")
    payout_admin.retry_payout_now(admin, second.id, REASON)
    x.settle()
    db.session.expire_all()
    assert payable(provider.id) == 40_000
    assert [p.gross for p in payouts_of(provider.id)] == [100_000, 100_000, 100_000]
    assert still_owed(db.session.get(type(first), first.id)) == 0
