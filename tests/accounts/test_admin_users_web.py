"""Admin users page: search as you type, role filter, pages, invitations, deactivation."""

import re

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.extensions import db
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}


def html(response):
    return response.get_data(as_text=True)


@pytest.fixture
def admin(make_user, login):
    user = make_user("admin", name="Meera Admin")
    login(user)
    return user


def test_list_page_and_search_fragment(client, make_user, admin):
    make_user("patient", name="Asha Rao", email="asha@example.com")
    make_user("provider", name="Dr Kavya Mehta", email="kavya@example.com")
    page = client.get("/admin/users")
    assert page.status_code == 200 and "<html" in html(page)
    assert "Asha Rao" in html(page) and "Dr Kavya Mehta" in html(page)
    assert 'hx-trigger="input changed delay:300ms, search"' in html(page)

    fragment = client.get("/admin/users?q=KAVYA", headers=HX)
    assert fragment.status_code == 200 and "<html" not in html(fragment)
    assert "Dr Kavya Mehta" in html(fragment) and "Asha Rao" not in html(fragment)
    by_phone = client.get("/admin/users?q=98123 45678", headers=HX)
    assert "Asha Rao" in html(by_phone)  # make_user gives everyone +919812345678
    nothing = client.get("/admin/users?q=%25", headers=HX)  # LIKE wildcards are literal
    assert "No users found." in html(nothing)


def test_role_filter(client, make_user, admin):
    make_user("patient", name="Asha Rao")
    make_user("provider", name="Dr Kavya Mehta")
    fragment = client.get("/admin/users?role=provider", headers=HX)
    assert "Dr Kavya Mehta" in html(fragment) and "Asha Rao" not in html(fragment)
    assert "Asha Rao" in html(client.get("/admin/users?role=bogus"))  # unknown role: all


def test_pagination(client, make_user, admin):
    for n in range(25):
        make_user("patient", name=f"Patient {n:02d}")
    first = html(client.get("/admin/users?role=patient"))
    assert "Patient 00" in first and "Patient 20" not in first
    assert "25 users" in first and 'rel="next"' in first and 'rel="prev"' not in first
    next_url = re.search(r'href="([^"]*after=[^"]*)" rel="next"', first).group(1)
    assert "role=patient" in next_url  # the filter travels with the cursor
    second = html(client.get(next_url.replace("&amp;", "&"), headers=HX))
    assert "Patient 20" in second and "Patient 24" in second and "Patient 00" not in second
    assert 'rel="next"' not in second and 'rel="prev"' in second
    # A cursor that is not one shows the first page, not an error.
    assert "Patient 00" in html(client.get("/admin/users?role=patient&after=%%%not-a-cursor"))


def test_invite_form_validation(client, make_user, admin):
    assert client.get("/admin/users/invite").status_code == 200
    make_user("patient", email="taken@example.com")
    response = client.post(
        "/admin/users/invite", data={"name": "X", "email": "taken@example.com", "role": "admin"}
    )
    assert response.status_code == 422
    assert "An account with this email already exists." in html(response)
    response = client.post(
        "/admin/users/invite", data={"name": "", "email": "nope", "role": "patient", "phone": "123"}
    )
    assert response.status_code == 422
    for message in ("Enter their name.", "Not a valid choice"):
        assert message in html(response)


def test_the_users_page_invites_no_provider_login(app, client, admin):
    """Review rev6: the Users page offered "Provider (doctor or lab)" and made a login
    with no profile, which the catalog's new-provider page then refused ("An account with
    this email already exists"): a doctor who could never be booked. Now the Users page
    invites administrators only and points to the catalog's provider page, which invites
    the login with its profile."""
    page = html(client.get("/admin/users/invite"))
    assert 'value="provider"' not in page and "Provider (doctor or lab)" not in page
    assert 'href="/admin/providers/new"' in page
    response = client.post(
        "/admin/users/invite",
        data={"name": "Dr Kavya", "email": "kavya@example.com", "role": "provider"},
    )
    assert response.status_code == 422 and "Not a valid choice" in html(response)
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.email == "kavya@example.com")) is None
        db.session.remove()


def test_a_provider_login_without_a_profile_still_works(client, make_user, login):
    """Provider logins made by the Users page before the change (no profile) still sign in
    and see their pages (each says there is no profile yet)."""
    login(make_user("provider", name="Dr Old Invite"))
    for path in ("/provider/", "/provider/availability", "/provider/earnings"):
        assert client.get(path).status_code == 200, path


def test_deactivate_and_reactivate(app, client, make_user, admin):
    patient = make_user("patient", name="Asha Rao")
    response = client.post(
        f"/admin/users/{patient.id}/deactivate", data={"next": "/admin/users?q=asha"}
    )
    assert response.status_code == 303 and response.location == "/admin/users?q=asha"
    assert "Asha Rao can no longer sign in." in html(client.get(response.location))
    other = app.test_client()
    assert (
        other.post("/auth/login", data={"email": patient.email, "password": PASSWORD}).status_code
        == 422
    )
    response = client.post(
        f"/admin/users/{patient.id}/reactivate", data={"next": "https://evil.example/"}
    )
    assert response.location == "/admin/users"
    assert (
        other.post("/auth/login", data={"email": patient.email, "password": PASSWORD}).status_code
        == 303
    )
    assert client.post("/admin/users/999999/deactivate").status_code == 404


def test_admin_cannot_deactivate_themselves(client, admin):
    response = client.post(f"/admin/users/{admin.id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate your own account." in html(response)
    assert client.get("/admin/users").status_code == 200


@pytest.mark.parametrize("role", ["patient", "provider"])
def test_other_roles_get_403(client, make_user, login, role):
    user = make_user(role)
    login(user)
    assert client.get("/admin/users").status_code == 403
    assert client.post(f"/admin/users/{user.id}/deactivate").status_code == 403
    assert client.post("/admin/users/invite", data={}).status_code == 403


@pytest.mark.parametrize("name", ["12.5", "0", "2026-12-15T99:99"])
def test_an_invite_name_needs_a_letter(app, client, admin, name):
    """Review rev-input: "12.5" was invited as an administrator's name."""
    response = client.post(
        "/admin/users/invite", data={"name": name, "email": "n@example.com", "role": "admin"}
    )
    assert (
        response.status_code == 422
        and "Enter a name in letters, not only numbers or a date." in html(response)
    )
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.email == "n@example.com")) is None
        db.session.remove()


def test_a_deactivated_admins_next_post_is_refused_within_one_app_context(app, make_user):
    """Within one app context (as tests hold it), Flask reuses ``g`` across requests, and
    Flask-Login's user of one request carried over to the next: a deactivated admin's post
    went through in tests though production, a ``g`` per request, refuses it (review 4B).
    The test app forgets the user at each request's start (``tests.plugin``)."""
    from tests.plugin import sign_in

    first, second = make_user("admin", name="First Admin"), make_user("admin", name="Checker")
    with app.app_context():
        checker = sign_in(app, second)
        assert checker.get("/admin/users").status_code == 200
        deciding = sign_in(app, first)
        assert deciding.post(f"/admin/users/{second.id}/deactivate").status_code == 303
        refused = checker.post(f"/admin/users/{first.id}/deactivate")
        assert refused.status_code in (302, 303) and "/auth/login" in refused.location
        assert db.session.get(User, first.id, populate_existing=True).active
