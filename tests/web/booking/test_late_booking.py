"""Issue #16: a slot less than 24 h away was booked without a word that, once paid, it
cannot be cancelled or moved online. The book page and the visit page now say so."""

from datetime import timedelta

import time_machine

from portal.domain.cancellation import late_booking_notice
from tests.web.booking.helpers import book_url, hold, slot


def test_the_rule():
    assert late_booking_notice(timedelta(hours=23, minutes=59))
    assert late_booking_notice(timedelta(hours=24)) is not None  # 24 h: refused (<= 24)
    assert late_booking_notice(timedelta(hours=24, minutes=1)) is None
    assert late_booking_notice(timedelta(days=5)) is None


def test_a_slot_tomorrow_morning_warns_before_paying(app, client, login, world):
    start = slot(world.day, 10)
    login(world.patient)
    far = client.get(book_url(world, start=start)).get_data(as_text=True)
    assert 'id="late-notice"' not in far
    with time_machine.travel(start - timedelta(hours=20), tick=False):
        near = client.get(book_url(world, start=start)).get_data(as_text=True)
        assert 'id="late-notice"' in near
        assert "cannot be cancelled or moved online" in near
        visit_id, item_id = hold(app, world, start=start)
        page = client.get(f"/me/visits/{visit_id}").get_data(as_text=True)
        assert f'id="late-notice-{item_id}"' in page
