"""Each audience's home page renders with what needs doing."""


def test_admin_home_lists_what_needs_attention(client, make_user, login):
    login(make_user("admin"))
    body = client.get("/admin/").get_data(as_text=True)
    assert "Needs attention" in body and "Background work" in body


def test_patient_home_shows_wallet_and_booking_link(client, make_user, login):
    login(make_user("patient"))
    body = client.get("/me/").get_data(as_text=True)
    assert "Wallet" in body and "₹0" in body and 'href="/find"' in body
