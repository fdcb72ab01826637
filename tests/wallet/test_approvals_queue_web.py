"""The one approvals queue with two kinds at once: a refund override (from a real paid and
cancelled booking) and a wallet adjustment, paged together by keyset, narrowed by kind,
decided through the kind's own use case; and the History links of the visit, payment and
refund pages."""

import re

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.extensions import db
from portal.refunds.models import Refund, RefundApproval
from portal.wallet import adjustments as adj
from portal.wallet.models import WalletAdjustment
from tests.booking.conftest import gateway, users, world  # noqa: F401
from tests.booking.factories import at
from tests.refunds.conftest import clock  # noqa: F401
from tests.refunds.helpers import (
    book_and_pay,
    hours,
    login,
    quoted_admin_cancel,
    with_known_passwords,
)


@pytest.fixture
def queue(app, world, users, gateway, clock, make_user):  # noqa: F811
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    item_id, visit_id = visit.items[0].id, visit.id
    clock.move_to(at(4, 10) - hours(10))
    admin = users(world.admin)
    quoted_admin_cancel(admin, item_id, "Doctor was two hours late last time", override=52_950)
    approval_id = db.session.scalars(sa.select(RefundApproval.id)).one()
    clock.move_to(at(4, 10) - hours(9))
    adjustment_id = adj.create_adjustment(
        admin, patient.id, adj.CREDIT, 12_000_00, "Goodwill for the late doctor", "Goodwill"
    ).id
    admin_email = admin.email
    db.session.remove()
    checker = make_user("admin", email="checker@example.com", name="Ravi Checker")
    return {
        "approval": approval_id,
        "adjustment": adjustment_id,
        "visit": visit_id,
        "admin": admin_email,
        "checker": checker.email,
    }


def test_both_kinds_wait_in_one_list_paged_and_narrowed(app, client, queue):
    login(client, queue["checker"])
    html = client.get("/admin/approvals").get_data(as_text=True)
    order = re.findall(r'<tr id="(\w+)-approval-(\d+)"', html)
    assert order == [
        ("refund", str(queue["approval"])),
        ("wallet_adjustment", str(queue["adjustment"])),
    ]
    assert "Approve the extra refund of" in html and "Approve the credit of ₹12,000" in html
    first = client.get("/admin/approvals?per_page=1").get_data(as_text=True)
    assert re.findall(r'<tr id="(\w+)-approval-', first) == ["refund"]
    nxt = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(nxt).get_data(as_text=True)
    assert re.findall(r'<tr id="(\w+)-approval-', second) == ["wallet_adjustment"]
    only = client.get("/admin/approvals?kind=wallet_adjustment").get_data(as_text=True)
    assert re.findall(r'<tr id="(\w+)-approval-', only) == ["wallet_adjustment"]


def test_each_kind_is_decided_by_its_own_use_case(app, client, queue):
    login(client, queue["admin"])  # the maker of both
    r = client.post(f"/admin/approvals/refund/{queue['approval']}/approve", follow_redirects=True)
    assert "A different administrator must approve this refund" in r.get_data(as_text=True)
    client.post("/auth/logout")
    login(client, queue["checker"])
    r = client.post(
        f"/admin/approvals/refund/{queue['approval']}/approve",
        data={"note": "Agreed"},
        follow_redirects=True,
    )
    assert "Approved." in r.get_data(as_text=True)
    r = client.post(
        f"/admin/approvals/wallet_adjustment/{queue['adjustment']}/reject",
        data={"note": "Refund is enough"},
        follow_redirects=True,
    )
    html = r.get_data(as_text=True)
    assert "Rejected." in html and 'id="nothing-waiting"' in html
    with app.app_context():
        assert db.session.get(RefundApproval, queue["approval"]).status == "APPROVED"
        assert db.session.get(WalletAdjustment, queue["adjustment"]).status == "REJECTED"
    decided = re.findall(r'<tr id="(\w+)-decided-(\d+)"', html)
    assert [k for k, _ in decided] == ["wallet_adjustment", "refund"]  # latest decision first


def test_visit_payment_and_refund_pages_link_to_their_history(app, client, queue):
    login(client, queue["checker"])
    visit = client.get(f"/admin/visits/{queue['visit']}").get_data(as_text=True)
    assert f"/admin/audit?object_type=visit&amp;object_id={queue['visit']}" in visit
    assert "/admin/audit?object_type=booking&amp;object_id=" in visit
    assert "/admin/audit?object_type=payment&amp;object_id=" in visit
    with app.app_context():
        refund_id = db.session.scalars(sa.select(Refund.id)).first()
        admin_id = db.session.scalars(sa.select(User.id).where(User.email == queue["admin"])).one()
    refunds = client.get("/admin/refunds").get_data(as_text=True)
    assert f"/admin/audit?object_type=refund&amp;object_id={refund_id}" in refunds
    history = client.get(f"/admin/audit?object_type=booking&actor={admin_id}").get_data(True)
    assert "booking.cancel" in history


def test_each_row_says_what_its_source_says_a_debit_too(app, client, queue):
    """Re-read: the page has no wording per kind of its own; each source's ``describe``
    gives the confirm wording and the details, and ``shows_amount`` the amount or "—". A
    waiting debit reads signed and its confirm boxes name a debit; once decided, a refund's
    "total after approval" (untrue once rejected) is not repeated beside its reason."""
    with app.app_context():
        admin = db.session.scalars(sa.select(User).where(User.email == queue["admin"])).one()
        checker = db.session.scalars(sa.select(User).where(User.email == queue["checker"])).one()
        adj.approve_adjustment(checker, queue["adjustment"])  # ₹12,000 in the wallet
        patient_id = db.session.get(WalletAdjustment, queue["adjustment"]).patient_id
        debit = adj.create_adjustment(
            admin, patient_id, adj.DEBIT, 5_000_00, "Credited twice", "Correction"
        )
        debit_id, status = debit.id, debit.status
        db.session.remove()
    assert status == "PENDING_APPROVAL"  # 17,000 by one admin in 24 hours
    login(client, queue["checker"])
    client.post(f"/admin/approvals/refund/{queue['approval']}/reject", data={"note": "No"})
    html = client.get("/admin/approvals").get_data(as_text=True)
    row = html.split(f'id="wallet_adjustment-approval-{debit_id}"')[1].split("</tr>")[0]
    assert '<td class="num">−₹5,000</td>' in row
    assert "Debit. Internal note: Credited twice" in row
    assert "Approve the debit of ₹5,000 (Wallet of " in row and "Reject the debit of ₹5,000?" in row
    refund = html.split(f'id="refund-decided-{queue["approval"]}"')[1].split("</tr>")[0]
    assert '<td class="num">₹' in refund and "total after approval" not in refund


def test_paging_one_list_keeps_the_others_place_and_the_kind(app, client, queue):
    """Review finding (as on the reconciliation screen): the page's two lists, waiting and
    decided, page apart, but each pager was built with the kind alone, so paging the
    decided ones put the waiting ones back to their first page, and the other way round."""
    from urllib.parse import urlencode

    from tests.pagers import next_link, pager_links

    with app.app_context():  # two more waiting adjustments, two decided
        admin = db.session.scalar(sa.select(User).where(User.email == queue["admin"]))
        checker = db.session.scalar(sa.select(User).where(User.email == queue["checker"]))
        patient_id = db.session.get(WalletAdjustment, queue["adjustment"]).patient_id
        made = [
            adj.create_adjustment(
                admin, patient_id, adj.CREDIT, 100_00, "Goodwill again", "Goodwill"
            )
            for _ in range(4)
        ]
        assert {a.status for a in made} == {"PENDING_APPROVAL"}  # over the window's threshold
        made = [a.id for a in made]
        for adjustment_id in made[:2]:
            adj.reject_adjustment(checker, adjustment_id, note="Not this one")
        db.session.remove()
    login(client, queue["checker"])
    base = {"kind": "wallet_adjustment", "per_page": "1", "decided_per_page": "1"}
    first = client.get("/admin/approvals?" + urlencode(base)).get_data(as_text=True)
    decided_place = {**base, **next_link(first, "decided_after")}
    html = client.get("/admin/approvals?" + urlencode(decided_place)).get_data(as_text=True)
    waiting_links = pager_links(html, "after")
    assert waiting_links and all(
        link.get("decided_after") == decided_place["decided_after"]
        and link.get("decided_per_page") == "1"
        and link.get("kind") == "wallet_adjustment"
        for link in waiting_links
    ), waiting_links
    waiting_place = {**base, **next_link(first, "after")}
    html = client.get("/admin/approvals?" + urlencode(waiting_place)).get_data(as_text=True)
    decided_links = pager_links(html, "decided_after")
    assert decided_links and all(
        link.get("after") == waiting_place["after"]
        and link.get("per_page") == "1"
        and link.get("kind") == "wallet_adjustment"
        for link in decided_links
    ), decided_links
