"""An admin's retry of a payout given back to the payable (its attempts failed, the money
back on the payable) makes one MANUAL payout, once. Review finding: a second click (or a
second tab) made another, paying the next cycle's earnings early and skipping its ₹500
minimum."""

from datetime import date

import pytest

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.payouts import admin as payout_admin
from portal.payouts import runs
from portal.payouts.common import PayoutError
from tests.payouts.conftest import payable, payouts_of

REASON = "Bank is back up, retrying"


def returned_cycle_payout(world, x, admin_id):
    """A WEEKLY doctor's ₹1,000 cycle payout failed on every attempt (money back on the
    payable); since then the doctor earned ₹1,000 more, due next cycle: payable ₹2,000."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    runs.run_cycle(provider.payout_schedule, date(2026, 11, 1))
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.returned and payable(provider.id) == 100_000
    x.sandbox.set_faults(payout_outcome="processed")
    world.earn(provider, user, 100_000)
    assert payable(provider.id) == 200_000
    return db.session.get(User, admin_id), provider, payout


def test_a_returned_payout_retried_twice_in_a_row_is_paid_once(
    mid_year, world, x, immediate_retries, make_user
):
    admin, provider, payout = returned_cycle_payout(world, x, make_user("admin").id)
    made = payout_admin.retry_payout_now(admin, payout.id, REASON)
    x.settle()
    with pytest.raises(PayoutError) as refused:
        payout_admin.retry_payout_now(admin, payout.id, REASON)
    assert refused.value.message == f"This payout was already retried: payout #{made.id}."
    db.session.expire_all()
    retries = [(p.kind, p.gross) for p in payouts_of(provider.id) if p.id != payout.id]
    assert retries == [("MANUAL", 100_000)]
    assert db.session.get(type(payout), payout.id).retried_by_payout_id == made.id
    assert payable(provider.id) == 100_000  # next cycle's earnings wait for the next cycle
    audited = db.session.query(AuditEntry).filter_by(action="payout.admin_retry").count()
    assert audited == 1


def test_the_payout_page_links_the_retry_and_offers_no_second_one(
    mid_year, world, x, immediate_retries, make_user, client, login
):
    admin_user = make_user("admin")
    admin, provider, payout = returned_cycle_payout(world, x, admin_user.id)
    login(admin_user)
    url = f"/admin/payouts/{payout.id}"
    assert "payout(s) held or failed for good need a look" in client.get("/admin/payouts").text
    assert f'formaction="{url}/retry"' in client.get(url).get_data(as_text=True)
    done = client.post(f"{url}/retry", data={"reason": REASON})
    assert done.status_code == 303
    x.settle()
    (made,) = [p for p in payouts_of(provider.id) if p.id != payout.id]
    page = client.get(url).get_data(as_text=True)
    assert f'formaction="{url}/retry"' not in page
    assert f'href="/admin/payouts/{made.id}"' in page and f"#{made.id}" in page
    listed = client.get("/admin/payouts").get_data(as_text=True)
    row = listed.split(f'id="payout-{payout.id}"', 1)[1].split("</tr>", 1)[0]
    assert f'retried as <a href="/admin/payouts/{made.id}">#{made.id}</a>' in row
    assert "need a look" not in listed  # its money went out again: nothing to look at
    again = client.post(f"{url}/retry", data={"reason": REASON})
    assert again.status_code == 422
    assert f"already retried: payout #{made.id}" in again.get_data(as_text=True)
