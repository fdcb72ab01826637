"""The Users page's invitation of an administrator and an administrator's reactivation,
through the pages: while another administrator is active they wait in the approvals queue
(kind "Admin account") for a second administrator; the page says which applies."""

import re

import pytest
import sqlalchemy as sa

from portal.accounts.models import AdminAccessRequest, User
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.conftest import PASSWORD

ASHA = {"name": "Asha Rao", "email": "asha.admin@example.com", "role": "admin"}


def html(response):
    return response.get_data(as_text=True)


def flashes(client, location="/admin/users"):
    page = html(client.get(location))
    return " | ".join(
        re.sub(r"\s+", " ", m) for m in re.findall(r'class="flash[^"]*"[^>]*>(.*?)<', page, re.S)
    )


def _read(app, statement):
    with app.app_context():
        answer = db.session.scalars(statement).all()
        db.session.remove()
    return answer


def _account(app, email):
    return _read(app, sa.select(User).where(User.email == email))


def _mails(app, to):
    return _read(app, sa.select(MailMessage).where(MailMessage.to == to))


@pytest.fixture
def maker(make_user):
    return make_user("admin", name="Meera Maker")


@pytest.fixture
def checker(make_user):
    return make_user("admin", name="Ravi Checker")


def test_the_only_active_administrator_is_told_it_goes_at_once_and_it_does(
    app, client, login, maker, mailbox
):
    login(maker)
    page = html(client.get("/admin/users/invite"))
    assert "You are the only active administrator, so this invitation goes at once" in page
    response = client.post("/admin/users/invite", data=ASHA)
    assert response.status_code == 303 and response.location == "/admin/users"
    assert "Invitation sent to asha.admin@example.com." in flashes(client)
    assert _account(app, ASHA["email"]) and len(mailbox(ASHA["email"])) == 1


@pytest.mark.parametrize("another", [False, True], ids=["alone", "another_active"])
def test_the_invite_page_says_what_the_invitation_then_does(
    app, client, login, maker, make_user, another
):
    """The page's wording, ``admin_access.needs_second_admin`` and what the invitation
    does agree, alone and with another active administrator."""
    from portal.accounts import admin_access

    if another:
        make_user("admin", name="Other Admin")
    login(maker)
    page = html(client.get("/admin/users/invite"))
    says_it_waits = "so this invitation waits until another administrator approves it" in page
    says_at_once = "You are the only active administrator, so this invitation goes at once" in page
    assert says_it_waits != says_at_once
    with app.app_context():
        rule = admin_access.needs_second_admin(db.session.get(User, maker.id))
        db.session.remove()
    client.post("/admin/users/invite", data=ASHA)
    waited = _account(app, ASHA["email"]) == []
    assert says_it_waits is rule is waited is another


def test_with_another_administrator_it_waits_and_the_checker_approves_it(
    app, client, login, maker, checker, mailbox
):
    login(maker)
    page = html(client.get("/admin/users/invite"))
    assert "so this invitation waits until another administrator approves it" in page
    response = client.post("/admin/users/invite", data={**ASHA, "reason": "New finance lead"})
    assert response.status_code == 303 and response.location == "/admin/users"
    said = flashes(client)
    assert "waits for a second administrator" in said and "asha.admin@example.com" in said
    assert _account(app, ASHA["email"]) == [] and mailbox(ASHA["email"]) == []
    users = html(client.get("/admin/users"))
    assert "1 administrator request waits for a second administrator" in users
    assert 'href="/admin/approvals?kind=admin_account"' in users

    # The maker sees it waiting with no Approve, and an approval posted anyway is refused.
    [request_id] = _read(app, sa.select(AdminAccessRequest.id))
    queue = html(client.get("/admin/approvals?kind=admin_account"))
    row = queue.split(f'id="admin_account-approval-{request_id}"')[1].split("</tr>")[0]
    assert "Asha Rao" in row and "asha.admin@example.com" in row and "New finance lead" in row
    assert "Approve" not in row and "Withdraw" in row
    refused = client.post(f"/admin/approvals/admin_account/{request_id}/approve")
    assert refused.status_code == 303
    assert "A different administrator must approve this request." in flashes(
        client, "/admin/approvals"
    )
    assert _account(app, ASHA["email"]) == []

    client.post("/auth/logout")
    login(checker)
    queue = html(client.get("/admin/approvals"))
    row = queue.split(f'id="admin_account-approval-{request_id}"')[1].split("</tr>")[0]
    assert "Admin account" in row
    assert "Approve the invitation of a new administrator (Asha Rao" in row
    response = client.post(
        f"/admin/approvals/admin_account/{request_id}/approve",
        data={"note": "Met her"},
        follow_redirects=True,
    )
    page = html(response)
    assert "Approved." in page
    decided = page.split(f'id="admin_account-decided-{request_id}"')[1].split("</tr>")[0]
    assert "Asked by Meera Maker" in decided and "Approved by Ravi Checker" in decided
    [(subject, text, _)] = mailbox(ASHA["email"])
    assert "/auth/accept-invite/" in text and "Meera Maker" in text

    # The new administrator accepts and signs in.
    token = re.search(r"/auth/accept-invite/(\S+)", text).group(1)
    client.post("/auth/logout")
    accepted = client.post(
        f"/auth/accept-invite/{token}", data={"password": "stethoscope!", "confirm": "stethoscope!"}
    )
    assert accepted.status_code == 303 and accepted.location == "/auth/login"


def test_the_maker_withdraws_and_nothing_is_left(app, client, login, maker, checker):
    login(maker)
    client.post("/admin/users/invite", data=ASHA)
    [request_id] = _read(app, sa.select(AdminAccessRequest.id))
    response = client.post(
        f"/admin/approvals/admin_account/{request_id}/reject", follow_redirects=True
    )
    page = html(response)
    decided = page.split(f'id="admin_account-decided-{request_id}"')[1].split("</tr>")[0]
    assert "Withdrawn by Meera Maker" in decided
    assert _account(app, ASHA["email"]) == [] and _mails(app, ASHA["email"]) == []


def test_the_flash_after_a_decision_is_the_approvals_sources_word(
    app, client, login, maker, checker, monkeypatch
):
    """The maker's own rejection flashes "Withdrawn.", a checker's "Rejected.": words the
    kind's source gives (``ApprovalSource.outcome``), which the page only shows. Were the
    source to word it otherwise, the page would follow (not a choice of its own)."""
    from portal.approvals.sources import ApprovalSource

    login(maker)
    client.post("/admin/users/invite", data=ASHA)
    client.post("/admin/users/invite", data={**ASHA, "email": "kiran.admin@example.com"})
    first, second = _read(app, sa.select(AdminAccessRequest.id).order_by(AdminAccessRequest.id))
    client.post(f"/admin/approvals/admin_account/{first}/reject")
    assert "Withdrawn." in flashes(client, "/admin/approvals")
    client.post("/auth/logout")
    login(checker)
    monkeypatch.setattr(
        ApprovalSource,
        "outcome",
        lambda source, decision, decided: f"{source.label} request {decided.id}: {decision}.",
        raising=False,
    )
    client.post(f"/admin/approvals/admin_account/{second}/reject")
    assert f"Admin account request {second}: reject." in flashes(client, "/admin/approvals")


def test_the_flash_and_the_decision_trail_ask_the_request_whether_it_was_withdrawn(
    app, client, login, maker, checker, monkeypatch
):
    """Whether a decided request was its maker's withdrawal is the request's own answer
    (``AdminAccessRequest.withdrawn``, through its source: ``ApprovalSource.withdrawn``),
    for the flash and the queue's decision trail alike. Were it to call a checker's
    rejection a withdrawal, both would say so: neither compares people of its own."""
    from portal.domain.states import ApprovalStatus

    login(maker)
    client.post("/admin/users/invite", data=ASHA)
    [request_id] = _read(app, sa.select(AdminAccessRequest.id))
    client.post("/auth/logout")
    login(checker)
    monkeypatch.setattr(
        AdminAccessRequest, "withdrawn", property(lambda r: r.status == ApprovalStatus.REJECTED)
    )
    client.post(f"/admin/approvals/admin_account/{request_id}/reject")
    assert "Withdrawn." in flashes(client, "/admin/approvals")
    page = html(client.get("/admin/approvals"))
    decided = page.split(f'id="admin_account-decided-{request_id}"')[1].split("</tr>")[0]
    assert "Withdrawn by Ravi Checker" in decided


def test_what_a_decision_did_is_said_by_its_source_for_every_kind():
    """``ApprovalSource.outcome``: an approval is "Approved."; a rejection "Rejected.",
    unless the kind lets its maker withdraw and the request says it was withdrawn (its
    maker's own rejection). A kind without withdrawals never asks its objects."""
    from portal.approvals.sources import APPROVED, BY_KIND, REJECTED, SOURCES, WITHDRAWN
    from portal.domain.states import ApprovalStatus

    def decided(by):
        return AdminAccessRequest(
            status=ApprovalStatus.REJECTED, requested_by_id=1, decided_by_id=by
        )

    for source in SOURCES:
        assert source.outcome("approve", object()) == APPROVED
        if not source.maker_withdraws:
            assert source.outcome("reject", object()) == REJECTED  # no ``withdrawn`` read
    admin_account = BY_KIND["admin_account"]
    assert admin_account.maker_withdraws
    assert admin_account.outcome("reject", decided(by=1)) == WITHDRAWN
    assert admin_account.outcome("reject", decided(by=2)) == REJECTED


def test_an_invitation_already_waiting_is_said_beside_the_address(
    app, client, login, maker, checker
):
    login(maker)
    client.post("/admin/users/invite", data=ASHA)
    again = client.post("/admin/users/invite", data={**ASHA, "email": "ASHA.ADMIN@example.com"})
    assert again.status_code == 422
    assert "An invitation for this address already waits for a second administrator" in html(again)


def test_reactivating_an_administrator_waits_and_the_checker_approves_it(
    app, client, login, maker, checker, make_user
):
    dormant = make_user("admin", name="Dormant Admin")
    login(maker)
    client.post(f"/admin/users/{dormant.id}/deactivate")
    response = client.post(f"/admin/users/{dormant.id}/reactivate")
    assert response.status_code == 303
    assert "Reactivating Dormant Admin waits for a second administrator" in flashes(client)
    row = html(client.get("/admin/users")).split(f'id="user-{dormant.id}"')[1].split("</tr>")[0]
    assert "Reactivation waits for approval" in row and "Reactivate</button>" not in row
    signing_in = app.test_client()
    assert (
        signing_in.post(
            "/auth/login", data={"email": dormant.email, "password": PASSWORD}
        ).status_code
        == 422
    )

    [request_id] = _read(app, sa.select(AdminAccessRequest.id))
    client.post("/auth/logout")
    login(checker)
    response = client.post(f"/admin/approvals/admin_account/{request_id}/approve")
    assert "Approved." in flashes(client, "/admin/approvals")
    assert (
        signing_in.post(
            "/auth/login", data={"email": dormant.email, "password": PASSWORD}
        ).status_code
        == 303
    )


def test_the_only_active_administrator_reactivates_at_once(app, client, login, maker, make_user):
    other = make_user("admin", name="Other Admin")
    login(maker)
    client.post(f"/admin/users/{other.id}/deactivate")
    client.post(f"/admin/users/{other.id}/reactivate")
    assert "Other Admin can sign in again." in flashes(client)
    assert _read(app, sa.select(AdminAccessRequest.id)) == []


def test_the_page_and_both_use_cases_ask_one_rule_whether_a_second_administrator_approves(
    app, client, login, maker, make_user, monkeypatch
):
    """The invitation page's wording, the invitation and the reactivation all follow
    ``admin_access.needs_second_admin``: were the rule to say a second administrator
    approves even the only one's, the page says so and both wait (not a count of their
    own in the view or in either use case)."""
    from portal.accounts import admin_access

    other = make_user("admin", name="Other Admin")
    login(maker)
    client.post(f"/admin/users/{other.id}/deactivate")
    # Alone now: the real rule lets everything go at once; this one never does.
    monkeypatch.setattr(admin_access, "needs_second_admin", lambda admin: True, raising=False)
    page = html(client.get("/admin/users/invite"))
    assert "so this invitation waits until another administrator approves it" in page
    assert "You are the only active administrator" not in page and 'name="reason"' in page
    client.post("/admin/users/invite", data=ASHA)
    assert _account(app, ASHA["email"]) == []
    client.post(f"/admin/users/{other.id}/reactivate")
    assert "Reactivating Other Admin waits for a second administrator" in flashes(client)
    assert len(_read(app, sa.select(AdminAccessRequest.id))) == 2
