"""Whether a move still holds (``reschedule.move_holds``), as a plain function: the notice
of a move is sent only while the booking is confirmed at the time the move put it."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from portal.booking.reschedule import move_holds
from portal.domain.states import BookingStatus

B = datetime(2026, 7, 15, 5, 30, tzinfo=UTC)  # the move's new start
ELSEWHERE = B + timedelta(days=2)


def _item(start=B, status=BookingStatus.CONFIRMED):
    return SimpleNamespace(id=7, start_at=start, status=status)


def _move(new_start=B, booking_id=7):
    return SimpleNamespace(booking_id=booking_id, new_start=new_start)


def test_a_confirmed_booking_at_the_moves_time_holds():
    assert move_holds(_item(), _move()) is True


def test_a_move_superseded_by_one_to_another_time_no_longer_holds():
    assert move_holds(_item(start=ELSEWHERE), _move()) is False


def test_a_booking_no_longer_confirmed_holds_no_move():
    for status in (BookingStatus.CANCELLED, BookingStatus.STARTED, BookingStatus.COMPLETED):
        assert move_holds(_item(status=status), _move()) is False
        assert move_holds(_item(status=status), None) is False


def test_without_the_moves_row_the_bookings_time_is_the_moves():
    # A job queued before moves were keyed (no reschedule id), or a row of another booking.
    assert move_holds(_item(start=ELSEWHERE), None) is True
    assert move_holds(_item(start=ELSEWHERE), _move(booking_id=8)) is True
