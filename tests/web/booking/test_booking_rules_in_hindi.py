"""The booking rules' own words on the patient's book page in Hindi, and at the desk in
English.

A Hindi reader opens a time from the day's free times and posts the hold a little late (the
time is now inside the minimum notice), or posts a crafted start outside the clinic's
hours: the refusal is shown on the book page (422) in Hindi, as the weekend and horizon
ones are (review finding: ``domain.slots.check_slot`` built these two as plain f-strings,
in no catalogue, so ``t`` could not translate them). The admin's desk (English only) says
them as POLICY.md words them."""

from datetime import timedelta

import time_machine

from tests.web.booking.helpers import IST, slot


def _hold_form(world, start):
    return {
        "provider": world.doc1,
        "service": world.consult,
        "clinic": world.clinic,
        "start": start.isoformat(),
        "person": "self",
        "referral": "",
    }


def _desk_form(world, start):
    local = start.astimezone(IST)  # the desk types the clinic's local date and time
    return {
        "service": world.consult,
        "providers": [world.doc1],
        "clinic": world.clinic,
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "person": "self",
        "referral": "",
        "meet_link": "",
    }


def _in_hindi(client, login, world):
    login(world.patient)
    client.post("/language", data={"language": "hi", "next": "/me/"})


def test_the_minimum_notice_refusal_is_in_hindi_on_a_hindi_book_page(app, client, login, world):
    start = slot(world.day, 10)
    _in_hindi(client, login, world)
    # 30 minutes before the time (the notice is 60): the patient was slow to confirm.
    with time_machine.travel(start - timedelta(minutes=30), tick=False):
        answer = client.post("/me/book", data=_hold_form(world, start))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Appointments must be booked at least" not in html, "English refusal on a Hindi page"
    assert "अपॉइंटमेंट कम से कम 60 मिनट पहले बुक करना ज़रूरी है" in html


def test_the_opening_hours_refusal_is_in_hindi_on_a_hindi_book_page(app, client, login, world):
    _in_hindi(client, login, world)
    answer = client.post("/me/book", data=_hold_form(world, slot(world.day, 8, 30)))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Appointments only available" not in html, "English refusal on a Hindi page"
    assert "अपॉइंटमेंट केवल 9 AM - 6 PM के बीच उपलब्ध हैं" in html


def test_the_desk_says_both_refusals_as_the_policy_words_them(app, client, login, world):
    login(world.admin)
    url = f"/admin/visits/new/{world.patient.id}"
    early = client.post(url, data=_desk_form(world, slot(world.day, 8, 30)))
    assert early.status_code == 422
    assert "Appointments only available 9 AM - 6 PM" in early.get_data(as_text=True)
    start = slot(world.day, 10)
    with time_machine.travel(start - timedelta(minutes=30), tick=False):
        late = client.post(url, data=_desk_form(world, start))
    assert late.status_code == 422
    assert "Appointments must be booked at least 60 minutes ahead" in late.get_data(as_text=True)
