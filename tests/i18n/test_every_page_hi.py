"""Every page a patient, a doctor or a lab can open, in Hindi, with no English left; and
every notice, mail and SMS they are sent.

The other Hindi checks render pages a test chose; this one walks ``app.url_map``: every
GET route of the patient, provider, public, auth and notifications blueprints is opened
(its URL parameters filled from one rich state, and its htmx blocks asked for) by a
patient, a doctor and a lab who chose Hindi, a provider without a profile yet, and a
visitor. A route the walk does not know (a new one) fails the test until it is added to
``_urls``, with the ids that fill it, or to ``NOT_WALKED`` with why. Each answer has the status expected (a redirect's, and then 200
where it lands); each HTML one, page or block, holds Hindi words and no English ones.

The state (``state``, through the services and the patient's own pages): money in the
wallet; a confirmed visit of several items, one cancelled by the patient (refunded to the
wallet), one cancelled by the doctor (a penalty), one moved (a fee from the wallet), one
waiting for its move's fee paid online, an online one with its meeting link; a visit paid
at the gateway's checkout and cancelled (refunded to the card); today's visit (one to
start, one started early, one completed, one online without a link); a family member's
visit paid (a team appointment) and another held unpaid with a coupon; payouts with TDS
and one returned, leave, bank accounts; the lab's PAN on file (the doctor has none) and
the clinic's TAN (``CLINIC_TAN``), for the TDS by quarter page.
"""

import html
import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import time_machine

from portal.extensions import db
from tests.booking.factories import NOW
from tests.i18n.test_doctor_money import _payout
from tests.i18n.test_language import WORLD_DATA, _paid_online
from tests.i18n.untranslated import texts, untranslated
from tests.plugin import sign_in
from tests.web.booking.helpers import (
    book_url,
    credit_wallet,
    hold,
    online_service,
    pay_fields,
    slot,
)

# The blueprints whose pages a patient, a doctor or a lab (or a visitor) reads. The
# others: ``admin`` is English by design (docs/i18n.md), ``ops`` is the machines' health
# check, ``webhooks`` and ``language`` take posts only.
WALKED = ("patient", "provider", "public", "auth", "notifications")
# GET routes of those blueprints the walk does not open, with why.
NOT_WALKED = {
    "auth.logout": "ends the session (the footer's button posts; its GET only redirects)",
}
# Answers that are not a page to read: their status is checked, not their words.
NOT_HTML = {
    "patient.download_data": "the data export: a JSON document, its keys the format's own",
    "provider.tds_quarters_csv": "the TDS by quarter CSV: in English, as the tax forms are",
}
# Every HTML answer, a whole page or an htmx block, holds some Hindi (a block answered in
# English, or empty, is noticed): none of the walked ones is without words.
_DEVANAGARI = re.compile("[\u0900-\u097f]")
LEAVE_REASON = "Medical conference"
DOCTOR_CANCEL_REASON = "Called to surgery"
VIDEO = "Video consultation"
MEET = "https://meet.google.com/abc-defg-hij"
# The lab's PAN (masked on its TDS page; the doctor has none: "not on file") and the
# clinic's TAN (the TDS page's deductor line).
LAB_PAN, LAB_PAN_MASKED, CLINIC_TAN = "AABCL1234K", "AABCL••••K", "BLRC01234E"
HX = {"HX-Request": "true"}


# The state is made at 07:55 (09:00 can still be booked: an hour ahead) and the pages
# read at 08:01 (09:00 can be started: an hour early), while the holds (15 minutes) last.
MADE, READ = NOW - timedelta(minutes=5), NOW + timedelta(minutes=1)


@pytest.fixture
def monday():
    """Monday 1 June 2026, 07:55 IST, ticking (listed before ``world``: its day is then
    Wednesday 3 June, and today has clinic hours for today's appointments)."""
    with time_machine.travel(MADE, tick=True):
        yield


def _pay_from_wallet(client, visit_id):
    """Pay the whole visit from the wallet through the visit page's own pay form."""
    due = int(pay_fields(client, visit_id, "")["shown_online"])
    fields = pay_fields(client, visit_id, f"{due // 100}.{due % 100:02d}")
    answer = client.post(f"/me/visits/{visit_id}/pay", data=fields)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]


def _lab(app, world):
    from portal.catalog.models import Provider

    with app.app_context():
        user = db.session.get(Provider, world.lab_provider).user
        return SimpleNamespace(id=user.id, email=user.email)


def _speak_hindi(app, *users):
    """What they are sent follows their own setting: Hindi, as the walk's pages are."""
    from portal.accounts.models import User

    with app.app_context():
        for user in users:
            db.session.get(User, user.id).language = "hi"
        db.session.commit()


@pytest.fixture
def state(monday, app, world, gateway, make_user, monkeypatch):
    """The rich state (see the module's docstring); the ids the routes are filled with."""
    from portal.accounts.models import User
    from portal.accounts.service import INVITE, RESET, make_password_token
    from portal.booking import visits as booking_visits
    from portal.booking.models import Coupon, IndividualBooking, Reschedule
    from portal.catalog.availability import add_leave
    from portal.catalog.models import Availability, Provider
    from portal.payouts.completion import complete_booking, start_booking
    from tests.refunds.helpers import quoted_cancel, quoted_move, quoted_provider_cancel

    today, day = NOW.date(), world.day
    video = online_service(app, world)
    lab_user = _lab(app, world)
    _speak_hindi(app, world.patient, world.provider_user, lab_user)
    credit_wallet(app, world.patient.id, 1_000_000)
    patient = sign_in(app, world.patient)

    def lab_test(start, **kwargs):
        return hold(
            app, world, service=world.lab, provider=world.lab_provider, start=start, **kwargs
        )

    # The visit of several items, paid from the wallet (Wednesday, 50 h ahead and more).
    several, consult = hold(app, world, start=slot(day, 10))
    _, follow = hold(app, world, service=world.follow, start=slot(day, 10, 30), visit_id=several)
    _, lab = lab_test(slot(day, 11), visit_id=several)
    _, online = hold(app, world, service=video, start=slot(day, 14), visit_id=several)
    _, by_doctor = hold(app, world, start=slot(day, 16), visit_id=several)
    _pay_from_wallet(patient, several)
    # Paid at the gateway's checkout (then cancelled: refunded to the card).
    carded = _paid_online(app, patient, world, slot(day, 9))
    # Today: one to start (09:00), one started early, one completed; the lab's, one
    # completed and one to come.
    todays, to_start = hold(app, world, start=slot(today, 9))
    _, started = hold(app, world, start=slot(today, 10), visit_id=todays)
    _, done = hold(app, world, service=world.follow, start=slot(today, 11), visit_id=todays)
    _, lab_done = lab_test(slot(today, 12), visit_id=todays)
    _, lab_later = lab_test(slot(today, 15), visit_id=todays)
    hold(app, world, service=video, start=slot(today, 16), visit_id=todays)  # no link yet
    _pay_from_wallet(patient, todays)
    # The child's: a team appointment paid; another visit held unpaid, with a coupon.
    childs, team = hold(
        app, world, start=slot(day, 15), dependent=world.child, providers=[world.doc1, world.doc2]
    )
    _pay_from_wallet(patient, childs)
    held, _ = hold(app, world, start=slot(day, 12), dependent=world.child)
    lab_test(slot(day, 12, 30), dependent=world.child, visit_id=held)
    with app.app_context():
        db.session.add(Coupon(code="SAVE10", kind="PERCENT", value=1000))
        db.session.commit()
        person = db.session.get(User, world.patient.id)
        booking_visits.apply_coupon(person, held, "SAVE10")
        doctor = db.session.get(User, world.provider_user.id)
        lab_person = db.session.get(User, lab_user.id)
        carded_item = db.session.scalar(
            sa.select(IndividualBooking.id).where(IndividualBooking.master_id == carded)
        )
        quoted_cancel(person, several, [follow], prefer_wallet=True)
        quoted_cancel(person, carded, [carded_item])
        # Moved with a fee from the wallet; the consultation's move waits for its fee.
        quoted_move(person, lab, slot(day, 13), pay_with="wallet")
        quoted_move(
            person,
            consult,
            slot(day, 17),
            pay_with="gateway",
            callback_url="http://portal.test/me/reschedules/__ID__/paid",
        )
        pending = db.session.scalar(
            sa.select(Reschedule.id).where(Reschedule.booking_id == consult)
        )
        quoted_provider_cancel(doctor, by_doctor, DOCTOR_CANCEL_REASON)
        booking_visits.set_meet_link(doctor, online, MEET)
        for who, item, complete in (
            (doctor, started, False),
            (doctor, done, True),
            (lab_person, lab_done, True),
        ):
            start = db.session.get(IndividualBooking, item).start_at
            start_booking(who, item, now=start - timedelta(minutes=30))
            if complete:
                complete_booking(who, item, now=start)
        _payout(world.doc1, 20_000, 2_000)
        _payout(world.doc1, 5_000, 0, reversed_=True)
        _payout(world.lab_provider, 30_000, 3_000)
        db.session.get(Provider, world.lab_provider).pan = LAB_PAN
        db.session.commit()
        monkeypatch.setitem(app.config, "CLINIC_TAN", CLINIC_TAN)
        add_leave(
            doctor,
            db.session.get(Provider, world.doc1),
            slot(day + timedelta(days=14), 9),
            slot(day + timedelta(days=14), 13),
            LEAVE_REASON,
        )
        windows = {
            provider: db.session.scalar(
                sa.select(Availability.id).where(Availability.provider_id == provider).limit(1)
            )
            for provider in (world.doc1, world.lab_provider)
        }
        reset = make_password_token(person, RESET)
        invite = make_password_token(person, INVITE)
    return SimpleNamespace(
        world=world,
        patient=patient,
        lab_user=lab_user,
        newcomer=make_user("provider", name="Dr New Doctor"),  # no profile yet
        visits=SimpleNamespace(
            several=several, carded=carded, todays=todays, childs=childs, held=held
        ),
        items=SimpleNamespace(
            consult=consult,
            follow=follow,
            lab=lab,
            online=online,
            by_doctor=by_doctor,
            carded=carded_item,
            to_start=to_start,
            started=started,
            lab_later=lab_later,
            team=team,
        ),
        reschedule=pending,
        windows=windows,
        reset=reset,
        invite=invite,
    )


def _routes(app):
    """{endpoint: rule} of the walked blueprints' GET routes."""
    return {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.endpoint.split(".")[0] in WALKED
    }


def _urls(s):
    """Each walked endpoint → [(who, url, status, htmx target or None)]; who: ``patient``,
    ``doctor``, ``lab``, ``newcomer`` (a provider without a profile) or ``visitor``. A
    redirect is followed: the page it lands on (and its flash) is read."""
    world, v, i = s.world, s.visits, s.items
    day = world.day
    providers = ("doctor", "lab")
    everyone = ("patient", *providers, "newcomer")

    def times(provider, service):
        query = {"provider": provider, "service": service, "clinic": world.clinic}
        return "/find/times?" + urlencode({**query, "date": day.isoformat()})

    def visit(suffix, visits=vars(v).values(), status=200, target=None):
        return [("patient", f"/me/visits/{n}{suffix}", status, target) for n in visits]

    def returned(path):
        outcomes = ("unpaid", "unverified", "confirming")
        return [("patient", f"{path}?outcome={o}", 303, None) for o in outcomes]

    def book(**kwargs):
        return book_url(world, start=slot(day, 9, 30), **kwargs)

    lab_slot = {"provider": world.lab_provider, "service": world.lab}
    return {
        # --- anyone's
        "public.index": [(who, "/", 200, None) for who in ("visitor", *everyone)],
        "public.find_doctor": [
            *[(who, "/find", 200, None) for who in ("visitor", "patient", "doctor")],
            ("visitor", f"/find?date={day.isoformat()}&q=Asha", 200, None),
            ("visitor", "/find?q=nobody-at-all", 200, None),
            ("visitor", "/find?city=Bengaluru&page=2", 200, "results"),
        ],
        "public.day_times": [
            ("visitor", times(world.doc1, world.consult), 200, None),
            ("patient", times(world.lab_provider, world.lab), 200, None),
            ("visitor", times(world.doc1, world.consult), 200, "times"),
        ],
        # An unsigned return: the page says the payment could not be checked (400).
        "public.payment_link_paid": [
            ("visitor", "/me/links/paid", 400, None),
            ("patient", "/me/links/paid", 400, None),
        ],
        "auth.login": [("visitor", "/auth/login", 200, None)],
        "auth.register": [("visitor", "/auth/register", 200, None)],
        "auth.forgot_password": [("visitor", "/auth/forgot-password", 200, None)],
        "auth.account_closed": [("visitor", "/auth/closed", 200, None)],
        "auth.form_expired": [("visitor", "/auth/form-expired?back=/find", 200, None)],
        "auth.reset_password": [
            ("visitor", f"/auth/reset-password/{s.reset}", 200, None),
            ("visitor", "/auth/reset-password/not-a-token", 400, None),
        ],
        "auth.accept_invite": [
            ("visitor", f"/auth/accept-invite/{s.invite}", 200, None),
            ("visitor", "/auth/accept-invite/not-a-token", 400, None),
        ],
        "auth.change_password": [(who, "/auth/password", 200, None) for who in everyone],
        "notifications.index": [
            *[(who, "/notifications/", 200, None) for who in everyone],
            ("patient", "/notifications/?unread=1", 200, "list"),
        ],
        "notifications.bell": [(who, "/notifications/bell", 200, None) for who in everyone],
        # --- the patient's
        "patient.home": [("patient", "/me/", 200, None)],
        "patient.account": [("patient", "/me/account", 200, None)],
        "patient.download_data": [("patient", "/me/account/data.json", 200, None)],
        "patient.book": [
            ("patient", book(), 200, None),
            ("patient", book() + f"&person=d{world.child}", 200, "for-person"),
            ("patient", book() + f"&visit={v.held}", 200, None),
            ("patient", book(service=world.follow), 200, None),
            ("patient", book(**lab_slot) + f"&person=d{world.child}", 200, "book-form"),
            ("patient", "/me/book?provider=1", 400, None),  # no slot named
            # A provider is sent to the find page, told who books.
            ("doctor", book(), 303, None),
        ],
        "patient.rebook": [
            ("patient", f"/me/bookings/{i.follow}/rebook", 200, None),
            ("patient", f"/me/bookings/{i.by_doctor}/rebook", 200, "slots"),
        ],
        "patient.reschedule": [
            ("patient", f"/me/bookings/{n}/reschedule", 200, None)
            for n in (i.lab, i.consult, i.online, i.team, i.to_start)
        ]
        + [
            (
                "patient",
                f"/me/bookings/{i.online}/reschedule?day={day + timedelta(days=1)}",
                200,
                "slots",
            ),
        ],  # fmt: skip
        "patient.dependents": [("patient", "/me/dependents", 200, None)],
        "patient.edit_dependent": [("patient", f"/me/dependents/{world.child}/edit", 200, None)],
        "patient.reschedule_paid": [("patient", f"/me/reschedules/{s.reschedule}/paid", 303, None)],
        "patient.reschedule_returned": returned(f"/me/reschedules/{s.reschedule}/returned")
        + [("patient", f"/me/reschedules/{s.reschedule}/returned?outcome=paid", 303, None)],
        "patient.visits": [
            ("patient", "/me/visits", 200, None),
            ("patient", "/me/visits?status=PARTIALLY_CANCELLED", 200, "results"),
            ("patient", "/me/visits?status=CANCELLED", 200, "results"),
        ],
        "patient.visit": [
            *visit(""),
            ("patient", f"/me/visits/{v.held}?wallet=100", 200, "summary"),
            ("patient", f"/me/visits/{v.held}?wallet=lots", 422, None),
            ("patient", f"/me/visits/{v.held}?wallet=99999", 422, None),
            ("patient", f"/me/visits/{v.several}", 200, "visit-body"),
        ],
        "patient.cancel_items": [
            *visit("/cancel", [v.several, v.todays, v.childs, v.carded]),
            ("patient", f"/me/visits/{v.several}/cancel?item={i.lab}", 200, None),
            (
                "patient",
                f"/me/visits/{v.several}/cancel?items={i.lab}&items={i.online}&destination=wallet",
                200,
                "cancel-preview",
            ),
        ],
        "patient.confirmation": visit("/confirmation"),
        "patient.visit_paid": visit("/paid", [v.held], 303),
        # Not paid yet: back to the visit, told why.
        "patient.receipt": visit("/receipt", [v.several, v.carded, v.todays, v.childs])
        + visit("/receipt", [v.held], 303),
        "patient.visit_refunds": visit("/refunds", [v.several, v.carded, v.todays])
        + visit("/refunds", [v.carded], 200, "refund-rows"),
        "patient.visit_returned": returned(f"/me/visits/{v.held}/returned"),
        "patient.wallet": [("patient", "/me/wallet", 200, None)],
        # --- the doctor's and the lab's (and a provider's before the clinic adds a profile)
        "provider.home": [(who, "/provider/", 200, None) for who in (*providers, "newcomer")],
        "provider.schedule": [
            *[(who, "/provider/schedule", 200, None) for who in (*providers, "newcomer")],
            ("doctor", f"/provider/schedule?from={day.isoformat()}", 200, None),
            ("doctor", "/provider/schedule?from=yesterday", 200, None),
            ("doctor", "/provider/schedule?from=2099-01-01", 200, None),
            ("doctor", "/provider/schedule?from=2020-01-01", 200, None),
        ],
        "provider.availability": [
            *[(who, "/provider/availability", 200, None) for who in (*providers, "newcomer")],
            ("doctor", "/provider/availability", 200, "availability-windows"),
        ],
        "provider.availability_edit_form": [
            ("doctor", f"/provider/availability/windows/{s.windows[world.doc1]}/edit", 200, None),
            (
                "lab",
                f"/provider/availability/windows/{s.windows[world.lab_provider]}/edit",
                200,
                "availability-windows",
            ),
        ],
        "provider.bank": [(who, "/provider/bank", 200, None) for who in (*providers, "newcomer")],
        "provider.cancel_booking": [
            ("doctor", f"/provider/bookings/{i.online}/cancel", 200, None),
            ("doctor", f"/provider/bookings/{i.team}/cancel", 200, None),
            ("doctor", f"/provider/bookings/{i.started}/cancel", 200, None),  # refused
            ("lab", f"/provider/bookings/{i.lab}/cancel", 200, None),
            ("lab", f"/provider/bookings/{i.lab_later}/cancel", 200, None),  # today
        ],
        "provider.earnings": [
            (who, "/provider/earnings", 200, None) for who in (*providers, "newcomer")
        ],
        "provider.tds_quarters": [
            *[(who, "/provider/earnings/tds", 200, None) for who in (*providers, "newcomer")],
            ("doctor", "/provider/earnings/tds?fy=2026-27", 200, None),
            ("lab", "/provider/earnings/tds?fy=1999-00", 200, None),  # not theirs: told so
            # A NUL in the address: the portal's 400 page, in Hindi (it was werkzeug's).
            ("doctor", "/provider/earnings/tds?fy=%00", 400, None),
        ],
        "provider.tds_quarters_csv": [
            (who, "/provider/earnings/tds.csv?fy=2026-27", 200, None) for who in providers
        ],
    }


def _data(app, s):
    """What the state put on the pages that is not words to translate: names, numbers,
    addresses, ids; and what people typed."""
    from portal.accounts.models import User
    from portal.booking.credit_notes import CreditNote
    from portal.booking.models import MasterBooking, Reschedule
    from portal.payments.models import Payment

    with app.app_context():
        visits = db.session.scalars(sa.select(MasterBooking)).all()
        numbers = {n for visit in visits for n in (visit.number, visit.invoice_no) if n}
        numbers |= set(db.session.scalars(sa.select(CreditNote.number)))
        fees = sa.select(Reschedule.document_no).where(Reschedule.document_no.is_not(None))
        numbers |= set(db.session.scalars(fees))  # a fee's own tax document (RF/…)
        payments = db.session.scalars(
            sa.select(Payment.razorpay_payment_id).where(Payment.razorpay_payment_id.is_not(None))
        )
        emails = db.session.scalars(sa.select(User.email))
        people = db.session.scalars(sa.select(User.name))
        return (
            WORLD_DATA
            | numbers
            | set(payments)
            | set(emails)
            | set(people)
            | {VIDEO, MEET, LEAVE_REASON, DOCTOR_CANCEL_REASON, "SAVE10", "upi", "card"}
            | {"Asha Rao", "5678", "194J"}  # the bank account's holder and digits, a section
            | {LAB_PAN_MASKED, CLINIC_TAN}
        )


def _clients(app, client, s):
    """One sign-in each, all reading Hindi (the footer's switch)."""
    clients = {
        "visitor": client,
        "patient": s.patient,
        "doctor": sign_in(app, s.world.provider_user),
        "lab": sign_in(app, SimpleNamespace(email=s.lab_user.email)),
        "newcomer": sign_in(app, s.newcomer),
    }
    for who, browser in clients.items():
        answer = browser.post("/language", data={"language": "hi", "next": "/"})
        assert answer.status_code == 303, who
    return clients


def test_every_page_in_hindi_has_no_english_left(state, app, client):
    routes, urls = _routes(app), _urls(state)
    unknown = set(routes) - set(urls) - set(NOT_WALKED)
    assert not unknown, f"GET routes the walk does not open (add them to _urls): {unknown}"
    assert set(urls) <= set(routes), f"not routes (any more): {set(urls) - set(routes)}"
    clients = _clients(app, client, state)
    data = _data(app, state)
    with time_machine.travel(READ, tick=True):
        wrong, left = _walk(urls, clients, data)
    english = [f"{where}: {found}" for where, found in left.items()]
    assert wrong + english == [], "\n".join(wrong + english)


def _walk(urls, clients, data):
    """(answers not as expected, {where: the English left on the page})."""
    wrong, left = [], {}
    for endpoint, visits in sorted(urls.items()):
        for who, url, status, target in visits:
            headers = {**HX, "HX-Target": target} if target else {}
            # buffered: a streamed answer (a CSV) ends here, inside its request
            answer = clients[who].get(url, headers=headers, buffered=True)
            where = f"{who} {url}" + (f" #{target}" if target else "")
            if answer.status_code != status:
                wrong.append(f"{where}: {answer.status_code}, not {status}")
                continue
            if endpoint in NOT_HTML:
                continue
            if status in (302, 303):  # what the browser shows: the page it lands on
                answer = clients[who].get(answer.location)
                where += f" → {answer.request.path}"
                if answer.status_code != 200:
                    wrong.append(f"{where}: {answer.status_code}, not 200")
                    continue
            html = answer.get_data(as_text=True)
            if not target and 'lang="hi-IN"' not in html and endpoint != "notifications.bell":
                wrong.append(f"{where}: not a Hindi page")
            if not any(map(_DEVANAGARI.search, texts(html))):
                wrong.append(f"{where}: no Hindi word in it")
            found = untranslated(html, data=data)
            if found:
                left[where] = found
    return wrong, left


# --- what they are sent ------------------------------------------------------------------

# RazorpayX's own reason for a failed payout, shown as it sent it (docs/i18n.md).
BANK_REASON = "Beneficiary bank offline"
# Notice kinds the patient, the doctor and the lab are sent in this state, each of which
# must be there (so a kind that stopped being sent, or was renamed, is noticed).
TOLD = {
    "booking.confirmed", "booking.new", "booking.cancelled", "booking.rescheduled",
    "booking.meet_link", "booking.reschedule_failed", "booking.reschedule_fee_unapplied",
    "payment.link_new", "payment.link_expired", "payment.link_lapsed", "refund.processed",
    "refund.approved", "payout.processed", "payout.failed", "payout.reversed",
    "bank.validation_failed", "payout.penalty", "payout.held", "payout.released",
}  # fmt: skip
_PAID = re.compile(r"भुगतान: ₹[\d,.]*\d \(इनवॉइस [^)]+\)(.)")
_URL = re.compile(r"https?://\S+")
_ICS_TEXT = re.compile(r"^(SUMMARY|DESCRIPTION|LOCATION):(.*)$", re.M)


def _tell_the_rest(app, world, s):
    """The notices the state's own steps did not send, through their jobs: a move that
    failed, a fee that moved nothing (both kinds), a payment link issued, expired (renewed
    or not) and lapsed, refunds processed, an approved further refund, a late payment kept
    in the wallet, payouts paid, failed and reversed, a bank account refused, a meeting
    link withdrawn."""
    from portal.accounts.models import User
    from portal.booking import visits as booking_visits
    from portal.booking.links import create_payment_link
    from portal.booking.models import ATTENTION_LATE_PAYMENT, Reschedule
    from portal.booking.reschedule_payment import MSG_SLOT_GONE
    from portal.notify import link_notices, payout_notices, refund_notices, tasks
    from portal.payouts import fund_accounts
    from portal.payouts import models as m
    from portal.refunds.models import Refund

    with app.app_context():
        resched = db.session.get(Reschedule, s.reschedule)
        resched.failure_reason = MSG_SLOT_GONE
        tasks.reschedule_failed(resched.id)
        tasks.reschedule_fee_unapplied(resched.id, "pay_more", resched.total + 100)
        tasks.reschedule_fee_unapplied(resched.id, "pay_late", resched.total)
        link = create_payment_link(db.session.get(User, world.admin.id), s.visits.held)
        link_notices.link_issued(s.visits.held, link.id)
        link_notices.link_expired(s.visits.held, link.id, renewed=True)
        link_notices.link_expired(s.visits.held, link.id + 1000, renewed=False)
        link_notices.link_lapsed(s.visits.held, link.id)
        for refund in db.session.scalars(sa.select(Refund)):
            refund_notices.refund_processed(refund.id)
        refund_notices.refund_approved(s.items.follow, 5_000)
        tasks.payment_attention(s.visits.carded, ATTENTION_LATE_PAYMENT)
        for payout in db.session.scalars(sa.select(m.Payout)):
            payout.utr = "UTR123456789"
            payout.failure_reason = BANK_REASON
            for status in ("PROCESSED", "FAILED", "REVERSED"):
                payout_notices.payout_moved(payout.id, status, 1, retried=status == "FAILED")
            # Held by the clinic and released (each next step), and a failure told while
            # held; the payout as it was afterwards.
            for step in ("retry_on_release", "send_on_release"):
                payout_notices.payout_hold_changed(payout.id, True, step, step)
                payout_notices.payout_hold_changed(payout.id, False, step, step)
            was = payout.status, payout.returned
            payout.status, payout.returned, payout.held = "FAILED", False, True
            payout_notices.payout_moved(payout.id, "FAILED", 2, retried=True)
            payout.status = "QUEUED"  # a hold RazorpayX overtook, the payout on its way
            payout_notices.payout_hold_changed(payout.id, False, None, "overtaken")
            (payout.status, payout.returned), payout.held = was, False
        # A new account refused while it is the lab's current one (only then is it told);
        # afterwards the account before it is current again, so later pages read as before.
        paid_to = db.session.scalars(
            sa.select(m.FundAccount).where(
                m.FundAccount.provider_id == world.lab_provider, m.FundAccount.current.is_(True)
            )
        ).all()
        for account in paid_to:
            account.current = False
        db.session.flush()
        refused = m.FundAccount(
            provider_id=world.lab_provider,
            kind=m.BANK_ACCOUNT,
            holder_name="City Lab",
            ifsc="HDFC0001234",
            account_last4="4321",
            status="FAILED",
            status_reason=fund_accounts.MSG_NOT_ACTIVE,
            current=True,
        )
        db.session.add(refused)
        db.session.flush()
        payout_notices.fund_account_failed(refused.id)
        refused.current = False
        db.session.flush()
        for account in paid_to:
            account.current = True
        db.session.flush()
        doctor = db.session.get(User, world.provider_user.id)
        booking_visits.set_meet_link(doctor, s.items.online, "")
        db.session.commit()


def _english(text, data):
    """English left in a plain text (its addresses are not words)."""
    return untranslated(f"<p>{html.escape(_URL.sub('', text))}</p>", data=data)


def test_every_notice_mail_and_sms_they_are_sent_is_hindi(state, app):
    """Patients and doctors read Hindi: each notice, mail (its text, its page and the
    calendar file's words) and text message they were sent, of every kind they get."""
    from portal.notify.models import Delivery, MailMessage, Notification

    world = state.world
    _tell_the_rest(app, world, state)
    people = {world.patient.id, world.provider_user.id, state.lab_user.id}
    # The account named by its bank's letters and last digits ("HDFC ••••5678").
    data = _data(app, state) | {BANK_REASON, "UTR123456789", "HDFC"}
    with app.app_context():
        emails = [u.email for u in (world.patient, world.provider_user, state.lab_user)]
        notices = db.session.scalars(
            sa.select(Notification).where(Notification.user_id.in_(people))
        ).all()
        mails = db.session.scalars(sa.select(MailMessage).where(MailMessage.to.in_(emails))).all()
        texts = db.session.scalars(
            sa.select(Delivery.text).where(Delivery.user_id.in_(people), Delivery.text.is_not(None))
        ).all()
        kinds = {n.kind for n in notices}
        said = [("notice", t) for n in notices for t in (n.title, n.body)]
        said += [("mail", t) for mail in mails for t in (mail.subject, mail.text)]
        said += [("text message", t) for t in texts]
        said += [
            ("calendar file", line.replace("\\n", " ").replace("\\,", ","))
            for mail in mails
            for a in mail.attachments or []
            for _field, line in _ICS_TEXT.findall(a["content"].replace("\r\n ", ""))
        ]
        pages = [("mail page", mail.html) for mail in mails if mail.html]
    assert kinds >= TOLD, f"not sent: {TOLD - kinds}"
    # The confirmation mail's "Paid … (invoice …)" ended with the English full stop, put
    # after the translated words.
    paid = [m for _what, t in said + pages for m in _PAID.findall(t)]
    assert paid and set(paid) == {"।"}, paid
    left = [(what, text) for what, text in said if _english(text, data)]
    left += [(what, found) for what, page in pages if (found := untranslated(page, data=data))]
    assert left == [], "\n".join(map(str, left))
