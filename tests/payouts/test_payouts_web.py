"""The provider's schedule, earnings and bank pages, and the admin payouts screen."""

import re
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from portal.db import utcnow
from portal.domain.states import PayoutStatus
from portal.extensions import db
from portal.payouts import models as m
from portal.payouts import runs
from tests.payouts.conftest import payable, payouts_of
from tests.plugin import PASSWORD

# On file: these payouts deduct 194J's 10% (without one, section 206AA's 20%).
PAN = "ABCPK1234L"

HX = {"HX-Request": "true"}


def _login_user(client, login, user):
    client.post("/auth/logout")
    login(user)


def test_schedule_start_and_complete_with_htmx(world, x, client, login):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    booking = world.booking(provider, fee=100_000)
    db.session.commit()
    login(user)
    page = client.get("/provider/schedule")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'id="booking-{booking.id}"' in html and ">Start<" in html
    assert "style=" not in html and "<script>" not in html

    answer = client.post(f"/provider/schedule/{booking.id}/start", headers=HX)
    assert answer.status_code == 200
    row = answer.get_data(as_text=True)
    assert row.strip().startswith("<tr") and ">Complete<" in row and "<html" not in row
    answer = client.post(f"/provider/schedule/{booking.id}/complete")  # plain request
    assert answer.status_code == 303 and answer.location.endswith("/provider/schedule")
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.status == PayoutStatus.PROCESSED
    # Completing again is refused with a message, the row swapped with 422.
    again = client.post(f"/provider/schedule/{booking.id}/complete", headers=HX)
    assert again.status_code == 422 and "cannot be completed" in again.get_data(as_text=True)


def test_an_appointment_across_midnight_stays_on_the_schedule_after_midnight(world, client, login):
    """At 00:05 in India the doctor still sees (and can start) the 23:50 to 00:20 appointment:
    the schedule began at India's midnight, so from midnight to 00:20 it was gone (the CI
    run at 00:01 IST found it). One that ended before midnight, unstarted, is the admins'
    no-show decision and is not listed."""
    from zoneinfo import ZoneInfo

    import time_machine

    midnight = datetime(2026, 12, 6, tzinfo=ZoneInfo("Asia/Kolkata"))
    with time_machine.travel(midnight + timedelta(minutes=5), tick=True):
        provider, user = world.provider()
        across = world.booking(provider, start=midnight - timedelta(minutes=10))
        ended = world.booking(provider, start=midnight - timedelta(minutes=35))
        login(user)
        html = client.get("/provider/schedule").get_data(as_text=True)
        row = html.split(f'id="booking-{across.id}"')[1].split("</tr>")[0]
        assert ">Start<" in row and "23:50" in row
        assert f'id="booking-{ended.id}"' not in html
        answer = client.post(f"/provider/schedule/{across.id}/start", headers=HX)
        assert answer.status_code == 200 and ">Complete<" in answer.get_data(as_text=True)


def test_a_flagged_started_booking_stays_on_the_schedule_and_completes(world, client, login):
    """A booking left STARTED and flagged for an admin (notify.flag_not_completed) is still
    on the provider's schedule with its Complete button; completing it posts the earning
    and closes the flag."""
    from portal.booking.attention import AttentionFlag
    from portal.notify import sweeps
    from portal.payouts import completion

    provider, user = world.provider()
    booking = world.booking(provider, fee=100_000, start=utcnow() - timedelta(hours=3))
    completion.start_booking(user, booking.id)
    assert sweeps.flag_not_completed() == 1
    db.session.commit()
    login(user)
    html = client.get("/provider/schedule").get_data(as_text=True)
    row = _row(html, booking)
    assert 'data-status="STARTED"' in row and ">Complete<" in row
    answer = client.post(f"/provider/schedule/{booking.id}/complete", headers=HX)
    assert answer.status_code == 200 and 'data-status="COMPLETED"' in answer.get_data(as_text=True)
    db.session.expire_all()
    assert payable(provider.id) == 95_000
    flag = db.session.scalars(sa.select(AttentionFlag)).one()
    assert flag.resolved_at is not None and flag.resolved_by_id == user.id


def test_schedule_status_is_the_label_in_its_coloured_badge(world, client, login):
    """As on every other page (`status_label`, `status_badge`), not lower-case text in a
    plain badge (review finding)."""
    provider, user = world.provider()
    booking = world.booking(provider)
    db.session.commit()
    login(user)
    html = client.get("/provider/schedule").get_data(as_text=True)
    row = html.split(f'id="booking-{booking.id}"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge ok" data-status="CONFIRMED">Confirmed</span>' in row


LINK = "https://meet.google.com/abc-defg-hij"


def _online(booking):
    booking.service.mode = "ONLINE"
    db.session.commit()
    return booking


def _row(html, booking):
    return html.split(f'id="booking-{booking.id}"', 1)[1].split("</tr>", 1)[0]


def test_schedule_shows_the_meeting_link_or_that_it_is_missing(world, client, login):
    """docs/booking.md: the provider adds an online appointment's link before the start;
    the schedule shows it (to join the call) or that it is missing (review finding: it
    showed neither, and the provider had no way to add one)."""
    provider, user = world.provider()
    with_link = _online(world.booking(provider))
    with_link.meet_link = LINK
    missing = _online(world.booking(provider))
    done = _online(world.booking(provider, status="COMPLETED"))
    at_clinic = world.booking(provider)  # each booking has a service of its own
    db.session.commit()
    login(user)
    html = client.get("/provider/schedule").get_data(as_text=True)
    row = _row(html, with_link)
    assert f'<a href="{LINK}" rel="noopener noreferrer" target="_blank">' in row
    assert "Meeting link missing" not in row and 'name="meet_link"' in row
    row = _row(html, missing)
    assert '<span class="badge warn">Meeting link missing</span>' in row
    assert f'hx-post="/provider/schedule/{missing.id}/meet-link"' in row
    assert 'name="meet_link"' not in _row(html, done)  # a finished one's link is its record
    assert "Meeting link" not in _row(html, at_clinic) and "meet_link" not in _row(html, at_clinic)


def test_provider_sets_the_meeting_link_from_the_schedule(world, client, login):
    from portal.audit.models import AuditEntry
    from portal.booking.models import IndividualBooking

    provider, user = world.provider()
    booking = _online(world.booking(provider))
    url = f"/provider/schedule/{booking.id}/meet-link"
    login(user)
    refused = client.post(url, data={"meet_link": "http://zoom.us/j/1"}, headers=HX)
    assert refused.status_code == 422
    row = refused.get_data(as_text=True)
    assert row.strip().startswith("<tr") and "<html" not in row
    assert 'value="http://zoom.us/j/1"' in row  # kept for correcting, the message beside it
    assert re.search(r'name="meet_link"[^>]*>\s*<p class="error"[^>]*>Meeting links', row)
    empty = client.post(url, data={"meet_link": ""}, headers=HX)
    assert empty.status_code == 422 and "Enter the meeting link." in empty.get_data(as_text=True)
    assert db.session.get(IndividualBooking, booking.id).meet_link is None

    saved = client.post(url, data={"meet_link": LINK}, headers=HX)
    assert saved.status_code == 200
    row = saved.get_data(as_text=True)
    assert f'<a href="{LINK}"' in row and "Meeting link saved." in row
    db.session.expire_all()
    assert db.session.get(IndividualBooking, booking.id).meet_link == LINK
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "booking.meet_link")
    ).one()
    assert entry.actor_id == user.id
    plain = client.post(url, data={"meet_link": LINK})  # without htmx: back to the page
    assert plain.status_code == 303 and plain.location.endswith("/provider/schedule")

    world.complete(booking, user)
    db.session.commit()
    late = client.post(url, data={"meet_link": "https://zoom.us/j/2"}, headers=HX)
    assert late.status_code == 422
    assert "can no longer be changed" in late.get_data(as_text=True)


def test_meeting_link_of_another_providers_booking_is_not_found(world, client, login):
    provider, _user = world.provider()
    _other, other_user = world.provider()
    booking = _online(world.booking(provider))
    login(other_user)
    answer = client.post(f"/provider/schedule/{booking.id}/meet-link", data={"meet_link": LINK})
    assert answer.status_code == 404
    assert (
        client.post("/provider/schedule/999999/meet-link", data={"meet_link": LINK}).status_code
        == 404
    )


def test_meeting_link_form_and_its_messages_in_hindi(app, make_user, client, login):
    """The badge, the form and every refusal in the doctor's language. No app context is
    held while pages render (Flask-Babel keeps the locale on it), as in tests/i18n."""
    from tests.i18n.untranslated import untranslated
    from tests.payouts.conftest import World

    with app.app_context():
        world = World(app, make_user)
        provider, user = world.provider()
        booking = _online(world.booking(provider))
        booking_id, email = booking.id, user.email
        data = {booking.service.name, booking.visit.for_name, booking.clinic.name, LINK}
        db.session.remove()
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    client.post("/language", data={"language": "hi", "next": "/"})
    page = client.get("/provider/schedule").get_data(as_text=True)
    assert 'lang="hi' in page
    row = page.split(f'id="booking-{booking_id}"', 1)[1].split("</tr>", 1)[0]
    assert 'class="badge warn"' in row and untranslated(row, data=data) == []
    url = f"/provider/schedule/{booking_id}/meet-link"
    domains = "zoom.us, meet.google.com, teams.microsoft.com"
    for sent in ("", "http://zoom.us/j/1", "https://evil.example/j/1"):
        refused = client.post(url, data={"meet_link": sent}, headers=HX)
        assert refused.status_code == 422
        row = refused.get_data(as_text=True)
        assert (
            'class="error"' in row and untranslated(row, data=data | {sent, domains, "https"}) == []
        )
    saved = client.post(url, data={"meet_link": LINK}, headers=HX)
    assert saved.status_code == 200 and untranslated(saved.get_data(as_text=True), data=data) == []


def test_other_providers_booking_is_not_found(world, client, login):
    provider, _user = world.provider()
    _other, other_user = world.provider()
    booking = world.booking(provider)
    db.session.commit()
    login(other_user)
    assert client.post(f"/provider/schedule/{booking.id}/start").status_code == 404
    assert f"booking-{booking.id}" not in client.get("/provider/schedule").get_data(as_text=True)


def test_earnings_dashboard(world, x, client, login):
    provider, user = world.ready_provider("WEEKLY", commission_bps=500)
    world.earn(provider, user, 100_000)
    world.penalty(provider, 25_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    world.earn(provider, user, 20_000)  # ₹190 left: below the minimum
    db.session.commit()
    login(user)
    page = client.get("/provider/earnings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "₹190" in html
    assert "Minimum payout threshold not met. Required: ₹500, Available: ₹190" in html
    assert "₹700" in html  # the payout: ₹950 − ₹250 penalty
    assert 'data-status="PROCESSED"' in html
    assert "−₹250" in html  # the penalty
    assert "<svg" in html and len(re.findall(r"<rect ", html)) == 12
    assert "style=" not in html and "<script>" not in html.split("</head>")[1]
    assert "TDS 20" in html and "194J" in html


def test_the_tds_card_names_the_policys_section(app, world, x, client, login):
    """The earnings page's TDS card said "deducted (section 194J)" typed into the template,
    whatever the policy's section for the year (review finding; POLICY.md: "Rate,
    threshold and section are settings, kept per financial year")."""
    import dataclasses

    from portal.domain.policy import DEFAULT_POLICY

    provider, user = world.ready_provider("WEEKLY", commission_bps=500)
    db.session.commit()
    rules = tuple(dataclasses.replace(r, section="194JB") for r in DEFAULT_POLICY.tds_rules)
    saved = app.config.get("POLICY")
    app.config["POLICY"] = DEFAULT_POLICY.with_changes(tds_rules=rules)
    try:
        login(user)
        html = client.get("/provider/earnings").get_data(as_text=True)
    finally:
        app.config["POLICY"] = saved
    assert "deducted (section 194JB)" in html and "194J)" not in html


def test_a_team_earning_row_shows_the_providers_own_fee_share(world, client, login):
    """A team's fee is split in equal shares, each earning its share less the provider's
    commission: the row showed the whole fee (₹1,000.01) beside an earning of ₹316.67
    (review finding). The odd paisa goes to the lowest provider id."""
    a, ua = world.provider(commission_bps=500)
    b, _ub = world.provider(commission_bps=500)
    c, uc = world.provider(commission_bps=500)
    booking = world.booking([a, b, c], fee=100_001)
    world.complete(booking, ua)
    db.session.commit()
    for user, cells in ((ua, ["₹333.34", "₹316.67"]), (uc, ["₹333.33", "₹316.66"])):
        login(user)
        html = client.get("/provider/earnings").get_data(as_text=True)
        section = html.split('id="earnings"', 1)[1].split("</section>", 1)[0]
        assert re.findall(r'<td[^>]* class="num">([^<]*)</td>', section) == cells


def test_a_balance_below_zero_reads_with_the_minus_sign(world, x, client, login):
    """A penalty before any earnings leaves the payable at −₹250: written with "−"
    (U+2212) as every amount taken off is, not an ASCII hyphen (review finding)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=500)
    world.penalty(provider, 25_000)
    db.session.commit()
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert "−₹250" in html and "-₹" not in html


def test_earnings_page_states_the_commission_as_every_page_does(app, make_user, client):
    """12.5% as the admin's pages say it (``rates.percent_text``), not "12.50%", in
    English and Hindi (the rate is a parameter of the translated sentence). No app context
    is held while pages render (Flask-Babel keeps the locale on it)."""
    from tests.payouts.conftest import World

    with app.app_context():
        provider, user = World(app, make_user).provider("WEEKLY", commission_bps=1_250)
        email = user.email
        db.session.commit()
        db.session.remove()
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert "less 12.5% commission" in html
    client.post("/language", data={"language": "hi", "next": "/"})
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert 'lang="hi' in html and "12.5% कमीशन" in html


def test_earnings_page_says_why_a_few_paise_are_not_paid(world, x, client, login):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.penalty(provider, 99_950)
    world.earn(provider, user, 100_000)  # 50 paise left: under RazorpayX's ₹1
    x.settle()
    assert payouts_of(provider.id) == []
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert "₹0.50 is below the smallest payout (₹1); it carries forward." in html


def test_earnings_page_says_why_a_payable_tds_leaves_under_a_rupee_is_not_paid(
    mid_year, world, x, client, login
):
    # mid_year: the two earnings in one financial year, whenever the suite runs.
    provider, user = world.ready_provider("INSTANT", commission_bps=0, pan=PAN)
    world.earn(provider, user, 4_999_900)  # ₹49,999: paid, just under the TDS threshold
    x.settle()
    world.earn(provider, user, 555_600)  # crosses: TDS 10% of ₹55,555 = ₹5,555.50
    x.settle()
    assert len(payouts_of(provider.id)) == 1 and payable(provider.id) == 555_600
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert (
        "After TDS of ₹5,555.50, ₹0.50 of ₹5,556 is left: below the smallest payout (₹1), "
        "so it carries forward."
    ) in html


def test_the_earnings_page_and_the_run_give_one_reason_for_a_carried_instant_balance(
    world, x, client, login
):
    """Why an INSTANT balance is carried is one rule (``create.next_payout``), read by the
    payout (the run's skip reason) and the earnings page. The page had a copy of it that
    judged the payable before TDS where the payout judged the net: 99 paise in a year over
    the TDS threshold (TDS 10 paise) were "₹0.89 is below …" on the run page and "₹0.99 is
    below …" on the earnings page. The page's words are unchanged."""
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    world.earn(provider, user, 5_000_100)  # ₹50,001: paid, the year over the TDS threshold
    x.settle()
    world.penalty(provider, 100_000 - 99)
    world.earn(provider, user, 100_000)  # 99 paise left, TDS on it 10 paise
    x.settle()
    assert payable(provider.id) == 99 and len(payouts_of(provider.id)) == 1
    run = runs.run_cycle("INSTANT", date(2026, 11, 2))
    assert run.carried_forward == 1
    assert run.skipped[0]["reason"] == (
        "₹0.99 is below the smallest payout RazorpayX makes (₹1); it carries forward."
    )
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    assert "₹0.99 is below the smallest payout (₹1); it carries forward." in html


def test_bank_page_validates_and_saves(world, x, client, login):
    provider, user = world.provider()
    db.session.commit()
    login(user)
    assert "No account yet" in client.get("/provider/bank").get_data(as_text=True)
    bad = client.post(
        "/provider/bank",
        data={
            "kind": "bank_account",
            "holder_name": "Asha Rao",
            "ifsc": "HDFC1001234",
            "account_number": "12345",
            "confirm_account_number": "12345",
        },
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "Enter a valid IFSC" in text and "9 to 18 digits" in text
    good = client.post(
        "/provider/bank",
        data={
            "kind": "bank_account",
            "holder_name": "Asha Rao",
            "ifsc": "HDFC0001234",
            "account_number": "50100012345678",
            "confirm_account_number": "50100012345678",
        },
    )
    assert good.status_code == 303
    page = client.get("/provider/bank").get_data(as_text=True)
    assert "HDFC0001234 ••••5678" in page and 'data-status="PENDING"' in page
    assert "50100012345678" not in page
    x.settle()
    assert 'data-status="VALIDATED"' in client.get("/provider/bank").get_data(as_text=True)


def test_earlier_bank_accounts_are_dated_in_clinic_time(world, x, client, login):
    """An account added at 00:30 in India read as the day before (UTC): review finding."""
    from datetime import UTC, datetime

    provider, user = world.provider()
    db.session.commit()
    login(user)
    for number in ("50100012345678", "50100087654321"):
        form = {"kind": "bank_account", "holder_name": "Asha Rao", "ifsc": "HDFC0001234"}
        form |= {"account_number": number, "confirm_account_number": number}
        assert client.post("/provider/bank", data=form).status_code == 303
    earlier = db.session.scalar(
        sa.select(m.FundAccount).where(
            m.FundAccount.provider_id == provider.id, m.FundAccount.current.is_(False)
        )
    )
    earlier.created_at = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)  # 00:30 on the 6th in India
    db.session.commit()
    page = client.get("/provider/bank").get_data(as_text=True)
    assert "06 Dec 2026" in page.split("Earlier accounts", 1)[1]


def test_admin_payouts_screen_hold_and_retry(world, x, client, login, make_user, immediate_retries):
    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.returned
    admin = make_user("admin")
    login(admin)
    answer = client.get("/admin/payouts?status=GIVEN_UP")
    assert answer.status_code == 200
    assert f'id="payout-{payout.id}"' in answer.get_data(as_text=True)
    assert client.get("/admin/payouts").status_code == 200
    assert f'id="payout-{payout.id}"' not in client.get("/admin/payouts?status=PROCESSED").get_data(
        as_text=True
    )
    detail = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    assert "Beneficiary bank is down" in detail and detail.count("<code>") == 3
    short = client.post(f"/admin/payouts/{payout.id}/retry", data={"reason": "again"})
    assert short.status_code == 422
    x.sandbox.set_faults(payout_outcome="processed")
    done = client.post(
        f"/admin/payouts/{payout.id}/retry", data={"reason": "Bank confirmed it is back up"}
    )
    assert done.status_code == 303
    x.settle()
    assert [p.status for p in payouts_of(provider.id)] == [
        PayoutStatus.FAILED,
        PayoutStatus.PROCESSED,
    ]
    assert payable(provider.id) == 0
    accounts = client.get("/admin/payouts/accounts").get_data(as_text=True)
    assert provider.display_name in accounts and 'data-status="VALIDATED"' in accounts
    refused = client.post(
        f"/admin/payouts/{payout.id}/hold", data={"reason": "Too late to hold this one"}
    )
    assert refused.status_code == 422 and "Only a queued or failed" in refused.get_data(
        as_text=True
    )
    assert f'formaction="/admin/payouts/{payout.id}/hold"' not in refused.get_data(as_text=True)


def test_a_held_failed_payout_offers_release_only_and_refuses_a_retry(
    world, x, client, login, make_user
):
    """The page offers what ``admin.actions`` allows and the posts refuse the rest: a held
    payout is not sent, so Retry is neither shown nor done (it lifted the hold before)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(payout_outcome="failed")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()  # failed once, waiting for its retry
    (payout,) = payouts_of(provider.id)
    login(make_user("admin"))
    page = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    for action in ("hold", "retry"):
        assert f'formaction="/admin/payouts/{payout.id}/{action}"' in page
    assert f'formaction="/admin/payouts/{payout.id}/release"' not in page
    reason = {"reason": "Provider asked to check the account"}
    assert client.post(f"/admin/payouts/{payout.id}/hold", data=reason).status_code == 303
    page = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    assert f'formaction="/admin/payouts/{payout.id}/release"' in page
    for action in ("hold", "retry"):
        assert f'formaction="/admin/payouts/{payout.id}/{action}"' not in page
    refused = client.post(f"/admin/payouts/{payout.id}/retry", data=reason)
    assert refused.status_code == 422 and "Release the hold first" in refused.get_data(as_text=True)
    db.session.expire_all()
    (payout,) = payouts_of(provider.id)
    assert payout.held and payout.attempts == 1 and len(x.payouts()) == 1


def test_a_hold_reason_as_long_as_the_form_allows_is_stored_and_shown_whole(
    world, x, client, login, make_user
):
    """The hold form takes up to 2,000 characters; the payout row cut the reason to 255
    (the audit row kept it whole), so the payout's page showed half a sentence."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    x.sandbox.set_faults(payout_outcome="failed")
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()  # failed once, waiting for its retry: it can be held
    (payout,) = payouts_of(provider.id)
    login(make_user("admin"))
    words = "Provider disputes the account number; wait for their letter. "
    reason = (words * 40)[:1990] + "END-OF-IT"
    assert len(reason) == 1999
    held = client.post(f"/admin/payouts/{payout.id}/hold", data={"reason": reason})
    assert held.status_code == 303
    db.session.expire_all()
    (payout,) = payouts_of(provider.id)
    assert payout.held and payout.hold_reason == reason.strip()
    page = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    held_row = re.search(r"<th>Held</th><td>(.*?)</td>", page, re.S)
    assert held_row and held_row.group(1).strip() == reason.strip()
    too_long = client.post(f"/admin/payouts/{payout.id}/release", data={"reason": "x" * 2001})
    assert too_long.status_code == 422 and "at most 2000 characters" in too_long.get_data(
        as_text=True
    )


def test_admin_marks_an_attempt_razorpayx_never_made_as_failed(world, x, client, login, make_user):
    import time_machine

    from portal.db import utcnow
    from portal.domain.states import PayoutAttemptStatus
    from tests.payouts.test_engine import _refused_for_good

    provider, payout = _refused_for_good(world, x)
    login(make_user("admin"))
    url = f"/admin/payouts/{payout.id}"
    button = f'formaction="{url}/mark-failed"'
    assert button not in client.get(url).get_data(as_text=True)  # within a day: no button
    early = client.post(f"{url}/mark-failed", data={"reason": "Fund account deleted"})
    assert early.status_code == 422 and "less than 24 hours ago" in early.get_data(as_text=True)
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):
        page = client.get(url).get_data(as_text=True)
        assert button in page and "Mark as failed (not made at RazorpayX)" in page
        short = client.post(f"{url}/mark-failed", data={"reason": "deleted"})
        assert short.status_code == 422
        done = client.post(f"{url}/mark-failed", data={"reason": "Fund account deleted"})
        assert done.status_code == 303
        db.session.expire_all()
        (payout,) = payouts_of(provider.id)
        assert payout.attempt_rows[0].status == PayoutAttemptStatus.FAILED
        assert payout.status == PayoutStatus.FAILED
        page = client.get(url).get_data(as_text=True)
        assert button not in page and f'formaction="{url}/retry"' in page


def test_admin_runs_a_cycle(world, x, client, login, make_user):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    db.session.commit()
    login(make_user("admin"))
    answer = client.post("/admin/payouts/runs", data={"schedule": "WEEKLY"})
    assert answer.status_code == 303
    run_page = client.get(answer.location).get_data(as_text=True)
    assert "1 payouts" in run_page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(m.Payout)) == 1


def test_run_now_while_that_run_is_being_worked_says_so(world, x, client, login, make_user):
    """A second click while the first's run is still being worked (another runner holds
    it) flashed "0 payouts, 0 carried forward" (a fixing engineer's note): it says the
    run is being worked on."""
    from datetime import timedelta

    import time_machine

    from portal.db import utcnow

    login(make_user("admin"))
    with time_machine.travel(utcnow(), tick=False):
        now = utcnow()
        day = runs.ist_today()
        db.session.add(
            m.PayoutRun(
                key=runs.run_key("WEEKLY", day, now),
                schedule="WEEKLY",
                period_end=day,
                status="OPEN",
                skipped=[],
                claimed_by="another-runner",
                claimed_until=now + timedelta(minutes=10),
            )
        )
        db.session.commit()
        answer = client.post("/admin/payouts/runs", data={"schedule": "WEEKLY"})
    page = client.get(answer.location).get_data(as_text=True)
    assert "is being worked on already" in page
    assert "0 payouts, 0 carried forward." not in page


def test_pay_now_asks_first_stating_the_amount(world, x, client, login, make_user):
    """Issue #16: "Pay now" paid on one click. It leads to a page stating the amount; the
    payout is made only for the amount confirmed, and a balance that moved is asked again."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    db.session.commit()
    login(make_user("admin"))
    accounts = client.get("/admin/payouts/accounts").get_data(as_text=True)
    url = f"/admin/payouts/providers/{provider.id}/pay"
    assert f'href="{url}"' in accounts
    ask = client.get(url).get_data(as_text=True)
    assert "Yes, pay ₹1,000" in ask and 'name="confirmed_amount" value="100000"' in ask
    assert client.post(url).status_code == 422
    moved = client.post(url, data={"confirmed_amount": "90000"})
    assert moved.status_code == 422 and "now ₹1,000" in moved.get_data(as_text=True)
    assert payouts_of(provider.id) == []
    assert client.post(url, data={"confirmed_amount": "100000"}).status_code == 303
    assert len(payouts_of(provider.id)) == 1


def test_pay_now_confirmation_hides_the_tds_so_the_bank_gets_less_than_yes_pay_said(
    world, x, client, login, make_user
):
    """A provider's payable is ₹60,000, above the ₹50,000 TDS threshold of the year. The
    confirmation said "Yes, pay ₹60,000" and nothing else in figures ("TDS is deducted
    where due"); the payout sent ₹54,000 (₹6,000 TDS): the admin confirmed a sum that was
    not what left (review finding). The page states the payable, the TDS and the net, the
    button names the net, and the net confirmed is the net sent (another is refused)."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0, pan=PAN)
    world.earn(provider, user, 6_000_000)
    db.session.commit()
    login(make_user("admin"))
    url = f"/admin/payouts/providers/{provider.id}/pay"
    ask = client.get(url).get_data(as_text=True)
    assert "Yes, pay ₹54,000" in ask and "Yes, pay ₹60,000" not in ask
    assert "₹6,000" in ask and "194J" in ask and "₹60,000" in ask
    assert 'name="confirmed_net" value="5400000"' in ask
    moved = client.post(url, data={"confirmed_amount": "6000000", "confirmed_net": "6000000"})
    assert moved.status_code == 422 and "₹54,000" in moved.get_data(as_text=True)
    assert payouts_of(provider.id) == []
    done = client.post(url, data={"confirmed_amount": "6000000", "confirmed_net": "5400000"})
    assert done.status_code == 303
    (payout,) = payouts_of(provider.id)
    assert (payout.gross, payout.tds, payout.net) == (6_000_000, 600_000, 5_400_000)


def test_pay_now_with_a_blank_net_is_not_a_500(world, x, client, login, make_user):
    """The net confirmed is ``Optional()``: a space stopped its validation (its Regexp never
    ran) and ``net_paise`` then called int(" "), a ValueError, a 500 (review of the admin
    back office). A blank net is a net not sent (a page from before it): not checked, as
    the edit forms' ``version``; the amount confirmed still is."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    world.earn(provider, user, 100_000)
    db.session.commit()
    login(make_user("admin"))
    url = f"/admin/payouts/providers/{provider.id}/pay"
    moved = client.post(url, data={"confirmed_amount": "90000", "confirmed_net": " "})
    assert moved.status_code == 422 and payouts_of(provider.id) == []
    done = client.post(url, data={"confirmed_amount": "100000", "confirmed_net": "\t"})
    assert done.status_code == 303 and len(payouts_of(provider.id)) == 1


def test_every_rupee_of_the_payable_traces_to_its_source(world, x, client, login):
    """Issue #16: the earnings page showed a payable balance with nothing explaining it.
    The statement lists every movement with the balance after it; the newest balance is
    the payable, and the movements add up to it."""
    provider, user = world.ready_provider("WEEKLY", commission_bps=500)
    world.earn(provider, user, 100_000)
    world.penalty(provider, 25_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    world.earn(provider, user, 20_000)
    db.session.commit()
    login(user)
    html = client.get("/provider/earnings").get_data(as_text=True)
    section = html.split('id="statement"')[1].split("</section>")[0]
    rows = re.findall(r'<tr class="statement-line">(.*?)</tr>', section, re.S)
    whats = [re.search(r'data-label="What">([^<]+)<', r).group(1) for r in rows]
    assert whats == ["Earning", "Payout", "Cancellation penalty", "Earning"]
    assert " for " in rows[0] and "fee less commission" in rows[0]  # names the appointment
    assert "Payout #" in rows[1]
    balances = [re.findall(r'data-label="Balance" class="num">([^<]+)<', r)[0] for r in rows]
    assert balances[0] == "₹190" and balances[-1] == "₹950"
    assert payable(provider.id) == 19_000


def test_a_catch_up_tds_is_explained_and_the_history_reads_in_rupees(
    mid_year, world, x, client, make_user
):
    """Review finding: a payout deducting ₹5,627.50 TDS on ₹6,650 had no word that it is the
    year's catch-up once the threshold is crossed (POLICY.md, docs/payouts.md), and its
    history printed raw paise ("gross: 665000")."""
    # mid_year: the two payouts in one financial year, whenever the suite runs.
    provider, user = world.ready_provider("INSTANT", commission_bps=0, pan=PAN)
    world.earn(provider, user, 45_000_00)
    x.settle()
    world.earn(provider, user, 10_000_00)
    x.settle()
    first, second = payouts_of(provider.id)
    assert (first.tds, second.gross, second.tds) == (0, 10_000_00, 5_500_00)
    client.post("/auth/logout")
    login_as = make_user("admin")
    from tests.conftest import PASSWORD

    client.post("/auth/login", data={"email": login_as.email, "password": PASSWORD})
    html = client.get(f"/admin/payouts/{second.id}").get_data(as_text=True)
    assert "catch-up" in html and "over the ₹50,000 threshold" in html
    assert "1000000" not in html and "550000" not in html
    assert "₹10,000" in html.split("<h2>History</h2>")[1]
    plain = client.get(f"/admin/payouts/{first.id}").get_data(as_text=True)
    assert "catch-up" not in plain


def test_admin_pages_show_no_retry_for_a_payout_that_will_not_retry(
    world, x, client, login, make_user, immediate_retries
):
    """Review claim: the admin's payout pages wrote "retry {{ p.attempts + 1 }}" for any
    failed payout. They read ``status.next_step``: a payout given up (the money back on
    the payable) says no retry, and no "Next retry" time, on the list or its page."""
    import re

    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    x.sandbox.set_faults(payout_outcome="failed")
    world.earn(provider, user, 100_000)
    x.settle()
    (payout,) = payouts_of(provider.id)
    assert payout.returned and payout.attempts == 3
    login(make_user("admin"))
    listing = client.get("/admin/payouts").get_data(as_text=True)
    row = listing.split(f'id="payout-{payout.id}"')[1].split("</tr>")[0]
    detail = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    for page in (row, detail):
        assert not re.search(r"retry \d", page), page
    assert "Next retry" not in detail and "returned to payable" in row


def test_paging_the_statement_keeps_the_payouts_place_and_back(world, x, client, login):
    """Review finding (as on the reconciliation screen): the earnings page's statement and
    payouts page apart, but each pager was built with its own cursors alone, so paging the
    statement put the payouts back to their first page, and the other way round."""

    from tests.pagers import assert_each_pager_keeps_the_others_place

    provider, user = world.ready_provider("INSTANT", commission_bps=0)
    for fee in (100_000, 120_000):  # two earnings, each paid out at once
        world.earn(provider, user, fee)
        x.settle()
    db.session.commit()
    assert len(payouts_of(provider.id)) == 2
    login(user)
    base = {"per_page": "1", "statement_per_page": "1"}
    assert_each_pager_keeps_the_others_place(client, "/provider/earnings", base, ("statement_", ""))
