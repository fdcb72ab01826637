"""Operator booking: list/filter/search, a new visit for a found or new patient (team
appointments), payment links, desk payments, the detail page with its timeline."""

import html as htmlmod
import re
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.booking.models import IndividualBooking, MasterBooking
from portal.extensions import db
from tests.web.booking.helpers import IST, hold, hx, slot

VISIT_NUMBER = re.compile(r'<a href="/admin/visits/\d+">([^<]+)</a>')


def _item(world, *, providers=None, hh="10:00", day=None, person="self", service=None):
    return {
        "service": service or world.consult,
        "providers": providers or [world.doc1],
        "clinic": world.clinic,
        "date": (day or world.day).isoformat(),
        "time": hh,
        "person": person,
        "referral": "",
        "meet_link": "",
    }


def _status(app, visit_id):
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        return visit.status, [(i.status, len(i.providers)) for i in visit.items]


@pytest.mark.parametrize(
    "url", ["/admin/visits", "/admin/visits/new", "/admin/coupons", "/admin/visits/1"]
)
def test_only_admins(client, login, world, url):
    assert "/auth/login" in client.get(url).location
    login(world.patient)
    assert client.get(url).status_code == 403


def test_list_filters_and_search_as_you_type(app, client, login, world):
    hold(app, world)
    hold(app, world, patient=world.other, start=slot(world.day, 11))
    login(world.admin)
    html = client.get("/admin/visits").get_data(as_text=True)
    assert "Priya Sharma" in html and "Other Patient" in html and "2 visits" in html
    part = client.get("/admin/visits?q=priya", headers=hx("results"))
    text = part.get_data(as_text=True)
    assert "<html" not in text and "Priya Sharma" in text and "Other Patient" not in text
    with app.app_context():
        numbers = db.session.scalars(db.select(MasterBooking.number)).all()
    for number in numbers:
        found = client.get(f"/admin/visits?q={number.lower()}").get_data(as_text=True)
        assert (
            "1 visit matching" in found
            and number in found
            and ({*numbers} - {number}).isdisjoint(set(VISIT_NUMBER.findall(found)))
        )
    assert "No visits found" in client.get("/admin/visits?status=CONFIRMED").get_data(as_text=True)
    # Neither is due within 24 h nor flagged: the attention filter finds none, "no" finds both.
    assert "No visits found" in client.get("/admin/visits?attention=yes").get_data(as_text=True)
    assert "2 visits" in client.get("/admin/visits?attention=no").get_data(as_text=True)
    bogus = client.get("/admin/visits?attention=yes&status=bogus&page=9")
    assert bogus.status_code == 422 and "Not a valid choice" in bogus.get_data(as_text=True)


def test_find_a_patient_by_name_or_mobile(client, login, world):
    login(world.admin)
    by_name = client.get("/admin/visits/new?q=priya", headers=hx("patients"))
    assert "Priya Sharma" in by_name.get_data(as_text=True)
    assert "<html" not in by_name.get_data(as_text=True)
    by_phone = client.get("/admin/visits/new?q=98123 45678").get_data(as_text=True)
    assert "Priya Sharma" in by_phone and "Other Patient" not in by_phone


def test_create_a_patient_with_messages_beside_fields(app, client, login, world):
    login(world.admin)
    bad = client.post("/admin/visits/new/patient", data={"name": "", "email": "x", "phone": "123"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Enter the patient" in text
    taken = client.post(
        "/admin/visits/new/patient",
        data={"name": "Dup", "email": world.patient.email, "phone": "9812300000"},
    )
    assert taken.status_code == 422 and "already exists" in taken.get_data(as_text=True)
    ok = client.post(
        "/admin/visits/new/patient",
        data={"name": "Walk In", "email": "walkin@example.com", "phone": "98765 43210"},
    )
    assert ok.status_code == 303
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "walkin@example.com"))
        assert user.role == "patient" and user.phone == "+919876543210"
    assert ok.location.endswith(f"/admin/visits/new/{user.id}")


def test_a_patient_added_by_an_admin_is_welcomed_not_reset(app, client, login, world):
    """Issue #16: the create-on-behalf mail was "Reset your Clinic Portal password"."""
    from portal.notify.models import MailMessage

    login(world.admin)
    ok = client.post(
        "/admin/visits/new/patient",
        data={"name": "Walk In", "email": "walkin2@example.com", "phone": "98765 43211"},
    )
    assert ok.status_code == 303
    with app.app_context():
        mails = db.session.scalars(
            db.select(MailMessage).where(MailMessage.to == "walkin2@example.com")
        ).all()
        assert [m.subject for m in mails] == ["Welcome to Clinic Portal: your appointments with us"]
        assert "book your appointment" in mails[0].text and "/auth/accept-invite/" in mails[0].text
        assert "reset" not in mails[0].subject.lower()


def test_the_welcome_mail_states_the_policys_cut_offs(app, client, login, world, make_user):
    """The welcome mail promised "reschedule or cancel online (up to 24 hours before a
    visit)" whatever the policy (review finding): it names the policy's reschedule cut-off
    and its last cancellation tier's hours, in the patient's language."""
    from datetime import timedelta

    from portal.domain.policy import DEFAULT_POLICY, RefundTier
    from portal.notify import account_mail
    from portal.notify.models import MailMessage

    first, _second = DEFAULT_POLICY.patient_cancellation_tiers
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(
        patient_cancellation_tiers=(first, RefundTier(timedelta(hours=6), False, 7_500)),
        reschedule_min_notice=timedelta(hours=12),
    )
    hindi = make_user("patient", email="hindi@example.com", name="Meera")
    try:
        login(world.admin)
        client.post(
            "/admin/visits/new/patient",
            data={"name": "Walk In", "email": "walkin3@example.com", "phone": "98765 43212"},
        )
        with app.app_context():
            db.session.get(User, hindi.id).language = "hi"
            account_mail.welcome_patient_mail(hindi.id, world.admin.id, "http://x/link", 7)
            db.session.commit()
            mails = {
                m.to: m
                for m in db.session.scalars(
                    db.select(MailMessage).where(
                        MailMessage.to.in_(["walkin3@example.com", "hindi@example.com"])
                    )
                )
            }
    finally:
        app.config["POLICY"] = saved
    english = mails["walkin3@example.com"].text
    assert "reschedule online up to 12 hours before a visit" in english
    assert "cancel online up to 6 hours before it" in english and "24 hours" not in english
    said = mails["hindi@example.com"]
    assert "12 घंटे" in said.text and "6 घंटे" in said.text and "24" not in said.text
    assert "Hello" not in said.text and "Welcome" not in said.subject


def test_the_payment_link_hint_states_the_policys_time(app, client, login, world, gateway):
    """The visit page said a payment link "expires 2 hours before the first appointment at
    the latest" whatever the policy (review finding): it reads the link's time from the
    policy in force, as the link's expiry does (``domain.schedule.payment_link_expiry``).
    The unpaid-and-soon line said the policy's window as a float ("within 240.0 h")."""
    from datetime import timedelta

    from portal.domain.policy import DEFAULT_POLICY

    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(
        link_before_start=timedelta(hours=3), attention_window=timedelta(hours=240)
    )
    try:
        login(world.admin)
        response = client.post(f"/admin/visits/new/{world.patient.id}", data=_item(world))
        page = client.get(response.location).get_data(as_text=True)
        link = client.post(f"{response.location}/payment-link", data={})
        unpaid = client.get(link.location).get_data(as_text=True)
    finally:
        app.config["POLICY"] = saved
    assert "it expires 3 hours before the first appointment at the latest" in page
    assert "2 hours" not in page
    assert "unpaid and the first appointment is within 240 h;" in unpaid


def test_add_a_service_to_a_visit_picks_as_a_new_visit_does(app, client, login, world):
    """The visit page's "Add a service" listed every provider, labs included, whatever the
    service (review finding, walking the demo): it is the new visit's picker, asked again
    with the form's values (htmx), with only those who offer the chosen service and their
    free times."""
    login(world.admin)
    response = client.post(f"/admin/visits/new/{world.patient.id}", data=_item(world))
    visit_id = int(response.location.rstrip("/").split("/")[-1])
    page = client.get(f"/admin/visits/{visit_id}", query_string={"service": world.lab})
    html = page.get_data(as_text=True)
    add = html[html.index("Add a service") :]
    assert page.status_code == 200 and "City Lab" in add and "Dr Asha Rao" not in add
    assert f'hx-get="/admin/visits/{visit_id}"' in add
    picked = client.get(
        f"/admin/visits/{visit_id}",
        query_string={
            "service": world.lab,
            "clinic": world.clinic,
            "providers": world.lab_provider,
        },
    ).get_data(as_text=True)
    assert 'name="slot"' in picked[picked.index("Add a service") :]


def test_team_appointment_then_payment_link_and_resend(app, client, login, world, gateway):
    login(world.admin)
    response = client.post(
        f"/admin/visits/new/{world.patient.id}",
        data=_item(world, providers=[world.doc1, world.doc2]),
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    visit_id = int(response.location.rstrip("/").split("/")[-1])
    assert _status(app, visit_id) == ("DRAFT", [("SCHEDULED", 2)])
    # A second item for the dependent is refused: a visit is for one person.
    other = client.post(
        f"/admin/visits/{visit_id}/items",
        data=_item(world, hh="12:00", person=f"dependent:{world.child}"),
    )
    assert other.status_code == 422
    more = client.post(
        f"/admin/visits/{visit_id}/items",
        data=_item(world, hh="12:00", service=world.lab, providers=[world.lab_provider]),
    )
    assert more.status_code == 303
    link = client.post(f"/admin/visits/{visit_id}/payment-link", data={})
    assert link.status_code == 303
    page = client.get(link.location).get_data(as_text=True)
    assert 'id="payment-link"' in page and "readonly" in page and "/pl/" in page
    assert "Team" in page and "Copy link" in page
    with app.app_context():
        payment_id = db.session.get(MasterBooking, visit_id).pending_payment.id
    # A second click (a double click, a stale page) keeps the link sent, and says so.
    again = client.post(f"/admin/visits/{visit_id}/payment-link", data={})
    assert again.status_code == 303
    page = client.get(again.location).get_data(as_text=True)
    assert "no second link was made" in page and "Resend to the patient" in page
    with app.app_context():
        assert [p.id for p in db.session.get(MasterBooking, visit_id).payments] == [payment_id]
    resent = client.post(f"/admin/visits/{visit_id}/payments/{payment_id}/resend", data={})
    assert resent.status_code == 303
    assert "Payment link sent again" in client.get(resent.location).get_data(as_text=True)
    assert (
        client.post(f"/admin/visits/{visit_id}/payments/999999/resend", data={}).status_code == 404
    )


def test_slot_rules_show_beside_the_fields(app, client, login, world):
    login(world.admin)
    url = f"/admin/visits/new/{world.patient.id}"
    late = client.post(url, data=_item(world, hh="19:00"))
    assert late.status_code == 422 and "9 AM - 6 PM" in late.get_data(as_text=True)
    missing = client.post(url, data={**_item(world), "providers": [], "date": ""})
    text = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert "Choose a provider." in text and "Enter the date." in text
    hold(app, world, patient=world.other)
    taken = client.post(url, data=_item(world))
    assert taken.status_code == 422 and "Slot no longer available" in taken.get_data(as_text=True)


def test_desk_payment_needs_a_receipt_number_and_confirms(app, client, login, world):
    visit_id, _ = hold(app, world)
    login(world.admin)
    missing = client.post(f"/admin/visits/{visit_id}/desk-payment", data={"receipt_no": ""})
    assert missing.status_code == 422
    assert "Enter the receipt number" in missing.get_data(as_text=True)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    amount = re.search(r'name="amount" value="(\d+)"', page)[1]  # the button's ₹529.50
    assert amount == "52950" and "Record desk payment of ₹529.50" in page
    paid = client.post(
        f"/admin/visits/{visit_id}/desk-payment", data={"receipt_no": "R-1001", "amount": amount}
    )
    assert paid.status_code == 303
    assert _status(app, visit_id) == ("CONFIRMED", [("CONFIRMED", 1)])
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert "R-1001" in page and "Payment timeline" in page and "GST receipt" in page
    assert client.get(f"/admin/visits/{visit_id}/receipt").status_code == 200


def test_unknown_visit_is_404(client, login, world):
    login(world.admin)
    assert client.get("/admin/visits/999999").status_code == 404
    assert client.get("/admin/visits/new/999999").status_code == 404
    assert client.get(f"/admin/visits/new/{world.admin.id}").status_code == 404  # not a patient


def test_referral_choices_give_the_clinic_date_not_the_utc_date(app, client, login, world):
    """A paid booking at 05:00 IST on day D starts at 23:30 UTC on D-1: the patient's book
    page lists it as D (``clinic_time``), the admin's new-visit form listed it as D-1 (the
    UTC value formatted)."""
    _visit_id, item_id = hold(app, world)
    early = datetime.combine(world.day, time(5, 0), tzinfo=IST)
    with app.app_context():
        db.session.execute(
            sa.update(IndividualBooking)
            .where(IndividualBooking.id == item_id)
            .values(status="CONFIRMED", start_at=early, end_at=early + timedelta(minutes=30))
        )
        db.session.commit()
    login(world.admin)
    page = client.get(
        f"/admin/visits/new/{world.patient.id}",
        query_string={"service": world.follow, "clinic": world.clinic},
    )
    assert page.status_code == 200
    text = htmlmod.unescape(page.get_data(as_text=True))
    referral = re.search(r'<select[^>]*name="referral".*?</select>', text, re.S).group(0)
    label = re.search(rf'<option[^>]*value="{item_id}"[^>]*>([^<]+)</option>', referral).group(1)
    assert label.endswith(f" · {world.day:%d %b %Y}"), label
