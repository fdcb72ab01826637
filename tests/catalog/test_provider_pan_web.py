"""Entering a provider's PAN on the pages: the admin's provider form (set, clear, a PAN
refused beside its field, never a 500; masked in the list), the provider's bank page (the
PAN masked, or the form to enter it once), in English and Hindi, and the TDS page's words
that send them there. Another provider never changes one."""

import re
from html import unescape

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.catalog.models import Provider
from portal.extensions import db
from tests.i18n.test_language import WORLD_DATA
from tests.i18n.untranslated import untranslated

HX = {"HX-Request": "true"}
PAN, SHOWN = "ABCPR1234L", "ABCPR••••L"


def text(response):
    return response.get_data(as_text=True)


def _pan(app, catalog, key="doctor"):
    with app.app_context():
        return db.session.get(Provider, catalog[key]).pan


def _form(catalog, **overrides):
    return {
        "display_name": "Dr. Asha Rao",
        "kind": "DOCTOR",
        "registration_no": "KMC-1",
        "commission": "5",
        "payout_schedule": "WEEKLY",
        "clinic_ids": [str(catalog["indira"]), str(catalog["jaya"])],
        "specialization_ids": [str(catalog["gm"])],
        "service_ids": [str(catalog["consult"])],
        "active": "y",
        **overrides,
    }


# --- the admin's provider form -------------------------------------------------------------


def test_an_admin_sets_a_pan_shown_masked_in_the_list_and_clears_it(client, catalog, login, app):
    login(catalog["admin"])
    url = f"/admin/providers/{catalog['doctor']}/edit"
    form = text(client.get(url, headers=HX))
    assert 'name="pan"' in form and "Blank removes it, unless TDS was deducted under it" in form
    saved = client.post(url, data=_form(catalog, pan="abcpr1234l"), headers=HX)
    assert saved.status_code == 200
    row = text(saved)
    assert row.lstrip().startswith("<tr") and f"PAN {SHOWN}" in row and PAN not in row
    assert _pan(app, catalog) == PAN
    listing = text(client.get("/admin/providers"))
    assert f"PAN {SHOWN}" in listing and PAN not in listing and "No PAN" in listing  # Vikram's
    # The edit form holds it as on file (blank would clear it).
    assert re.search(
        rf'name="pan"[^>]*value="{PAN}"|value="{PAN}"[^>]*name="pan"', text(client.get(url))
    )
    cleared = client.post(url, data=_form(catalog, pan="  "))  # without htmx: back to the list
    assert cleared.status_code == 303 and cleared.location.endswith("/admin/providers")
    assert _pan(app, catalog) is None
    with app.app_context():
        audit = db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "provider.update")
            .order_by(AuditEntry.id)
        ).all()
    assert [(e.before["pan"], e.after["pan"]) for e in audit] == [(None, SHOWN), (SHOWN, None)]
    # The audit viewer shows the entries, the PAN masked.
    viewer = unescape(
        text(client.get(f"/admin/audit?object_type=provider&object_id={catalog['doctor']}"))
    )
    assert f"pan: {SHOWN}" in viewer and PAN not in viewer


@pytest.mark.parametrize(
    "typed, message",
    [
        ("ABCPR1234", "Enter the PAN as on the PAN card: five letters, four digits and a letter"),
        ("ABCPR 1234L", "Enter the PAN as on the PAN card"),
        ("ABCDR1234L", "The fourth letter of a PAN says whose it is"),
        ("<b>ABCPR1234L</b>", "Enter the PAN as on the PAN card"),
        ("A" * 30, "Enter the PAN as on the PAN card"),  # said once (no second length rule)
        ("A" * 3000, "This is too long: at most 2000 characters."),
        ("ABCPR\x001234L", None),  # a NUL: the form's own refusal, never the database's
    ],
)
def test_an_admin_typing_no_pan_gets_the_form_back_with_why(
    client, catalog, login, app, typed, message
):
    login(catalog["admin"])
    url = f"/admin/providers/{catalog['doctor']}/edit"
    for headers in (HX, {}):
        bad = client.post(url, data=_form(catalog, pan=typed, bio="Not saved"), headers=headers)
        assert bad.status_code == 422, typed
        body = unescape(text(bad))
        before, after = body.split('name="pan"')
        pan_field = before.rsplit('<div class="field', 1)[1] + after.split("</div>")[0]
        assert "has-error" in pan_field  # the message is beside the PAN field, said once
        assert pan_field.count('class="error"') == 1
        if message:
            assert message in pan_field
    assert _pan(app, catalog) is None
    with app.app_context():
        assert db.session.get(Provider, catalog["doctor"]).bio == ""


def test_a_new_provider_with_a_pan_and_one_refused(client, catalog, login, app):
    login(catalog["admin"])
    data = {
        "name": "City Labs",
        "email": "citylabs@example.com",
        "display_name": "City Labs",
        "kind": "LAB",
        "commission": "5",
        "payout_schedule": "WEEKLY",
        "clinic_ids": [str(catalog["indira"])],
        "specialization_ids": [str(catalog["gm"])],
        "active": "y",
    }
    bad = client.post("/admin/providers/new", data={**data, "pan": "AADQC7319L"})
    assert bad.status_code == 422 and "never Q." in unescape(text(bad))
    made = client.post("/admin/providers/new", data={**data, "pan": "aadcc7319l"})
    assert made.status_code == 303
    with app.app_context():
        lab = db.session.scalar(sa.select(Provider).where(Provider.display_name == "City Labs"))
        assert lab.pan == "AADCC7319L"


# --- the provider's bank page ---------------------------------------------------------------


def test_a_provider_without_a_pan_is_told_so_and_enters_it_once(client, catalog, login, app):
    login(catalog["doctor_user"])
    page = text(client.get("/provider/bank"))
    assert "No PAN on file: the clinic deducts TDS from your payouts" in page
    assert 'action="/provider/bank/pan"' in page and 'name="confirm_pan"' in page
    saved = client.post("/provider/bank/pan", data={"pan": "abcpr1234l", "confirm_pan": PAN})
    assert saved.status_code == 303 and saved.location.endswith("/provider/bank")
    page = text(client.get("/provider/bank"))
    assert "PAN saved." in page
    assert f"PAN on file: <strong>{SHOWN}</strong>" in page and PAN not in page
    assert "If it is wrong, ask the clinic to correct it." in page
    assert 'action="/provider/bank/pan"' not in page  # no form: the clinic changes it now
    assert _pan(app, catalog) == PAN
    # Sent again (an old tab): refused with why, the PAN on file as it was.
    again = client.post(
        "/provider/bank/pan", data={"pan": "ABCPR9876L", "confirm_pan": "ABCPR9876L"}
    )
    assert again.status_code == 422
    body = text(again)
    assert "A PAN is already on file. If it is wrong, ask the clinic to correct it." in body
    assert f"PAN on file: <strong>{SHOWN}</strong>" in body
    assert _pan(app, catalog) == PAN


@pytest.mark.parametrize(
    "typed, again, field, message",
    [
        ("", "", "pan", "Enter your PAN."),
        (PAN, "ABCPR1243L", "confirm_pan", "The two PANs are not the same: type it again."),
        ("ABCPR123", "ABCPR123", "pan", "Enter the PAN as on the PAN card"),
        ("ABCZR1234L", "ABCZR1234L", "pan", "never Z."),
        ("x" * 5000, "x", "pan", "This is too long"),
    ],
)
def test_a_provider_typing_no_pan_gets_the_page_back_with_why(
    client, catalog, login, app, typed, again, field, message
):
    login(catalog["doctor_user"])
    bad = client.post("/provider/bank/pan", data={"pan": typed, "confirm_pan": again})
    assert bad.status_code == 422
    body = unescape(text(bad))
    beside = body.split(f'name="{field}"')[1].split("</div>")[0]
    assert message in beside
    assert _pan(app, catalog) is None


def test_another_provider_never_changes_ones_pan(client, catalog, login, app):
    """Whatever id is sent, the bank page's form writes the signed-in provider's own PAN;
    a provider cannot reach the admin's form, nor see another's PAN."""
    login(catalog["other_user"])
    doctor = catalog["doctor"]
    sneaky = {"pan": PAN, "confirm_pan": PAN, "provider_id": doctor, "id": doctor}
    saved = client.post(f"/provider/bank/pan?provider_id={doctor}", data=sneaky)
    assert saved.status_code == 303
    assert _pan(app, catalog) is None and _pan(app, catalog, "other") == PAN
    refused = client.post(f"/admin/providers/{doctor}/edit", data=_form(catalog, pan=PAN))
    assert refused.status_code == 403 and _pan(app, catalog) is None
    login(catalog["doctor_user"])
    client.post("/provider/bank/pan", data={"pan": "ZYXPD9876K", "confirm_pan": "ZYXPD9876K"})
    login(catalog["other_user"])
    page = text(client.get("/provider/bank"))
    assert SHOWN in page and "ZYXPD" not in page  # their own, never the doctor's
    assert _pan(app, catalog) == "ZYXPD9876K" and _pan(app, catalog, "other") == PAN


def test_the_tds_page_sends_a_provider_without_a_pan_to_enter_it(client, catalog, login, app):
    login(catalog["doctor_user"])
    page = text(client.get("/provider/earnings/tds"))
    assert (
        'PAN not on file — <a href="/provider/bank#tds-pan">add it on your bank account page</a>'
        in page
    )
    client.post("/provider/bank/pan", data={"pan": PAN, "confirm_pan": PAN})
    page = text(client.get("/provider/earnings/tds"))
    assert f"Your PAN on file: {SHOWN}. If it is wrong, ask the clinic to correct it." in page
    assert "PAN not on file" not in page and PAN not in page


def test_the_pan_words_in_hindi(client, catalog, login, app):
    login(catalog["doctor_user"])
    client.post("/language", data={"language": "hi", "next": "/"})
    data = WORLD_DATA | {"Dr. Asha Rao", "Dr. Vikram Nair", catalog["doctor_user"].email, SHOWN}
    pages = {"bank": client.get("/provider/bank"), "tds": client.get("/provider/earnings/tds")}
    # Refused: a holder type that is none (the letter named), two PANs that differ.
    pages["holder"] = client.post(
        "/provider/bank/pan", data={"pan": "ABCZR1234L", "confirm_pan": ""}
    )
    pages["differ"] = client.post(
        "/provider/bank/pan", data={"pan": PAN, "confirm_pan": "ABCPR1243L"}
    )
    pages["saved"] = client.get(
        client.post("/provider/bank/pan", data={"pan": PAN, "confirm_pan": PAN}).location
    )
    pages["again"] = client.post("/provider/bank/pan", data={"pan": PAN, "confirm_pan": PAN})
    pages["tds with"] = client.get("/provider/earnings/tds")
    for name, answer in pages.items():
        html = text(answer)
        assert 'lang="hi-IN"' in html, name
        assert untranslated(html, data=data) == [], name
    assert "TDS के लिए PAN" in text(pages["bank"]) and "PAN दोबारा" in text(pages["bank"])
    assert "Z कभी नहीं" in text(pages["holder"])
    assert "दोनों PAN एक जैसे नहीं हैं" in text(pages["differ"])
    assert f"रिकॉर्ड में PAN: <strong>{SHOWN}</strong>" in text(pages["saved"])
    assert "PAN सहेज लिया गया" in text(pages["saved"])
    assert "रिकॉर्ड में एक PAN पहले से है" in text(pages["again"])
    assert 'href="/provider/bank#tds-pan"' in text(pages["tds"]) and SHOWN in text(
        pages["tds with"]
    )


def test_clearing_a_pan_tds_was_deducted_under_is_refused_beside_the_field(
    client, catalog, login, app
):
    """docs/privacy.md, "A provider's account closed": the TDS records keep the PAN. The
    payouts refuse clearing one TDS was deducted under (``payouts.tds_records``, shown
    here by its message, its rule tested in ``tests/reports/tds/test_closed_provider_pan.py``):
    the form comes back with why beside the PAN, 422, nothing saved."""
    from portal import events
    from portal.payouts.tds_records import MSG_PAN_KEPT

    with app.app_context():
        db.session.get(Provider, catalog["doctor"]).pan = PAN
        db.session.commit()
    login(catalog["admin"])
    url = f"/admin/providers/{catalog['doctor']}/edit"
    asked = []

    def tds_under_it(sender, *, provider_id, **_):
        asked.append(provider_id)
        return MSG_PAN_KEPT

    with events.provider_pan_clearing.connected_to(tds_under_it):
        bad = client.post(url, data=_form(catalog, pan=" ", bio="Not saved"), headers=HX)
        kept = client.post(url, data=_form(catalog, pan=PAN.lower()), headers=HX)
    assert bad.status_code == 422 and asked == [catalog["doctor"]]  # a kept PAN asks nothing
    before, after = unescape(text(bad)).split('name="pan"')
    pan_field = before.rsplit('<div class="field', 1)[1] + after.split("</div>")[0]
    assert "has-error" in pan_field and MSG_PAN_KEPT in pan_field
    assert kept.status_code < 400
    assert _pan(app, catalog) == PAN
    with app.app_context():
        assert db.session.get(Provider, catalog["doctor"]).bio == ""
