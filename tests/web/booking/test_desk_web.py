"""The operations desk's pages: bad filters answered with messages, the filters kept in
the URL, the admin visit page (start and complete, meeting links, resolving a flag with a
note, reschedule / rebook / cancel / refunds from any item), the payments monitor."""

import re
from datetime import timedelta

import time_machine

from portal.audit.models import AuditEntry
from portal.booking import lifecycle, links
from portal.booking.attention import AttentionFlag
from portal.booking.models import (
    ATTENTION_LINK_EXPIRED,
    ATTENTION_LINK_EXPIRY_FAILED,
    IndividualBooking,
    MasterBooking,
)
from portal.config import policy
from portal.db import unit_of_work
from portal.domain.pricing import price_item
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.payments.models import Payment
from portal.web.forms.booking import parse_start
from tests.booking.factories import quoted_checkout, quoted_desk_payment
from tests.refunds.helpers import quoted_admin_cancel
from tests.web.booking.helpers import credit_wallet, hold, hx, online_service, slot

CALLBACK = "http://portal.test/visits/callback"


def _paid(app, world, hh=10):
    visit_id, item_id = hold(app, world, start=slot(world.day, hh))
    with app.app_context():
        quoted_desk_payment(db.session.get(type(world.admin), world.admin.id), visit_id, f"R-{hh}")
    return visit_id, item_id


def _item(app, item_id):
    with app.app_context():
        return db.session.get(IndividualBooking, item_id)


# --- bad input -----------------------------------------------------------------------------


def test_impossible_dates_and_unknown_providers_get_clear_messages(app, client, login, world):
    hold(app, world)
    login(world.admin)
    backwards = client.get("/admin/visits?date_from=2026-05-10&date_to=2026-05-01")
    text = backwards.get_data(as_text=True)
    assert backwards.status_code == 422 and "The end date is before the start date." in text
    assert '<tr id="visit-' not in text and "correct the filters" in text
    unknown = client.get("/admin/visits?provider=999999", headers=hx("results"))
    text = unknown.get_data(as_text=True)
    assert unknown.status_code == 422 and "Unknown provider" in text and "<html" not in text
    assert "Not a valid date" in client.get("/admin/visits?date_from=2026-02-30").get_data(
        as_text=True
    )
    too_long = client.get("/admin/visits?date_from=2024-01-01&date_to=2026-01-01")
    assert too_long.status_code == 422 and "at most 366 days" in too_long.get_data(as_text=True)
    assert client.get("/admin/visits?clinic=abc").status_code == 422
    assert client.get("/admin/visits?payment=LOST").status_code == 422


def test_filters_stay_in_the_url_and_on_the_form(app, client, login, world):
    hold(app, world)
    login(world.admin)
    day = world.day.isoformat()
    page = client.get(f"/admin/visits?provider={world.doc1}&date_from={day}&date_to={day}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "1 visit" in html
    assert f'<option selected value="{world.doc1}">' in html or (
        f'value="{world.doc1}" selected' in html
    )
    assert 'hx-push-url="true"' in html and f'value="{day}"' in html
    other = client.get(f"/admin/visits?provider={world.doc2}").get_data(as_text=True)
    assert "No visits found" in other
    preset = client.get("/admin/visits?preset=last7").get_data(as_text=True)
    assert "No visits found" in preset  # the appointment is days ahead


# --- the visit page --------------------------------------------------------------------------


def test_admin_starts_and_completes_an_appointment(app, client, login, world):
    visit_id, item_id = _paid(app, world)
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert 'data-next="COMPLETE"' in page and "/start" in page and "Book another" in page
    assert f"/admin/bookings/{item_id}/cancel" in page  # confirmed: it may be cancelled
    early = client.post(f"/admin/visits/{visit_id}/items/{item_id}/start", data={})
    assert early.status_code == 303 and _item(app, item_id).status == "CONFIRMED"
    assert "start" in client.get(early.location).get_data(as_text=True).lower()
    with time_machine.travel(slot(world.day, 10, 5), tick=True):
        login(world.admin)
        started = client.post(f"/admin/visits/{visit_id}/items/{item_id}/start", data={})
        assert started.status_code == 303 and _item(app, item_id).status == "STARTED"
        started_page = client.get(started.location).get_data(as_text=True)
        assert "/complete" in started_page
        # Started: the cancellation rules refuse it, so the page offers no Cancel.
        assert f'/admin/bookings/{item_id}/cancel"' not in started_page
        done = client.post(f"/admin/visits/{visit_id}/items/{item_id}/complete", data={})
        assert done.status_code == 303 and _item(app, item_id).status == "COMPLETED"
    login(world.admin)
    assert client.post(f"/admin/visits/{visit_id}/items/999999/start", data={}).status_code == 404


def test_a_started_appointment_never_completed_is_shown_until_completed(app, client, login, world):
    """Started at 10:05, still STARTED at 12:31 (end 10:30 + 2 h): the sweep flags it and
    every page that shows a no-show shows it (visit page with a resolve form by the
    appointment, the attention list and filter, the home count); completing it from the
    visit page still works and clears it."""
    from portal.notify import sweeps
    from portal.payouts import completion

    visit_id, item_id = _paid(app, world)
    with time_machine.travel(slot(world.day, 10, 5), tick=False), app.app_context():
        completion.start_booking(db.session.get(type(world.admin), world.admin.id), item_id)
    with time_machine.travel(slot(world.day, 12, 31), tick=True):
        with app.app_context():
            assert sweeps.flag_not_completed() == 1
            [flag_id] = db.session.scalars(
                db.select(AttentionFlag.id).where(AttentionFlag.booking_id == item_id)
            ).all()
        login(world.admin)
        page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
        assert 'data-attention="NOT_COMPLETED"' in page and "Not completed" in page
        assert f'href="#item-{item_id}"' in page
        resolve = f"/admin/visits/{visit_id}/attention/{flag_id}/resolve"
        assert f'action="{resolve}"' in page
        listed = client.get("/admin/visits?attention=yes").get_data(as_text=True)
        assert f'id="visit-{visit_id}"' in listed and 'data-attention="NOT_COMPLETED"' in listed
        home = client.get("/admin/").get_data(as_text=True)
        assert '<p class="stat">1</p>' in home and f'/admin/visits/{visit_id}"' in home
        refused = client.post(resolve, data={"note": " "})  # the page again, why beside it
        assert refused.status_code == 422 and "Write a note" in refused.get_data(as_text=True)
        done = client.post(f"/admin/visits/{visit_id}/items/{item_id}/complete", data={})
        assert done.status_code == 303 and _item(app, item_id).status == "COMPLETED"
        page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
        assert "data-attention=" not in page
        listed = client.get("/admin/visits?attention=yes").get_data(as_text=True)
        assert "No visits found" in listed
        assert '<p class="stat">0</p>' in client.get("/admin/").get_data(as_text=True)


def test_admin_sets_and_changes_a_meeting_link_validated_as_policy_says(app, client, login, world):
    service_id = online_service(app, world)
    visit_id, item_id = hold(app, world, service=service_id, start=slot(world.day, 14))
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert "Meeting link missing" in page and "Set meeting link" in page
    url = f"/admin/visits/{visit_id}/items/{item_id}/meet-link"
    # A refused link is the visit page again (422), the typed link kept in the field and
    # why beside it: it was a flash and a 303 back, and the operator typed it again.
    for bad, why in (
        ("http://meet.google.com/abc", "Meeting links must use https"),
        ("https://zoom.us.evil.com/j/1", "Meeting links must be on"),
        ("", "Enter the meeting link."),  # the doctor's form (one for both): its message
    ):
        answer = client.post(url, data={"meet_link": bad})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 422 and _item(app, item_id).meet_link is None
        assert "<html" in page and 'class="flash flash-error"' not in page
        assert re.search(
            rf'id="meet-{item_id}" name="meet_link"[^>]*value="{re.escape(bad)}"'
            rf'[^>]*aria-invalid="true">\s*<p class="error" role="alert">{why}',
            page,
        ), page
    # htmx (the admin's forms are boosted): only the form, swapped where it is.
    boosted = client.post(url, data={"meet_link": "http://zoom.us/j/1"}, headers=hx(boosted=True))
    form = boosted.get_data(as_text=True)
    assert boosted.status_code == 422 and "<html" not in form and "Visit total" not in form
    assert boosted.headers["HX-Retarget"] == f"#meet-link-{item_id}"
    assert boosted.headers["HX-Push-Url"] == "false"
    assert re.search(
        r'value="http://zoom.us/j/1"[^>]*>\s*<p class="error" role="alert">Meeting links must use',
        form,
    )
    assert f'action="/admin/visits/{visit_id}/items/{item_id}/meet-link"' in form
    client.post(url, data={"meet_link": "https://meet.google.com/abc-defg-hij"})
    assert _item(app, item_id).meet_link == "https://meet.google.com/abc-defg-hij"
    client.post(url, data={"meet_link": "https://us02web.zoom.us/j/123"})
    assert _item(app, item_id).meet_link == "https://us02web.zoom.us/j/123"
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert "Change meeting link" in page and "https://us02web.zoom.us/j/123" in page
    with app.app_context():
        changes = db.session.scalars(
            db.select(AuditEntry)
            .where(AuditEntry.action == "booking.meet_link")
            .order_by(AuditEntry.id)
        ).all()
        assert [c.after["meet_link"] for c in changes][-2:] == [
            "https://meet.google.com/abc-defg-hij",
            "https://us02web.zoom.us/j/123",
        ]
    # An appointment no longer live has no form left: the refusal is said where it was.
    with app.app_context(), unit_of_work():
        lifecycle.expire(lifecycle.lock_visit(visit_id), reason="hold ended")
    late = client.post(url, data={"meet_link": "https://zoom.us/j/2"}, headers=hx(boosted=True))
    said = late.get_data(as_text=True)
    assert late.status_code == 422 and 'name="meet_link"' not in said
    assert re.search(
        r'<p class="error" role="alert">[^<]*meeting link can no longer be changed', said
    )
    assert _item(app, item_id).meet_link == "https://us02web.zoom.us/j/123"


def test_a_visit_paid_from_the_wallet_needs_no_payment(app, client, login, world):
    """Review finding (the demo's V000074, paid ₹1,694.40 from the wallet, Confirmed): the
    visit page and the list said "Next action: Take payment": the rule read only the
    visit's non-wallet payments, and it has none (portal.booking.desk.current_payment)."""
    visit_id, _ = hold(app, world)
    credit_wallet(app, world.patient.id, 200_000)
    with app.app_context():
        visit = db.session.get(MasterBooking, visit_id)
        quoted_checkout(visit.patient, visit_id, visit.subtotal, callback_url=CALLBACK)
        number = visit.number
        db.session.remove()
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert "Confirmed" in page and 'data-next="COMPLETE"' in page
    assert "Take payment" not in page, "a confirmed, wallet-paid visit asks for a payment"
    listing = client.get(f"/admin/visits?q={number}").get_data(as_text=True)
    assert number in listing and 'data-next="COMPLETE"' in listing
    assert "Take payment" not in listing


def test_a_flag_is_resolved_from_the_page_with_a_note(app, client, login, world):
    visit_id, _ = hold(app, world)
    with app.app_context(), unit_of_work():
        lifecycle.needs_attention(db.session.get(MasterBooking, visit_id), ATTENTION_LINK_EXPIRED)
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert 'data-attention="LINK_EXPIRED"' in page and "Resolve" in page
    listed = client.get("/admin/visits?attention=yes").get_data(as_text=True)
    assert f'id="visit-{visit_id}"' in listed and 'class="attention-row"' in listed
    url = f"/admin/visits/{visit_id}/attention/resolve"
    empty = client.post(url, data={"note": "  "})  # the page again, why beside the note
    assert empty.status_code == 422 and "Write a note" in empty.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).attention == ATTENTION_LINK_EXPIRED
    client.post(url, data={"note": "Patient will pay at the desk"})
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).attention is None
        entry = db.session.scalar(
            db.select(AuditEntry).where(AuditEntry.action == "attention.resolve")
        )
        assert entry.after["note"] == "Patient will pay at the desk"
    assert "No visits found" in client.get("/admin/visits?attention=yes").get_data(as_text=True)
    assert (
        client.post("/admin/visits/999999/attention/resolve", data={"note": "x"}).status_code == 404
    )


def test_a_link_expiry_that_gave_up_says_what_to_do_next(app, client, login, world):
    """The flag the link expiry job's give-up raises (``links._give_up``) says on the page
    what happened and the admin's next step."""
    visit_id, _ = hold(app, world)
    with app.app_context(), unit_of_work():
        visit = db.session.get(MasterBooking, visit_id)
        lifecycle.needs_attention(visit, ATTENTION_LINK_EXPIRY_FAILED)
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert 'data-attention="LINK_EXPIRY_FAILED"' in page and "Link expiry failed" in page
    assert 'data-next-step="rebook"' in page and 'href="/admin/jobs"' in page
    listed = client.get("/admin/visits?attention=yes").get_data(as_text=True)
    assert f'id="visit-{visit_id}"' in listed


def test_resolving_the_flag_shown_clears_a_different_flag_raised_meanwhile(
    app, client, login, world
):
    """The admin's visit page shows "Payment failed"; the admin writes a note and resolves
    it. Meanwhile the patient's card payment arrived after the hold ended and went to the
    wallet: the flag became LATE_PAYMENT_TO_WALLET (money parked, the visit unpaid). The
    resolve cleared that flag, which nobody saw: the form did not say which flag it
    resolved (review finding). It posts the flag shown; another one now is refused (422),
    the page shown again with the flag as it is, the note kept and why beside it."""
    from portal.booking.models import ATTENTION_LATE_PAYMENT, ATTENTION_PAYMENT_FAILED

    visit_id, _ = hold(app, world)

    def flag(reason):
        with app.app_context(), unit_of_work():
            lifecycle.needs_attention(lifecycle.lock_visit(visit_id), reason)

    flag(ATTENTION_PAYMENT_FAILED)
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert f'data-attention="{ATTENTION_PAYMENT_FAILED}"' in page
    shown = re.search(r'name="kind" value="([A-Z_]+)"', page).group(1)
    assert shown == ATTENTION_PAYMENT_FAILED

    flag(ATTENTION_LATE_PAYMENT)  # the late capture, handled by the webhook job
    note = "Spoke to the patient; they will retry the card tomorrow."
    url = f"/admin/visits/{visit_id}/attention/resolve"
    refused = client.post(url, data={"note": note, "kind": shown})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert f'data-attention="{ATTENTION_LATE_PAYMENT}"' in html and note in html
    assert "changed since the page was shown" in html
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).attention == ATTENTION_LATE_PAYMENT
    # Over htmx (the page's forms are boosted) only the attention section is answered.
    part = client.post(url, data={"note": note, "kind": shown}, headers=hx(boosted=True))
    assert part.status_code == 422 and "<html" not in part.get_data(as_text=True)
    assert part.headers["HX-Retarget"] == "#attention-box"
    # The flag as it is now, resolved knowingly.
    done = client.post(
        url, data={"note": "Refund the wallet money", "kind": ATTENTION_LATE_PAYMENT}
    )
    assert done.status_code == 303
    with app.app_context():
        assert db.session.get(MasterBooking, visit_id).attention is None


def test_cancelled_items_still_reach_rebook_and_refunds(app, client, login, world):
    visit_id, item_id = _paid(app, world)
    with app.app_context():
        admin = db.session.get(type(world.admin), world.admin.id)
        quoted_admin_cancel(admin, item_id, "Clinic closed", mode="clinic")
    login(world.admin)
    page = client.get(f"/admin/visits/{visit_id}").get_data(as_text=True)
    assert f"/admin/bookings/{item_id}/cancel#further-refund" in page
    assert f"/admin/bookings/{item_id}/rebook" in page
    assert f"/admin/bookings/{item_id}/reschedule" not in page  # nothing left to move
    # Rebook: the same service and provider at a new free time, in a new visit.
    rebook = client.get(f"/admin/bookings/{item_id}/rebook?day={world.day.isoformat()}")
    html = rebook.get_data(as_text=True)
    assert rebook.status_code == 200 and "Book again" in html
    free = _slots(html)
    assert free
    none = client.post(f"/admin/bookings/{item_id}/rebook", data={"slot": ""})
    assert none.status_code == 422 and "Choose a new time" in none.get_data(as_text=True)
    done = client.post(f"/admin/bookings/{item_id}/rebook", data={"slot": free[0]})
    assert done.status_code == 303
    with app.app_context():
        new = db.session.scalars(
            db.select(IndividualBooking).order_by(IndividualBooking.id.desc())
        ).first()
        assert new.id != item_id and new.master_id != visit_id
        assert new.start_at == parse_start(free[0]) and new.service_id == world.consult
    assert done.location.endswith(f"/admin/visits/{new.master_id}")


def test_payments_monitor_lists_pending_and_failed_oldest_first(app, client, login, world, gateway):
    first, _ = hold(app, world, start=slot(world.day, 10))
    second, _ = hold(app, world, patient=world.other, start=slot(world.day, 11))
    with app.app_context():
        admin = db.session.get(type(world.admin), world.admin.id)
        links.create_payment_link(admin, first)
        links.create_payment_link(admin, second)
    login(world.admin)
    html = client.get("/admin/payments").get_data(as_text=True)
    with app.app_context():
        p1 = db.session.get(MasterBooking, first).pending_payment.id
        p2 = db.session.get(MasterBooking, second).pending_payment.id
    assert html.index(f'id="payment-{p1}"') < html.index(f'id="payment-{p2}"')
    assert html.count('data-next="WAITING"') == 2 and "of 5" in html
    assert "No failed or pending" in client.get("/admin/payments?status=FAILED").get_data(
        as_text=True
    )
    with time_machine.travel(slot(world.day, 9) - timedelta(minutes=1), tick=False):
        login(world.admin)
        late = client.get("/admin/payments").get_data(as_text=True)
    assert 'data-next="RENEW_LINK"' in late and "Expired" in late
    # A link that ended and could not be renewed (the visit expired and was flagged, as
    # booking.links does then): the monitor keeps it until someone deals with the flag.
    with app.app_context(), unit_of_work():
        visit = lifecycle.lock_visit(first)
        lifecycle.needs_attention(visit, ATTENTION_LINK_EXPIRED)
        lifecycle.expire(visit, reason="payment link expired")
    with app.app_context():
        assert db.session.get(Payment, p1).status == "EXPIRED"
    login(world.admin)  # (the session above was made in the future)
    expired = client.get("/admin/payments?status=EXPIRED").get_data(as_text=True)
    assert f'id="payment-{p1}"' in expired and 'data-next="RENEW_LINK"' in expired
    client.post(
        f"/admin/visits/{first}/attention/resolve", data={"note": "Called; will pay at the desk"}
    )
    expired = client.get("/admin/payments?status=EXPIRED").get_data(as_text=True)
    assert f'id="payment-{p1}"' not in expired
    assert "/auth/login" in _anonymous(app).get("/admin/payments").location


def _anonymous(app):
    return app.test_client()


def test_only_admins_reach_the_desk_actions(app, client, login, world):
    visit_id, item_id = _paid(app, world)
    login(world.patient)
    assert client.get("/admin/payments").status_code == 403
    assert (
        client.post(f"/admin/visits/{visit_id}/items/{item_id}/start", data={}).status_code == 403
    )


# --- create on behalf ----------------------------------------------------------------------

SLOT_VALUE = re.compile(r'name="slot"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="slot"')


def _slots(html):
    return [a or b for a, b in SLOT_VALUE.findall(html)]


def test_on_behalf_lists_only_providers_offering_the_service_their_free_times_and_price(
    app, client, login, world
):
    login(world.admin)
    base = f"/admin/visits/new/{world.patient.id}"
    lab = client.get(f"{base}?service={world.lab}&clinic={world.clinic}").get_data(as_text=True)
    assert "City Lab" in lab and "Dr Asha Rao" not in lab and "Dr Vikram Shah" not in lab
    assert "Platform fee" in lab and "Choose a service, a clinic and a provider" in lab
    consult = client.get(
        f"{base}?service={world.consult}&clinic={world.clinic}&providers={world.doc1}"
        f"&day={world.day.isoformat()}",
        headers=hx("picker"),
    )
    html = consult.get_data(as_text=True)
    assert consult.status_code == 200 and "<html" not in html and 'id="picker"' in html
    assert "City Lab" not in html and "Dr Asha Rao" in html
    with app.app_context():
        price = price_item(50_000, False, policy())
    assert f'data-price="{price.total}"' in html and format_inr(price.gst) in html
    free = _slots(html)
    assert free and all(s.endswith("+00:00") for s in free)
    # A time someone else holds is not offered.
    hold(app, world, patient=world.other, start=parse_start(free[0]))
    again = _slots(
        client.get(
            f"{base}?service={world.consult}&clinic={world.clinic}&providers={world.doc1}"
            f"&day={world.day.isoformat()}"
        ).get_data(as_text=True)
    )
    assert free[0] not in again and free[1] in again
    created = client.post(
        base,
        data={
            "person": "self",
            "service": world.consult,
            "clinic": world.clinic,
            "providers": [world.doc1],
            "slot": free[1],
            "referral": "",
            "meet_link": "",
        },
    )
    assert created.status_code == 303, created.get_data(as_text=True)[:3000]
    with app.app_context():
        item = db.session.scalars(
            db.select(IndividualBooking).order_by(IndividualBooking.id.desc())
        ).first()
        assert item.start_at == parse_start(free[1]) and item.visit.channel == "DESK"
    bad = client.post(
        base,
        data={
            "person": "self",
            "service": world.consult,
            "clinic": world.clinic,
            "providers": [world.doc1],
            "slot": "not-a-time",
        },
    )
    assert bad.status_code == 422 and "choose again" in bad.get_data(as_text=True)


def test_a_child_added_on_the_spot_is_chosen_for_the_new_visit(app, client, login, world):
    login(world.admin)
    base = f"/admin/visits/new/{world.patient.id}"
    missing = client.post(f"{base}/child", data={"name": "", "relationship": "child"})
    assert missing.status_code == 422 and "Enter their name" in missing.get_data(as_text=True)
    added = client.post(
        f"{base}/child",
        data={"name": "Meera", "relationship": "child", "date_of_birth": "2020-02-02"},
    )
    assert added.status_code == 303 and "person=dependent" in added.location
    page = client.get(added.location).get_data(as_text=True)
    assert "Meera" in page and "Meera added" in page
    with app.app_context():
        from portal.accounts.models import Dependent

        child = db.session.scalar(db.select(Dependent).where(Dependent.name == "Meera"))
        assert child.guardian_id == world.patient.id
    assert re.search(
        rf'<option selected value="dependent:{child.id}"|value="dependent:{child.id}" selected',
        page,
    )


def test_a_time_on_find_a_doctor_is_booked_at_the_desk_for_the_patient_chosen(
    app, client, login, world
):
    """The find page's times link to the patient's book page for everyone: an admin is
    sent to the desk's new visit with the time carried to the patient's picker."""
    from urllib.parse import parse_qs, urlsplit

    start = slot(world.day, 11)
    login(world.admin)
    answer = client.get(
        "/me/book",
        query_string={
            "provider": world.doc1,
            "service": world.consult,
            "clinic": world.clinic,
            "start": start.isoformat(),
        },
    )
    assert answer.status_code == 303
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/admin/visits/new"
    carried = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert carried == {
        "service": str(world.consult),
        "clinic": str(world.clinic),
        "providers": str(world.doc1),
        "day": world.day.isoformat(),
        "slot": start.isoformat(),
    }
    search = client.get(f"/admin/visits/new?{target.query}&q=Priya").get_data(as_text=True)
    assert "Choose the patient to book this time for." in search
    link = re.search(rf'href="(/admin/visits/new/{world.patient.id}\?[^"]+)"', search).group(1)
    picker = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    chosen = re.search(rf'<input[^>]*value="{re.escape(start.isoformat())}"[^>]*>', picker)
    assert chosen and " checked" in chosen.group(0)
    created = client.post(
        f"/admin/visits/new/{world.patient.id}",
        data={
            "person": "self",
            "service": world.consult,
            "clinic": world.clinic,
            "providers": [world.doc1],
            "slot": start.isoformat(),
            "referral": "",
            "meet_link": "",
        },
    )
    assert created.status_code == 303
    with app.app_context():
        item = db.session.scalars(
            db.select(IndividualBooking).order_by(IndividualBooking.id.desc())
        ).first()
        assert item.start_at == start and item.visit.channel == "DESK"


def test_a_provider_following_a_find_page_time_is_told_who_books(client, login, world):
    login(world.provider_user)
    answer = client.get(
        f"/me/book?provider={world.doc1}&service={world.consult}&clinic={world.clinic}"
        f"&start={slot(world.day, 11).isoformat()}"
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/find")
    page = client.get("/find").get_data(as_text=True)
    assert "Only patients book from Find a doctor." in page
    # The rest of the patient pages stay forbidden to them.
    assert client.get("/me/visits").status_code == 403


def test_this_month_covers_the_whole_month_ahead_too():
    """Review finding (session 26): the appointments list's "This month" ended today, so an
    operator asking for this month's appointments saw none of those still ahead in it (the
    list is mostly of appointments ahead). Now the month's first day to its last."""
    from datetime import date

    from portal.web.forms.operations import preset_range

    assert preset_range("month", date(2026, 6, 10)) == (date(2026, 6, 1), date(2026, 6, 30))
    assert preset_range("month", date(2028, 2, 29)) == (date(2028, 2, 1), date(2028, 2, 29))
    assert preset_range("month", date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))


def test_a_child_added_twice_at_the_desk_is_one_child_chosen_again(app, client, login, world):
    """Review rev-input: a double click on "Add child" made two identical children."""
    from portal.accounts.models import Dependent

    login(world.admin)
    base = f"/admin/visits/new/{world.patient.id}"
    data = {"name": "Diya Sharma", "relationship": "child", "date_of_birth": "2018-04-01"}
    first = client.post(f"{base}/child", data=data)
    second = client.post(f"{base}/child", data=dict(data, name="diya  sharma"))
    assert first.status_code == 303 and second.status_code == 303
    assert second.location == first.location  # the same child chosen for the visit
    page = client.get(second.location).get_data(as_text=True)
    assert "Diya Sharma (born 1 Apr 2018) is already on" in page
    with app.app_context():
        children = db.session.scalars(
            db.select(Dependent).where(Dependent.guardian_id == world.patient.id)
        ).all()
        assert [c.name for c in children].count("Diya Sharma") == 1
    digits = client.post(f"{base}/child", data=dict(data, name="12.5"))
    assert digits.status_code == 422
    assert "Enter a name in letters, not only numbers or a date." in digits.get_data(as_text=True)
