"""What the receipt and the booking page say of GST, in English and Hindi, true in every
configuration: the clinic is the supplier of both its care and the platform fee and bills
both under its GSTIN (the GST report files the fee's GST there); there is no platform
GSTIN. The receipt said "the platform fee is the platform's taxable supply" (review
finding), and it and the booking page said care is exempt and GST is on the platform fee
alone, untrue for a service flagged taxable and in the policy's F + P mode."""

import re

from portal.catalog.models import Service
from portal.extensions import db
from tests.i18n.test_language import _paid_visit
from tests.web.booking.helpers import book_url

SAID = "Each clinic bills both its care and the platform fee under its own GSTIN"
SAID_HI = "हर क्लिनिक अपनी देखभाल और प्लेटफ़ॉर्म शुल्क, दोनों का बिल अपने GSTIN से बनाता है"
PLATFORM_SUPPLY = "platform's taxable supply"
PLATFORM_SUPPLY_HI = "प्लेटफ़ॉर्म की कर योग्य आपूर्ति"


def _taxable_consult(app, world):
    """Set-up: the world's consultation flagged taxable (a cosmetic service's case), as an
    ORM change so the catalog's stamp moves and no cached copy keeps the old flag."""
    with app.app_context():
        db.session.get(Service, world.consult).taxable = True
        db.session.commit()


def _footer_label(html, amount):
    """The receipt's footer row label whose amount is ``amount``."""
    rows = re.findall(r'<tr><th colspan="5">([^<]*)</th><td class="num">([^<]*)</td></tr>', html)
    return next(label for label, value in rows if value == amount)


def test_the_receipt_says_the_clinic_bills_the_platform_fee_too(app, client, login, world):
    login(world.patient)
    visit_id, _ = _paid_visit(app, client, world)
    html = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert SAID in html and PLATFORM_SUPPLY not in html
    assert _footer_label(html, "₹25.00") == "Taxable value (platform fees)"
    client.post("/language", data={"language": "hi", "next": "/"})
    hindi = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert SAID_HI in hindi and PLATFORM_SUPPLY_HI not in hindi


def test_a_taxable_services_receipt_counts_its_care_in_the_taxable_value(app, client, login, world):
    """₹500 care taxed with its ₹25 platform fee: the taxable value ₹525.00 is not
    "platform fees" alone, in English or Hindi."""
    _taxable_consult(app, world)
    login(world.patient)
    credit = 50_000 + 2_500 + 9_450  # F + P + 18% of both
    from tests.web.booking.helpers import credit_wallet, hold, pay_fields

    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, credit)
    paid = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, "619.50"))
    assert paid.status_code == 303
    html = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert SAID in html
    assert _footer_label(html, "₹525.00") == "Taxable value (platform fees and taxable care)"
    client.post("/language", data={"language": "hi", "next": "/"})
    hindi = client.get(f"/me/visits/{visit_id}/receipt").get_data(as_text=True)
    assert _footer_label(hindi, "₹525.00") == "कर योग्य मूल्य (प्लेटफ़ॉर्म शुल्क और कर योग्य देखभाल)"


def test_the_booking_page_says_what_gst_applies_to_for_this_service(app, client, login, world):
    login(world.patient)
    exempt = client.get(book_url(world)).get_data(as_text=True)
    assert "Care by clinics and doctors is exempt from GST" in exempt
    _taxable_consult(app, world)
    taxed = client.get(book_url(world)).get_data(as_text=True)
    assert "exempt from GST" not in taxed
    assert "GST applies to this service's fee and to the platform fee." in taxed
    client.post("/language", data={"language": "hi", "next": "/"})
    hindi = client.get(book_url(world)).get_data(as_text=True)
    assert "GST इस सेवा के शुल्क और प्लेटफ़ॉर्म शुल्क, दोनों पर लगता है।" in hindi
