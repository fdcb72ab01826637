"""The doctor's money in Hindi (issue #16): the earnings page with every kind of movement
on the payable (an earning, a reschedule fee, a cancellation penalty, a payout with TDS, a
returned payout) and a refused start, with no English left."""

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from tests.i18n.test_language import WORLD_DATA, _hindi_pages
from tests.i18n.untranslated import untranslated
from tests.plugin import PASSWORD
from tests.refunds.helpers import quoted_provider_cancel
from tests.web.booking.helpers import HX, credit_wallet, hold, pay_fields, slot

# The services' price with platform fee and GST (Consultation ₹500): paid from the wallet.
CONSULTATION_TOTAL = "529.50"


def _paid(app, patient_client, world, hour):
    visit_id, item_id = hold(app, world, start=slot(world.day, hour))
    answer = patient_client.post(
        f"/me/visits/{visit_id}/pay", data=pay_fields(patient_client, visit_id, CONSULTATION_TOTAL)
    )
    assert answer.status_code == 303
    return item_id


def _payout(provider_id, gross, tds, *, reversed_=False):
    """A payout as the payout engine leaves it (row + ``payout_initiated``), and, when
    ``reversed_``, the bank's reversal putting it back on the payable. Built directly: the
    page under test only reads them, and RazorpayX is not part of this world."""
    from portal.ledger import accounts as chart
    from portal.ledger.service import credit, debit, post
    from portal.payouts import models as m

    account = db.session.query(m.FundAccount).filter_by(provider_id=provider_id).first()
    if account is None:
        account = m.FundAccount(
            provider_id=provider_id,
            kind=m.BANK_ACCOUNT,
            holder_name="Asha Rao",
            ifsc="HDFC0001234",
            account_last4="5678",
            razorpay_fund_account_id="fa_test_1",
            status="VALIDATED",
        )
        db.session.add(account)
        db.session.flush()
    payout = m.Payout(
        provider_id=provider_id,
        fund_account_id=account.id,
        kind=m.MANUAL_KIND,
        financial_year="2026-27",
        gross=gross,
        tds=tds,
        net=gross - tds,
        tds_section="194J" if tds else None,
        tds_rate_bps=1_000,
        tds_threshold=5_000_000,
        mode="IMPS",
        idempotency_key=f"test-payout-{gross}-{tds}",
        status="REVERSED" if reversed_ else "PROCESSED",
        returned=reversed_,
    )
    db.session.add(payout)
    db.session.flush()
    payable = chart.provider_payable(provider_id)
    post(
        "payout_initiated",
        [
            debit(payable, gross),
            credit(chart.TDS_PAYABLE, tds),
            credit(chart.PAYOUTS_IN_TRANSIT, gross - tds),
        ],
        reference=("payout", payout.id),
        idempotency_key=f"payout:{payout.id}:initiated",
        memo=f"payout {payout.id} to provider {provider_id}",
    )
    if reversed_:
        post(
            "payout_reversed",
            [
                debit(chart.PAYOUTS_IN_TRANSIT, gross - tds),
                debit(chart.TDS_PAYABLE, tds),
                credit(payable, gross),
            ],
            reference=("payout", payout.id),
            idempotency_key=f"payout:{payout.id}:reversed",
            memo=f"payout {payout.id} reversed: back to the payable",
        )
    db.session.commit()
    return payout.id


@pytest.fixture
def money(app, world):
    """The doctor's payable with every kind of line, made through the services where they
    exist: a completed appointment, a paid reschedule (the doctor's share of the fee), a
    doctor's cancellation (the penalty), a payout with TDS and a reversed payout."""
    from portal.accounts.models import User
    from portal.booking.models import IndividualBooking
    from portal.payouts.completion import complete_booking, start_booking
    from tests.refunds.helpers import quoted_move

    with app.app_context():  # both read Hindi: what they are sent follows their setting
        for user in (world.patient, world.provider_user):
            db.session.get(User, user.id).language = "hi"
        db.session.commit()
    patient = app.test_client()
    patient.post("/auth/login", data={"email": world.patient.email, "password": PASSWORD})
    credit_wallet(app, world.patient.id, 500_000)
    earned = _paid(app, patient, world, 10)
    moved = _paid(app, patient, world, 11)
    cancelled = _paid(app, patient, world, 12)
    waiting = _paid(app, patient, world, 15)
    with app.app_context():
        doctor = db.session.get(User, world.provider_user.id)
        start = db.session.get(IndividualBooking, earned).start_at
        start_booking(doctor, earned, now=start)
        complete_booking(doctor, earned, now=start)
        # 50 hours ahead: the second tier, a fee (the doctor's share goes to the payable).
        old = db.session.get(IndividualBooking, moved).start_at
        person = db.session.get(User, world.patient.id)
        quoted_move(
            person, moved, slot(world.day, 16), pay_with="wallet", now=old - timedelta(hours=50)
        )
        quoted_provider_cancel(doctor, cancelled, "Called to surgery")
        _payout(world.doc1, 20_000, 2_000)
        _payout(world.doc1, 5_000, 0, reversed_=True)
    return {"earned": earned, "moved": moved, "cancelled": cancelled, "waiting": waiting}


def test_the_earnings_page_in_hindi_has_no_english_left(app, client, login, world, money):
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get("/provider/earnings").get_data(as_text=True)
    statement = html.split('id="statement"')[1].split("</section>")[0]
    rows = re.findall(r'<tr class="statement-line">(.*?)</tr>', statement, re.S)
    whats = [re.findall(r'<td data-label="[^"]+">([^<]*)<', r)[1] for r in rows]
    # Newest first: the reversal, both payouts, the penalty, the fee, the earning.
    assert whats == [
        "भुगतान लौटा", "भुगतान", "भुगतान", "रद्द करने का जुर्माना", "समय बदलने का शुल्क", "कमाई",
    ], whats  # fmt: skip
    assert "+ ₹20 TDS" in statement and "194J" in statement
    assert "कंसल्टेशन" not in statement and "Consultation" in statement  # names stay as typed
    penalties = html.split('id="penalties"')[1].split("</section>")[0]
    assert "रद्द करने का जुर्माना" in penalties and "booking" not in penalties
    assert _hindi_pages(client, ["/provider/earnings"], WORLD_DATA) == {}


def test_the_earnings_page_in_english_names_every_line(app, client, login, world, money):
    login(world.provider_user)
    client.post("/language", data={"language": "en", "next": "/"})
    html = client.get("/provider/earnings").get_data(as_text=True)
    for words in ("Earning", "(fee less commission)", "Your share of the fee to move",
                  "Cancellation penalty", "You cancelled Consultation for Priya Sharma",
                  "to your bank + ₹20 TDS (section 194J)", "did not reach your bank"):  # fmt: skip
        assert words in html, words
    # The fee names the appointment by the time it was moved from (11:00), not to (16:00).
    assert re.search(r"fee to move Consultation for Priya Sharma, \d\d \w{3} \d{4}, 11:00<", html)


def test_a_refused_start_in_hindi_is_hindi(app, client, login, world, money):
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    # Already completed: refused, the row swapped with the message (htmx) …
    answer = client.post(f"/provider/schedule/{money['earned']}/start", headers=HX)
    assert answer.status_code == 422
    row = answer.get_data(as_text=True)
    assert "पूरी हुई" in row and untranslated(row, data=WORLD_DATA) == []
    # … or flashed on the schedule after a plain post.
    client.post(f"/provider/schedule/{money['earned']}/complete")
    page = client.get("/provider/schedule").get_data(as_text=True)
    flash = re.search(r'class="flash flash-error"[^>]*>([^<]+)<', page).group(1)
    assert untranslated(f"<p>{flash}</p>") == [] and "पूरी हुई" in flash
    # Too early: the start time with its month in Hindi.
    answer = client.post(f"/provider/schedule/{money['waiting']}/start", headers=HX)
    assert answer.status_code == 422
    assert untranslated(answer.get_data(as_text=True), data=WORLD_DATA) == []


def _english_in(texts, data):
    return [t for t in texts if untranslated(f"<p>{html.escape(t)}</p>", data=data)]


def test_what_they_are_sent_and_their_other_pages_are_hindi(app, client, login, world, money):
    """The rest of the interface these states reach: the doctor's schedule and cancel page,
    the patient's visits, wallet and notifications, and every notice, mail and SMS."""
    from portal.booking.models import IndividualBooking, Reschedule
    from portal.notify.models import Delivery, MailMessage, Notification

    with app.app_context():
        visits = {
            key: db.session.get(IndividualBooking, item).master_id for key, item in money.items()
        }
        numbers = {db.session.get(IndividualBooking, i).visit.number for i in money.values()}
        # Theirs only: the admins' alerts are in English by design (docs/i18n.md).
        people = {world.patient.id, world.provider_user.id}
        emails = {world.patient.email, world.provider_user.email}
        notices = db.session.scalars(
            sa.select(Notification).where(Notification.user_id.in_(people))
        ).all()
        texts = [n.title for n in notices] + [n.body for n in notices]
        mails = db.session.scalars(sa.select(MailMessage).where(MailMessage.to.in_(emails)))
        texts += [t for m in mails for t in (m.subject, m.text)]
        deliveries = db.session.scalars(sa.select(Delivery).where(Delivery.user_id.in_(people)))
        texts += [d.text for d in deliveries if d.text]
        invoices = {db.session.get(IndividualBooking, i).visit.invoice_no for i in money.values()}
        fees = sa.select(Reschedule.document_no).where(Reschedule.document_no.is_not(None))
        invoices |= set(db.session.scalars(fees))  # a fee's own tax document (RF/…)
    data = WORLD_DATA | numbers | invoices | {"Called to surgery", "(.ics)"}
    left = _english_in([re.sub(r"https?://\S+", "", t) for t in texts], data)
    assert len(texts) > 10 and left == [], "\n".join(left)

    login(world.provider_user)
    doctor_paths = ["/provider/schedule", f"/provider/bookings/{money['waiting']}/cancel",
                    "/notifications/"]  # fmt: skip
    assert _hindi_pages(client, doctor_paths, data | {world.provider_user.email}) == {}
    client.post("/auth/logout")
    login(world.patient)
    patient_paths = [f"/me/visits/{v}" for v in visits.values()] + [
        f"/me/visits/{visits['cancelled']}/refunds",
        "/me/visits",
        "/me/wallet",
        "/notifications/",
    ]
    assert _hindi_pages(client, patient_paths, data) == {}


def test_the_patients_refused_forms_are_hindi(app, client, login, world):
    """A missing coupon code and more wallet money than there is: the form errors."""
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/"})
    visit_id, _item = hold(app, world)
    coupon = client.post(f"/me/visits/{visit_id}/coupon", data={"code": ""})
    assert "कूपन कोड दर्ज करें" in coupon.get_data(as_text=True)
    paid = client.post(f"/me/visits/{visit_id}/pay", data=pay_fields(client, visit_id, "100"))
    assert paid.status_code == 422
    page = paid.get_data(as_text=True)
    assert "आपके वॉलेट में ₹0 हैं।" in page
    assert untranslated(page, data=WORLD_DATA) == []


@pytest.mark.parametrize(
    "validation",
    [
        {"status": "completed", "results": {"account_status": "invalid"}},
        {"status": "failed"},
    ],
)
def test_why_the_bank_refused_the_account_is_said_in_hindi(app, client, login, world, validation):
    """The reason a validation failed is a catalogue message the bank page translates
    (review finding: an English sentence on the Hindi page)."""
    from portal.payouts import fund_accounts
    from portal.payouts import models as m

    with app.app_context():
        db.session.add(
            m.FundAccount(
                provider_id=world.doc1,
                kind=m.BANK_ACCOUNT,
                holder_name="Asha Rao",
                ifsc="HDFC0001234",
                account_last4="5678",
                razorpay_validation_id="fav_test_1",
                status="PENDING",
            )
        )
        db.session.commit()
        assert fund_accounts.apply_validation_entity({"id": "fav_test_1", **validation})
        db.session.remove()
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    page = client.get("/provider/bank").get_data(as_text=True)
    assert 'data-status="FAILED"' in page
    status = page.split('id="fund-account-status"', 1)[1].split("</section>", 1)[0]
    assert untranslated(status, data=WORLD_DATA | {"Asha Rao", "5678"}) == []


def test_a_cancel_refused_as_the_appointment_moved_meanwhile_is_hindi(app, client, login, world):
    """The doctor's cancel form sends back the start it showed (``refunds.shown``); moved
    meanwhile, the refusal is said in the doctor's language with the new time."""
    from portal.accounts.models import User
    from portal.booking.models import IndividualBooking
    from tests.refunds.helpers import quoted_move

    patient = app.test_client()
    patient.post("/auth/login", data={"email": world.patient.email, "password": PASSWORD})
    credit_wallet(app, world.patient.id, 100_000)
    item_id = _paid(app, patient, world, 10)
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    page = client.get(f"/provider/bookings/{item_id}/cancel").get_data(as_text=True)
    tags = re.findall(r'<input[^>]*name="shown_[^>]*>', page)
    shown = dict(re.search(r'name="(\w+)"[^>]*value="(\d+)"', t).groups() for t in tags)
    with app.app_context():  # the patient moves it meanwhile (50 hours ahead: a fee)
        old = db.session.get(IndividualBooking, item_id).start_at
        person = db.session.get(User, world.patient.id)
        quoted_move(
            person, item_id, slot(world.day, 16), pay_with="wallet", now=old - timedelta(hours=50)
        )
    refused = client.post(
        f"/provider/bookings/{item_id}/cancel", data={"reason": "छुट्टी पर", **shown}
    )
    text = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 422
    assert "पेज दिखाए जाने के बाद यह अपॉइंटमेंट" in text and "16:00" in text
    assert "after the page was shown" not in text


def test_the_payable_cards_sentences_end_as_hindi_ends_them(app, client, login, world, money):
    """The earnings page joined two sentences, and ended the payout schedule's, with its
    own ". " after the words: a Hindi page read "साप्ताहिक ." and "उपलब्ध: −₹…. आपकी"."""
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    page = html.unescape(client.get("/provider/earnings").get_data(as_text=True))
    assert "भुगतान का समय: <strong>साप्ताहिक</strong>।" in page
    carried = re.search(r'<p class="muted" role="status">([^<]*)</p>', page).group(1)
    assert carried.startswith("न्यूनतम भुगतान सीमा पूरी नहीं हुई।"), carried
    assert re.search(r"उपलब्ध: −?₹[\d,.]*\d। आपकी शेष राशि", carried), carried
    assert ". " not in carried


def test_held_payouts_read_in_hindi(app, client, login, world):
    """A payout the clinic holds (failed and waiting for its retry, or not yet sent): its
    row and the payable card say it waits for the clinic, in Hindi (review finding: "retry 2
    pending" and "on its way to your bank" for a held payout)."""
    from portal.payouts import models as m

    with app.app_context():
        for gross, status in ((20_000, "FAILED"), (30_000, "QUEUED")):
            payout = db.session.get(m.Payout, _payout(world.doc1, gross, 0))
            payout.status, payout.held, payout.hold_reason = status, True, "Checking the bank"
        db.session.commit()
    login(world.provider_user)
    client.post("/language", data={"language": "hi", "next": "/"})
    page = html.unescape(client.get("/provider/earnings").get_data(as_text=True))
    assert "क्लिनिक ने रोका है — क्लिनिक के जारी करने पर फिर से भेजने की कोशिश की जाएगी" in page
    assert "क्लिनिक ने रोका है — क्लिनिक के जारी करने पर भेजा जाएगा" in page
    assert "₹500 क्लिनिक ने रोका है: क्लिनिक के जारी करने पर यह भेजा जाएगा।" in page
    assert "Checking the bank" not in page
    assert _hindi_pages(client, ["/provider/earnings"], WORLD_DATA) == {}
