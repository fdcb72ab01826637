"""Two administrators editing the same clinic or specialization (review of the admin back
office): the edit form carries the row's ``version``, and a save over a newer one is
refused instead of putting back what the other administrator changed."""

import re
from datetime import time

from portal.accounts.models import User
from portal.catalog.clinics import update_clinic, update_specialization
from portal.catalog.models import Clinic, Specialization
from portal.extensions import db


def _text(response):
    return response.get_data(as_text=True)


def _version(html, name="version"):
    """The version an edit form was filled from (its hidden field)."""
    found = re.search(rf'name="{name}"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="{name}"', html)
    assert found, "the edit form carries the version it was filled from"
    return found.group(1) or found.group(2)


def _clinic_form(**overrides):
    data = {
        "name": "Indiranagar Clinic",
        "city": "Bengaluru",
        "address": "100 Feet Road",
        "timezone": "Asia/Kolkata",
        "gstin": "29AAGCB7383J1Z4",
        "active": "y",
    }
    for day in range(5):
        data[f"opens_{day}"], data[f"closes_{day}"] = "09:00", "18:00"
    data.update(overrides)
    return data


def _other_admin(app, make_user):
    with app.app_context():
        return make_user("admin").id


def test_a_stale_clinic_form_does_not_reopen_a_clinic_another_admin_closed(
    client, catalog, login, app, make_user
):
    """Admin A opens the clinic's edit form to fix the address. Admin B closes the clinic
    (deactivates it). A saved: the form still said active, so the clinic was open for
    booking again and B's change was lost without a word. Now refused (422, nothing
    written), the form filled with the clinic as it is now (closed); saved again from
    that form, A's address is kept and the clinic stays closed."""
    login(catalog["admin"])
    url = f"/admin/clinics/{catalog['indira']}/edit"
    page = client.get(url)
    assert page.status_code == 200
    version = _version(_text(page))
    other = _other_admin(app, make_user)
    with app.app_context():  # admin B, in another browser
        update_clinic(db.session.get(User, other), catalog["indira"], active=False)

    new_address = "100 Feet Road, HAL 2nd Stage"
    saved = client.post(url, data=_clinic_form(address=new_address, version=version))
    with app.app_context():
        clinic = db.session.get(Clinic, catalog["indira"])
        reopened, address = clinic.active, clinic.address
    assert saved.status_code == 422 and "changed by another administrator" in _text(saved)
    assert reopened is False and address == "100 Feet Road"
    refused = _text(saved)
    assert not re.search(r'name="active"[^>]*checked', refused), "the form shows it closed"

    again = client.post(
        url, data=_clinic_form(address=new_address, active="", version=_version(refused))
    )
    assert again.status_code == 303
    with app.app_context():
        clinic = db.session.get(Clinic, catalog["indira"])
        assert (clinic.active, clinic.address) == (False, new_address)


def test_a_stale_clinic_form_does_not_put_back_hours_or_gstin(
    client, catalog, login, app, make_user
):
    """The same for every field the form sends: B's new opening hours and GSTIN would
    have gone back to the old ones with A's rename."""
    login(catalog["admin"])
    url = f"/admin/clinics/{catalog['jaya']}/edit"
    version = _version(_text(client.get(url)))
    other = _other_admin(app, make_user)
    with app.app_context():
        update_clinic(
            db.session.get(User, other),
            catalog["jaya"],
            gstin="29AAGCB7383J1Z4",
            hours={d: (time(8), time(20)) for d in range(6)},
        )
    form = _clinic_form(name="Jayanagar 4th Block Clinic", gstin="", address="", version=version)
    refused = client.post(url, data=form)
    assert refused.status_code == 422 and "changed by another administrator" in _text(refused)
    with app.app_context():
        clinic = db.session.get(Clinic, catalog["jaya"])
        assert clinic.name == "Jayanagar Clinic" and clinic.gstin == "29AAGCB7383J1Z4"
        assert clinic.business_hours()[5] == (time(8), time(20))


def test_a_stale_specialization_form_does_not_put_back_the_old_name(
    client, catalog, login, app, make_user
):
    login(catalog["admin"])
    url = f"/admin/specializations/{catalog['derm']}/edit"
    version = _version(_text(client.get(url)), "edit-version")
    other = _other_admin(app, make_user)
    with app.app_context():
        update_specialization(db.session.get(User, other), catalog["derm"], "Skin and Hair")

    refused = client.post(url, data={"edit-name": "Dermatology ", "edit-version": version})
    assert refused.status_code == 422 and "changed by another administrator" in _text(refused)
    assert 'value="Skin and Hair"' in _text(refused)
    with app.app_context():
        assert db.session.get(Specialization, catalog["derm"]).name == "Skin and Hair"
    again = client.post(
        url,
        data={"edit-name": "Dermatology", "edit-version": _version(_text(refused), "edit-version")},
    )
    assert again.status_code == 303
    with app.app_context():
        assert db.session.get(Specialization, catalog["derm"]).name == "Dermatology"
