"""English and Hindi: the choice, where it is remembered, the catalogue's completeness and
pages without English left in them."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po

from portal.accounts.models import User
from portal.accounts.service import PASSWORD_MESSAGE, PASSWORD_MIN_LENGTH
from portal.extensions import db
from tests.i18n.untranslated import untranslated
from tests.plugin import PASSWORD
from tests.web.booking.helpers import pay_fields

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "portal" / "translations" / "hi" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _catalogue():
    with CATALOGUE.open("rb") as f:
        return read_po(f, locale="hi")


def _extracted():
    """Every marked string, as `make messages` extracts it: the committed ``.pot``, which
    ``test_the_catalogue_is_as_make_messages_writes_it`` holds to a fresh extraction."""
    with (ROOT / "portal" / "translations" / "messages.pot").open("rb") as f:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}


def test_every_marked_string_has_a_hindi_translation():
    catalogue = _catalogue()
    missing = []
    for msgid in sorted(_extracted()):
        entry = catalogue.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(msgid)
    assert not missing, f"run `make messages` and translate: {missing[:20]}"


def test_translations_keep_their_placeholders():
    for entry in _catalogue():
        if entry.id and entry.string:
            source = entry.id if isinstance(entry.id, str) else entry.id[0]
            target = entry.string if isinstance(entry.string, str) else entry.string[0]
            assert set(PLACEHOLDER.findall(source)) == set(PLACEHOLDER.findall(target)), source


# "Provider" is "डॉक्टर या लैब" in Hindi (docs/i18n.md); these were said instead.
OTHER_WORDS_FOR_PROVIDER = ("प्रदाता", "डॉक्टर/लैब")
PROVIDER = re.compile(r"\bproviders?\b", re.I)
# Messages naming a provider that rightly say it otherwise, with why.
PROVIDER_SAID_OTHERWISE = {
    # Said to the provider: "your profile".
    "Your provider profile is not set up yet. Please ask the clinic's operations team to "
    "add you to a clinic.",
    "Your provider profile is not set up yet. Please ask the clinic's administrators.",
}


def test_provider_is_said_one_way_in_hindi():
    """The invitation mail said "सेवा प्रदाता" and find's count "डॉक्टर/लैब", where every
    other message says "डॉक्टर या लैब"; the meeting link's refusal said "डॉक्टर" alone."""
    stray, other = [], []
    for entry in _catalogue():
        ids = (entry.id,) if isinstance(entry.id, str) else entry.id
        says = (entry.string,) if isinstance(entry.string, str) else entry.string
        if not ids[0]:
            continue
        stray += [s for s in says if any(word in s for word in OTHER_WORDS_FOR_PROVIDER)]
        named = PROVIDER.search(PLACEHOLDER.sub("", ids[0]))
        if named and ids[0] not in PROVIDER_SAID_OTHERWISE:
            other += [s for s in says if "डॉक्टर या लैब" not in s]
    assert stray == [] and other == [], (stray, other)


def test_the_password_message_states_the_real_minimum():
    # The catalogue needs a fixed text; this keeps it true when the minimum changes.
    assert str(PASSWORD_MIN_LENGTH) in PASSWORD_MESSAGE


def test_a_visitor_chooses_hindi_and_the_cookie_remembers_it(client):
    assert 'lang="en-IN"' in client.get("/auth/login").get_data(as_text=True)
    response = client.post("/language", data={"language": "hi", "next": "/auth/login"})
    assert response.status_code == 303 and response.headers["Location"] == "/auth/login"
    page = client.get("/auth/login").get_data(as_text=True)
    assert 'lang="hi-IN"' in page and "साइन इन" in page and "पासवर्ड भूल गए?" in page


def test_an_unknown_language_or_a_foreign_next_changes_nothing(client):
    response = client.post("/language", data={"language": "xx", "next": "https://evil.test/"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "lang=" not in response.headers.get("Set-Cookie", "")


def test_the_choice_is_kept_on_the_account_for_other_devices(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    client.post("/language", data={"language": "hi", "next": "/"})
    with app.app_context():
        assert db.session.get(User, user.id).language == "hi"
    other = app.test_client()  # another browser, no cookie
    other.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert 'lang="hi-IN"' in other.get("/auth/password").get_data(as_text=True)


def test_the_browser_preference_is_the_default(client):
    page = client.get("/auth/login", headers={"Accept-Language": "hi-IN,hi;q=0.9"})
    assert 'lang="hi-IN"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        ("hi-IN,en;q=0.9", "hi-IN"),  # a regional tag first beats a plain one after it
        ("hi-IN,en-US;q=0.9,en;q=0.8", "hi-IN"),
        ("en-IN,hi;q=0.9", "en-IN"),
        ("en-GB,hi;q=0.9", "en-IN"),
        ("fr-FR,hi;q=0.5,en;q=0.4", "hi-IN"),  # the first language we speak
        ("hi;q=0,en;q=0.5", "en-IN"),  # q=0 means "not this one"
    ],
)
def test_the_browsers_first_language_we_speak_wins(client, accept, lang):
    page = client.get("/auth/login", headers={"Accept-Language": accept}).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page, accept


def test_an_english_first_browser_registers_an_english_account(app, client):
    from tests.accounts.test_auth_web import REGISTRATION

    response = client.post(
        "/auth/register", data=REGISTRATION, headers={"Accept-Language": "en-IN,hi;q=0.9"}
    )
    assert response.status_code == 303
    with app.app_context():
        language = db.session.scalar(
            sa.select(User.language).where(User.email == REGISTRATION["email"])
        )
        db.session.remove()
    assert language == "en"


def test_form_errors_and_flashes_come_in_hindi(client):
    client.set_cookie("lang", "hi")
    page = client.post("/auth/login", data={"email": "", "password": ""}).get_data(as_text=True)
    assert "अपना ईमेल पता दर्ज करें।" in page
    client.post("/auth/forgot-password", data={"email": "nobody@example.com"})
    page = client.get("/auth/login").get_data(as_text=True)
    assert "नया पासवर्ड चुनने का लिंक" in page


def test_wtforms_own_messages_are_read_once_per_process(app, client, monkeypatch):
    """WTForms' catalogue is read once per language, not on every request with a form
    (Flask-WTF's default), and its messages still reach the page."""
    from babel import support

    from portal.web.forms import base

    base._wtforms_translations.cache_clear()
    loads = []
    real = support.Translations.load

    def load(*args, **kwargs):
        loads.append(kwargs.get("domain"))
        return real(*args, **kwargs)

    monkeypatch.setattr(support.Translations, "load", load)
    for _ in range(3):
        page = client.post("/auth/register", data={"email": "not an address"})
        assert page.status_code == 422
    assert loads.count("wtforms") == 2  # the portal's catalogue and WTForms', once each
    with app.test_request_context():
        assert base._wtforms_translations("en").gettext("Not a valid integer value.")


@pytest.mark.parametrize(
    "path",
    ["/auth/login", "/auth/register", "/auth/forgot-password", "/no-such-page"],
)
def test_pages_in_hindi_have_no_english_left(client, path):
    client.set_cookie("lang", "hi")
    page = client.get(path).get_data(as_text=True)
    assert untranslated(page, data={"98123 45678"}) == []


def test_the_checker_finds_english():
    # The check above must be able to fail.
    assert untranslated("<p>नमस्ते</p><p>Book a visit</p>") == ["Book a visit"]
    assert untranslated('<input placeholder="Search">') == ["Search"]
    assert untranslated("<p>Dr Asha</p>", data={"Dr Asha"}) == []


# --- the patient and doctor interface in Hindi, with real data ----------------------------

# Names the test data put on the pages (people, clinics, services): not words to translate.
WORLD_DATA = {
    "Priya Sharma", "Aarav", "Dr Asha Rao", "Dr Vikram Shah", "City Lab", "Indiranagar Clinic",
    "Bengaluru", "100 Ft Road", "General Medicine", "Pathology", "Consultation", "Follow-up",
    "Blood test", "KMC-1", "Asia/Kolkata", "98123 45678",
    "29ABCDE1234F1Z5", "12/2017-CT(Rate)",  # a GSTIN and the GST notification cited as is
    "IMPS/NEFT", "HDFC0001234", "name@bank",  # bank formats shown as examples
    "ABCPK1234L",  # a PAN's format, shown as an example
}  # fmt: skip


def _hindi_pages(client, paths, data):
    """Each path rendered in Hindi → the English left on it (an empty dict when none)."""
    client.set_cookie("lang", "hi")
    left = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        found = untranslated(response.get_data(as_text=True), data=data)
        if found:
            left[path] = found
    return left


def _paid_visit(app, client, world):
    """A visit held through the service and paid in full from the wallet, as the patient."""
    from tests.web.booking.helpers import credit_wallet, hold

    visit_id, item_id = hold(app, world)
    credit_wallet(app, world.patient.id, 100_000)
    response = client.post(
        f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, "529.50")
    )
    assert response.status_code == 303
    return visit_id, item_id


def _paid_online(app, client, world, start):
    """A consultation held and paid on the sandbox's checkout (an ORDER on its receipt)."""
    from urllib.parse import urlsplit

    from tests.web.booking.helpers import hold, pay_on_sandbox

    visit_id, _item = hold(app, world, start=start)
    response = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, ""))
    assert response.status_code == 303
    returned = urlsplit(pay_on_sandbox(client, response.location))
    assert client.get(returned.path, query_string=returned.query).status_code == 303
    return visit_id


def _payment_ids(app, visit_id):
    """The gateway's payment ids of a visit (data on its receipt, as its method is)."""
    from portal.payments.models import Payment

    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(Payment.razorpay_payment_id).where(
                    Payment.master_id == visit_id, Payment.razorpay_payment_id.is_not(None)
                )
            )
        )


def _numbers(app, visit_id):
    from portal.booking.models import MasterBooking

    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        return {visit.number, visit.invoice_no or "—"}


def test_patient_pages_in_hindi_have_no_english_left(app, client, login, world):
    from tests.web.booking.helpers import book_url, hold, slot

    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    paid_id, item_id = _paid_visit(app, client, world)
    online_id = _paid_online(app, client, world, slot(world.day, 14))
    open_id, _open_item = hold(app, world, service=world.follow, start=slot(world.day, 12))
    find = client.get("/find").get_data(as_text=True)
    times = re.search(r'class="more-times" href="([^"]+)"', find).group(1).replace("&amp;", "&")
    paths = [
        "/",
        "/me/",
        "/find",
        times,
        book_url(world),
        f"/me/visits/{open_id}",
        f"/me/visits/{paid_id}",
        f"/me/visits/{paid_id}/confirmation",
        f"/me/visits/{paid_id}/cancel",
        f"/me/visits/{paid_id}/refunds",
        f"/me/bookings/{item_id}/reschedule",
        "/me/wallet",
        "/me/visits",
        f"/me/visits/{paid_id}/receipt",
        # Paid online: the receipt names the payment's kind ("Order" stayed English).
        f"/me/visits/{online_id}/receipt",
        # A lab test: earlier visits to refer to, and "No referral" (it stayed English).
        book_url(world, provider=world.lab_provider, service=world.lab, start=slot(world.day, 15)),
        "/me/dependents",
        f"/me/dependents/{world.child}/edit",
        "/notifications/",
    ]
    data = WORLD_DATA | _numbers(app, paid_id) | _numbers(app, open_id) | {world.patient.email}
    data |= _numbers(app, online_id) | _payment_ids(app, online_id) | {"upi", "card"}
    assert _hindi_pages(client, paths, data) == {}


def test_doctor_pages_in_hindi_have_no_english_left(app, client, login, world):
    patient = app.test_client()
    patient.post("/auth/login", data={"email": world.patient.email, "password": PASSWORD})
    _paid_visit(app, patient, world)  # an appointment on the doctor's schedule
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    paths = ["/provider/", "/provider/schedule", "/provider/availability",
             "/provider/earnings", "/provider/bank"]  # fmt: skip
    assert _hindi_pages(client, paths, WORLD_DATA | {world.provider_user.email}) == {}


def test_the_doctors_hours_and_leave_refusals_and_leave_dates_are_in_hindi(client, login, world):
    """Review findings: the hours' and leave's refusals (catalog.availability) were plain
    English on the doctor's Hindi page, and so were the leave list's day and month names."""
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    data = WORLD_DATA | {world.provider_user.email}
    hx = {"HX-Request": "true"}

    def hours(weekday, start, end):
        return {"clinic_id": str(world.clinic), "weekday": weekday, "start_time": start,
                "end_time": end}  # fmt: skip

    refused = {
        "/provider/availability/windows": [
            hours("5", "10:00", "12:00"),  # the clinic is closed on Saturdays
            hours("0", "08:00", "10:00"),  # it opens at 9
            hours("0", "10:00", "12:00"),  # over the doctor's Monday hours
            hours("0", "12:00", "10:00"),  # backwards
            # Not a time at all: WTForms' own message ("Not a valid time value."), which
            # had no Hindi (session 26 browser walk); and a day that is not a choice.
            hours("0", "9 baje", "12:00"),
            hours("x", "10:00", "12:00"),
        ],
        "/provider/availability/leave": [
            {"starts_at": "2020-01-06T09:00", "ends_at": "2020-01-06T12:00", "reason": ""},
            {"starts_at": "2030-01-07T12:00", "ends_at": "2030-01-07T09:00", "reason": ""},
            {"starts_at": "2030-01-07T09:00", "ends_at": "2032-01-07T09:00", "reason": ""},
            {"starts_at": "kal subah", "ends_at": "2030-01-07T09:00", "reason": ""},
        ],
    }
    left = {}
    for path, forms in refused.items():
        for form in forms:
            answer = client.post(path, data=form, headers=hx)
            assert answer.status_code == 422, (path, form)
            found = untranslated(answer.get_data(as_text=True), data=data)
            if found:
                left[f"{path} {form}"] = found
    # Hours a patient's booking lies in: not removed, and the doctor reads why in Hindi.
    from portal.catalog.models import Availability
    from tests.web.booking.helpers import hold

    hold(client.application, world)
    with client.application.app_context():
        window_id = db.session.scalar(
            sa.select(Availability.id).where(
                Availability.provider_id == world.doc1,
                Availability.weekday == world.day.weekday(),
            )
        )
    refused = client.post(f"/provider/availability/windows/{window_id}/delete", headers=hx)
    assert refused.status_code == 422
    # An unpaid hold: named as one, with when it lapses (tests/booking/test_leave_over_bookings.py
    # says a paid booking's refusal in Hindi).
    assert "हटाए जा रहे घंटों में 1 मरीज़ एक समय के लिए भुगतान कर रहा है" in refused.get_data(as_text=True)
    found = untranslated(refused.get_data(as_text=True), data=data)
    if found:
        left["hours removed over a booking"] = found
    added = client.post(
        "/provider/availability/leave",
        data={"starts_at": "2030-01-07T09:00", "ends_at": "2030-01-07T12:00", "reason": ""},
    )
    assert added.status_code == 303
    page = client.get("/provider/availability").get_data(as_text=True)
    left.update(_hindi_pages(client, ["/provider/availability"], data))
    assert left == {}
    assert "सोम 07 जन॰ 2030" in page  # the leave's first day, as the doctor wrote it


def test_the_doctors_hours_edit_is_in_hindi(client, login, world):
    """A window's Edit (its form, its refusals, and the flash once saved) on the doctor's
    Hindi page: no English left."""
    from portal.catalog.models import Availability
    from tests.web.booking.helpers import hold

    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    data = WORLD_DATA | {world.provider_user.email}
    hx = {"HX-Request": "true"}
    hold(client.application, world)  # 10:00 on world.day with the doctor
    with client.application.app_context():
        window_id = db.session.scalar(
            sa.select(Availability.id).where(
                Availability.provider_id == world.doc1,
                Availability.weekday == world.day.weekday(),
            )
        )
    url = f"/provider/availability/windows/{window_id}/edit"
    left = _hindi_pages(client, [url], data)
    for start, end in [("12:00", "10:00"), ("07:00", "10:00"), ("11:00", "18:00")]:
        answer = client.post(url, headers=hx, data={"edit-start_time": start, "edit-end_time": end})
        assert answer.status_code == 422, (start, end)
        found = untranslated(answer.get_data(as_text=True), data=data)
        if found:
            left[f"{start}–{end}"] = found
    assert "हटाए जा रहे घंटों में 1 मरीज़ एक समय के लिए भुगतान कर रहा है" in answer.get_data(
        as_text=True
    )  # the hold: nothing to cancel, it lapses by itself
    saved = client.post(
        url, headers=hx, data={"edit-start_time": "09:00", "edit-end_time": "17:00"}
    )
    assert saved.status_code == 200 and "घंटे बदले गए।" in saved.get_data(as_text=True)
    found = untranslated(saved.get_data(as_text=True), data=data)
    if found:
        left["saved"] = found
    assert left == {}


def test_a_page_with_an_unwrapped_string_fails_the_check(app, client, login, world):
    # The pages above are checked by rendering them: prove one English word is caught.
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    page = client.get("/me/wallet").get_data(as_text=True)
    assert untranslated(page, data=WORLD_DATA) == []
    found = untranslated(page.replace("</h1>", " Wallet</h1>", 1), data=WORLD_DATA)
    assert len(found) == 1 and found[0].endswith("Wallet")


def test_a_message_with_values_reads_in_english_and_translates_with_them(app):
    from flask_babel import force_locale

    from portal.domain import cancellation
    from portal.domain.policy import DEFAULT_POLICY
    from portal.web.filters import translate

    late = cancellation.late_booking_notice(timedelta(hours=1), DEFAULT_POLICY)
    assert late.startswith("This time is less than ") and "hours away" in late
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(late)
    assert "घंटे से कम दूर" in hindi and str(late.values["hours"]) in hindi


def test_the_cancellation_refusal_says_the_policys_hours_in_hindi(app):
    """The refusal names the policy's cut-off (review finding: it always said 24 hours), in
    Hindi too: here the last tier at 12 h."""
    from flask_babel import force_locale

    from portal.domain.cancellation import refund_for_cancellation
    from portal.domain.policy import DEFAULT_POLICY, RefundTier
    from portal.web.filters import translate

    first, _second = DEFAULT_POLICY.patient_cancellation_tiers
    late = RefundTier(notice=timedelta(hours=12), inclusive=False, refund_bps=7_500)
    policy = DEFAULT_POLICY.with_changes(patient_cancellation_tiers=(first, late))
    refused = refund_for_cancellation("patient", timedelta(hours=10), 10_000, policy=policy)
    with app.test_request_context(), force_locale("hi"):
        hindi = translate(refused.message)
    assert hindi == "अपॉइंटमेंट से 12 घंटे के भीतर रद्द करने की अनुमति नहीं है"


def test_a_page_follows_a_forced_language_and_comes_back(app):
    """The translations kept for a request follow ``force_locale`` (a notice rendered in
    its recipient's language inside someone else's request) and return after it."""
    from flask import render_template_string
    from flask_babel import force_locale

    def amount():
        return render_template_string("{{ _('Amount') }}")

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert amount() == "Amount"
        with force_locale("hi"):
            assert amount() == "राशि"
        assert amount() == "Amount"


def test_values_that_are_messages_are_said_in_the_readers_language_too(app):
    """A status inside a sentence (Label), a date (DateText) and a message inside a message
    (Text): English as they read, Hindi through the t filter."""
    from flask_babel import force_locale

    from portal.domain.text import DateText, Text, status_label
    from portal.payouts.completion import MSG_CANNOT_START, MSG_TOO_EARLY
    from portal.payouts.reports import MSG_BOOKING, MSG_PENALTY
    from portal.web.filters import translate

    refused = Text(MSG_CANNOT_START, status=status_label("PARTIALLY_CANCELLED"))
    assert refused == "This appointment is partially cancelled and cannot be started."
    early = Text(MSG_TOO_EARLY, start=DateText("07 Dec 2026, 10:00"))
    booking = Text(MSG_BOOKING, service="Consultation", name="Aarav", when=DateText("07 Dec 2026"))
    penalty = Text(MSG_PENALTY, booking=booking)
    assert penalty == "You cancelled Consultation for Aarav, 07 Dec 2026"
    with app.test_request_context():
        assert translate(refused) == str(refused)  # English: the same words
        with force_locale("hi"):
            assert "“आंशिक रूप से रद्द”" in translate(refused)
            assert "07 दिस॰ 2026, 10:00" in translate(early)
            assert translate(penalty) == "आपने Aarav के लिए Consultation, 07 दिस॰ 2026 रद्द किया"


def test_the_policys_refusals_are_said_in_hindi(app, client, login, world):
    """The policy's refusals reached Hindi pages in English, though the catalogue has them
    (review finding): the patient's cancel page (shown and on submit), the move page, and
    the doctor's cancel page after the start."""
    import time_machine

    from portal.booking.models import IndividualBooking

    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    visit_id, item_id = _paid_visit(app, client, world)
    with app.app_context():
        start = db.session.get(IndividualBooking, item_id).start_at
    with time_machine.travel(start - timedelta(hours=20), tick=True):
        shown = client.get(f"/me/visits/{visit_id}/cancel?item={item_id}").get_data(True)
        posted = client.post(
            f"/me/visits/{visit_id}/cancel",
            data={"items": [item_id], "destination": "original", "reason": ""},
        )
        moved = client.get(f"/me/bookings/{item_id}/reschedule").get_data(as_text=True)
    assert 'lang="hi' in shown
    assert "अपॉइंटमेंट से 24 घंटे के भीतर रद्द करने की अनुमति नहीं है" in shown
    assert posted.status_code == 422
    assert "Cancellation not allowed" not in shown + posted.get_data(as_text=True)
    assert "घंटे के भीतर समय बदलने की अनुमति नहीं है" in moved
    assert "Reschedule not allowed" not in moved
    client.post("/auth/logout")
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    with time_machine.travel(start + timedelta(minutes=15), tick=True):
        html = client.get(f"/provider/bookings/{item_id}/cancel").get_data(as_text=True)
    refused = re.search(r'id="provider-cancel-refused">([^<]*)<', html).group(1)
    assert "अपॉइंटमेंट शुरू होने से पहले ही डॉक्टर या लैब" in refused


def test_the_catalogue_is_as_make_messages_writes_it(tmp_path):
    """Extracted and merged afresh (``tools/messages.py``, what `make messages` runs), the
    catalogue is the committed one: an entry wrapped by hand made the next run rewrite
    3,000 lines, and entries of strings the code no longer had stayed behind."""
    from tools.messages import CATALOGUES, LANGUAGES, undated, write

    write(tmp_path)
    written = [Path("messages.pot")] + [
        Path(language, "LC_MESSAGES", "messages.po") for language in LANGUAGES
    ]
    for name in written:
        assert undated((tmp_path / name).read_text()) == undated((CATALOGUES / name).read_text()), (
            f"{name} differs from what `make messages` writes: run it and commit the result"
        )
