"""A patient's dependents: full pages and htmx fragments, validation, ownership."""

from datetime import date

import pytest

from portal.accounts import dependents
from portal.accounts.models import Dependent, User
from portal.extensions import db

HX = {"HX-Request": "true"}


def html(response):
    return response.get_data(as_text=True)


@pytest.fixture
def patient(make_user, login):
    user = make_user("patient")
    login(user)
    return user


def add(app, guardian, name="Anya Rao", relationship="child", dob=date(2019, 4, 2)):
    with app.app_context():
        return dependents.add_dependent(
            db.session.get(User, guardian.id), name, relationship, dob
        ).id


def test_full_page_and_htmx_fragment(app, client, patient):
    add(app, patient)
    page = client.get("/me/dependents")
    assert page.status_code == 200
    assert "<html" in html(page) and "Anya Rao" in html(page)
    assert 'id="dependents"' in html(page)
    fragment = client.get("/me/dependents", headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in html(fragment) and "Anya Rao" in html(fragment)
    assert 'hx-post="/me/dependents"' in html(fragment)
    assert "HX-Request" in fragment.headers["Vary"]
    # A boosted navigation is a whole page.
    boosted = client.get("/me/dependents", headers={**HX, "HX-Boosted": "true"})
    assert "<html" in html(boosted)


def test_add_with_htmx_returns_the_new_list(app, client, patient):
    response = client.post(
        "/me/dependents",
        headers=HX,
        data={"name": "Anya Rao", "relationship": "child", "date_of_birth": "2019-04-02"},
    )
    assert response.status_code == 303 and response.location == "/me/dependents"
    fragment = client.get(response.location, headers=HX)
    assert "<html" not in html(fragment)
    assert "Anya Rao" in html(fragment) and "02 Apr 2019" in html(fragment)
    assert "Anya Rao added." in html(fragment)  # the flash travels with the fragment
    with app.app_context():
        assert db.session.query(Dependent).filter_by(guardian_id=patient.id).count() == 1


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "", "relationship": "child"}, "Enter their name."),
        ({"name": "Anya", "relationship": ""}, "Enter how they are related to you."),
        ({"name": "Anya", "relationship": "cousin"}, "Not a valid choice"),
        (
            {"name": "Anya", "relationship": "child", "date_of_birth": "tomorrow"},
            "Not a valid date value",
        ),
        (
            {"name": "Anya", "relationship": "child", "date_of_birth": "2098-01-01"},
            "Date of birth cannot be in the future.",
        ),
    ],
)
def test_invalid_add_is_422_with_the_message_beside_the_field(client, patient, data, message):
    fragment = client.post("/me/dependents", headers=HX, data=data)
    assert fragment.status_code == 422
    assert message in html(fragment) and "<html" not in html(fragment)
    assert 'class="field has-error"' in html(fragment)
    page = client.post("/me/dependents", data=data)
    assert page.status_code == 422
    assert message in html(page) and "<html" in html(page)


def test_edit_and_remove(app, client, patient):
    dependent_id = add(app, patient)
    form = client.get(f"/me/dependents/{dependent_id}/edit", headers=HX)
    assert form.status_code == 200 and 'value="Anya Rao"' in html(form)
    assert "<html" not in html(form)
    assert client.get(f"/me/dependents/{dependent_id}/edit").status_code == 200
    response = client.post(
        f"/me/dependents/{dependent_id}/edit",
        data={"name": "Anya R", "relationship": "child", "date_of_birth": ""},
    )
    assert response.status_code == 303
    invalid = client.post(
        f"/me/dependents/{dependent_id}/edit", data={"name": "", "relationship": "child"}
    )
    assert invalid.status_code == 422 and "Enter their name." in html(invalid)
    with app.app_context():
        dependent = db.session.get(Dependent, dependent_id)
        assert (dependent.name, dependent.date_of_birth) == ("Anya R", None)
    assert client.get(f"/me/dependents/{dependent_id}/delete").status_code == 405
    response = client.post(f"/me/dependents/{dependent_id}/delete")
    assert response.status_code == 303 and response.location == "/me/dependents"
    with app.app_context():
        assert db.session.get(Dependent, dependent_id) is None


def test_another_patients_dependent_is_404(app, client, make_user, patient):
    other = make_user("patient")
    theirs = add(app, other, name="Not Yours")
    assert client.get(f"/me/dependents/{theirs}/edit").status_code == 404
    assert (
        client.post(
            f"/me/dependents/{theirs}/edit", data={"name": "Mine", "relationship": "child"}
        ).status_code
        == 404
    )
    assert client.post(f"/me/dependents/{theirs}/delete").status_code == 404
    assert client.get("/me/dependents/999999/edit").status_code == 404
    assert "Not Yours" not in html(client.get("/me/dependents"))
    with app.app_context():
        assert db.session.get(Dependent, theirs).name == "Not Yours"


@pytest.mark.parametrize("role", ["provider", "admin"])
def test_other_roles_get_403(client, make_user, login, role):
    login(make_user(role))
    assert client.get("/me/dependents").status_code == 403
    assert client.post("/me/dependents", data={"name": "X"}).status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.post("/me/dependents", data={"name": "X", "relationship": "child"})
    assert response.status_code == 302 and "/auth/login" in response.location


KID = {"name": "Diya Sharma", "relationship": "child", "date_of_birth": "2018-04-01"}
ALREADY = "Diya Sharma (born 1 Apr 2018) is already on your account."


def _count(app, guardian):
    with app.app_context():
        return db.session.query(Dependent).filter_by(guardian_id=guardian.id).count()


def test_a_double_submit_adds_one_dependent_and_says_she_is_there(app, client, patient):
    """Review rev-input: a double click on "Add" made two identical children, whom the
    no-overlap rule (per dependent) then let be booked at two clinics at once."""
    assert client.post("/me/dependents", data=KID).status_code == 303
    again = client.post("/me/dependents", headers=HX, data=KID)
    assert again.status_code == 422 and ALREADY in html(again)
    # The same person typed otherwise: case and spaces do not make someone new.
    other_case = dict(KID, name="  diya   SHARMA ", relationship="other")
    assert ALREADY in html(client.post("/me/dependents", data=other_case))
    assert _count(app, patient) == 1


def test_twins_and_namesakes_born_apart_are_two_people(app, client, patient):
    assert client.post("/me/dependents", data=KID).status_code == 303
    twin = dict(KID, name="Riya Sharma")
    assert client.post("/me/dependents", data=twin).status_code == 303
    undated = dict(KID, date_of_birth="")
    assert client.post("/me/dependents", data=undated).status_code == 303
    # Without a date of birth the name alone says who it is.
    again = client.post("/me/dependents", data=undated)
    assert again.status_code == 422
    assert "Diya Sharma is already on your account." in html(again)
    assert _count(app, patient) == 3


def test_renaming_onto_another_family_member_is_refused(app, client, patient):
    add(app, patient, name="Diya Sharma", dob=date(2018, 4, 1))
    other = add(app, patient, name="Riya Sharma", dob=date(2018, 4, 1))
    response = client.post(f"/me/dependents/{other}/edit", data=dict(KID, name="DIYA sharma"))
    assert response.status_code == 422 and ALREADY in html(response)
    with app.app_context():
        assert db.session.get(Dependent, other).name == "Riya Sharma"
    # Her own name again (or another relationship) is no clash with herself.
    same = client.post(f"/me/dependents/{other}/edit", data=dict(KID, name="Riya Sharma"))
    assert same.status_code == 303


def test_the_refusal_is_said_in_hindi(client, patient):
    client.post("/language", data={"language": "hi", "next": "/"})
    assert client.post("/me/dependents", data=KID).status_code == 303
    again = client.post("/me/dependents", data=KID)
    assert again.status_code == 422
    assert "Diya Sharma (जन्म 1 अप्रैल 2018) पहले से आपके खाते में हैं।" in html(again)


@pytest.mark.parametrize(
    "name", ["0", "-1", "12.5", "2026-12-15T99:99", "-0.001", "1e9", "१२", "12 - 5"]
)
def test_a_name_without_a_letter_is_refused(app, client, patient, name):
    response = client.post("/me/dependents", data=dict(KID, name=name))
    assert response.status_code == 422
    assert "Enter a name in letters, not only numbers or a date." in html(response)
    assert _count(app, patient) == 0


def test_names_in_devanagari_and_with_digits_are_names(app, client, patient):
    for name in ("दिया शर्मा", "Diya 2", "O'Brien"):
        assert client.post("/me/dependents", data=dict(KID, name=name)).status_code == 303
    assert _count(app, patient) == 3


def test_a_name_without_a_letter_is_refused_in_hindi(client, patient):
    client.post("/language", data={"language": "hi", "next": "/"})
    response = client.post("/me/dependents", data=dict(KID, name="12.5"))
    assert response.status_code == 422
    assert "नाम अक्षरों में लिखें, केवल अंक या तारीख़ नहीं।" in html(response)
