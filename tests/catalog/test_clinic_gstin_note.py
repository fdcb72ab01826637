"""A clinic open for bookings without a GSTIN: its invoices charge GST on the platform fee
(the clinic supplies it) that no GST return carries, filed under "no GSTIN" (review
finding). Bookings are not refused; the admin's clinic list and edit page say so on each
such clinic, and a closed clinic or one with a GSTIN carries no note."""

import re
from html import unescape

import sqlalchemy as sa

from portal.catalog.clinics import update_clinic
from portal.catalog.models import Clinic
from portal.extensions import db

HX = {"HX-Request": "true"}
NOTE = "No GSTIN: its invoices charge GST that no GST return carries. Add the clinic's GSTIN."


def _words(html):
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", html)))


def _row(html, clinic_id):
    return re.search(rf'<tr id="clinic-{clinic_id}".*?</tr>', html, re.S).group(0)


def _close(app, catalog, key):
    from portal.accounts.models import User

    with app.app_context():
        admin = db.session.get(User, catalog["admin"].id)
        update_clinic(admin, db.session.get(Clinic, catalog[key]), active=False)
        db.session.commit()


def test_missing_gstin_is_an_open_clinic_without_one(app, catalog):
    """The rule, in Python and as the SQL the home page counts with."""
    assert Clinic(active=True, gstin=None).missing_gstin
    assert not Clinic(active=True, gstin="29AAGCB7383J1Z4").missing_gstin
    assert not Clinic(active=False, gstin=None).missing_gstin
    _close(app, catalog, "pune")
    with app.app_context():
        names = db.session.scalars(sa.select(Clinic.name).where(Clinic.missing_gstin)).all()
    assert names == ["Jayanagar Clinic"]  # Indiranagar has a GSTIN, Kothrud is closed


def test_the_clinic_list_notes_each_open_clinic_without_a_gstin(client, catalog, login, app):
    _close(app, catalog, "pune")
    login(catalog["admin"])
    html = client.get("/admin/clinics").get_data(as_text=True)
    assert NOTE in _words(_row(html, catalog["jaya"]))
    assert "No GSTIN" not in _words(_row(html, catalog["indira"]))  # has one
    assert "No GSTIN" not in _words(_row(html, catalog["pune"]))  # closed: takes no bookings
    # The row an inline edit puts back says it too.
    row = client.get(f"/admin/clinics/{catalog['jaya']}/row", headers=HX).get_data(as_text=True)
    assert NOTE in _words(row)


def test_the_clinic_edit_page_notes_a_missing_gstin_until_one_is_saved(client, catalog, login):
    from portal.catalog.demo import _gstin

    login(catalog["admin"])
    url = f"/admin/clinics/{catalog['jaya']}/edit"
    assert NOTE in _words(client.get(url).get_data(as_text=True))  # the page
    assert NOTE in _words(client.get(url, headers=HX).get_data(as_text=True))  # the inline form
    with_gstin = client.get(f"/admin/clinics/{catalog['indira']}/edit").get_data(as_text=True)
    assert "No GSTIN" not in _words(with_gstin)
    form = {"name": "Jayanagar Clinic", "city": "Bengaluru", "timezone": "Asia/Kolkata"}
    form |= {"gstin": _gstin("29", "AADCJ7310M"), "active": "y"}
    form |= {
        f"{edge}_{day}": hh
        for day in range(5)
        for edge, hh in (("opens", "09:00"), ("closes", "18:00"))
    }
    saved = client.post(url, data=form, headers=HX)
    assert saved.status_code == 200
    assert "No GSTIN" not in _words(saved.get_data(as_text=True))
