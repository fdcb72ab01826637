"""Each audience's home page renders with what needs doing."""


def test_admin_home_lists_what_needs_attention(client, make_user, login):
    login(make_user("admin"))
    body = client.get("/admin/").get_data(as_text=True)
    assert "Needs attention" in body and "Background work" in body


def test_patient_home_shows_wallet_and_booking_link(client, make_user, login):
    login(make_user("patient"))
    body = client.get("/me/").get_data(as_text=True)
    assert "Wallet" in body and "₹0" in body and 'href="/find"' in body


def test_admin_home_names_the_open_clinics_without_a_gstin(app, client, make_user, login):
    """An open clinic without a GSTIN invoices GST that no return carries: the home's
    attention cards name it, with a link to the clinics page; a clinic with a GSTIN or a
    closed one is not named, and with none the card is not shown. The list is cached
    under the catalog's stamp (no statement on the page: its budget is unchanged), so a
    GSTIN saved takes it off at once."""
    from portal.catalog.models import Clinic
    from portal.extensions import db
    from tests.querycount import counted_queries

    login(make_user("admin"))
    with app.app_context():
        db.session.add_all(
            [
                Clinic(name="Koramangala Clinic", city="Bengaluru"),
                Clinic(name="Closed Clinic", city="Bengaluru", active=False),
                Clinic(name="Registered Clinic", city="Pune", gstin="27AADCK5527P1ZA"),
            ]
        )
        db.session.commit()
    client.get("/admin/")  # warm: the list read once, then kept under the catalog's stamp
    with counted_queries() as shown:
        body = client.get("/admin/").get_data(as_text=True)
    card = body[body.index('id="no-gstin"') :]
    card = card[: card.index("</section>")]
    assert "Koramangala Clinic" in card and 'href="/admin/clinics' in card
    assert "no GST return carries" in card
    assert "Closed Clinic" not in card and "Registered Clinic" not in card
    with app.app_context():
        clinic = db.session.scalar(db.select(Clinic).filter_by(name="Koramangala Clinic"))
        clinic.gstin = "29AADCJ7310M1ZD"
        db.session.commit()
    client.get("/admin/")
    with counted_queries() as hidden:
        assert 'id="no-gstin"' not in client.get("/admin/").get_data(as_text=True)
    # The card costs the page no statement once kept: none reads the clinics' GSTINs.
    assert len(shown) == len(hidden)
    assert not [s for s in shown if "clinics.gstin" in s], shown
