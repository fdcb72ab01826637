"""Complete is refused before the appointment's start (review finding: at 08:20 a 09:20
appointment was started, then completed, its earning posted at once and an INSTANT payout
begun). Start early stays allowed, from an hour before."""

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.booking.errors import BookingError
from portal.db import utcnow
from portal.domain.rates import INDIA_TZ
from portal.extensions import db
from portal.ledger.models import LedgerTransaction
from portal.outbox import OutboxItem
from portal.payouts import completion
from tests.payouts.conftest import payable
from tests.plugin import PASSWORD


def _nine_twenty(world, provider):
    start = datetime(2026, 12, 7, 9, 20, tzinfo=INDIA_TZ)
    return world.booking(provider, fee=100_000, start=start), start


def _earnings_posted(booking):
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(LedgerTransaction)
        .where(LedgerTransaction.idempotency_key == f"complete:{booking.id}")
    )


@pytest.mark.parametrize("who", ["provider", "admin"])
def test_complete_is_refused_before_the_start_and_accepted_from_it(world, make_user, who):
    provider, user = world.provider("INSTANT")
    actor = user if who == "provider" else make_user("admin")
    booking, start = _nine_twenty(world, provider)
    early = start - timedelta(hours=1)  # 08:20
    completion.start_booking(actor, booking.id, now=early)
    db.session.commit()
    with pytest.raises(BookingError) as refused:
        completion.complete_booking(actor, booking.id, now=early)
    assert str(refused.value.message) == "You can mark it complete from 09:20, when it starts."
    db.session.rollback()
    booking = db.session.get(type(booking), booking.id)
    assert booking.status == "STARTED" and _earnings_posted(booking) == 0
    assert payable(provider.id) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxItem)) == 0

    completion.complete_booking(actor, booking.id, now=start)
    assert db.session.get(type(booking), booking.id).status == "COMPLETED"
    assert _earnings_posted(booking) == 1


def test_the_schedule_says_when_it_can_be_completed_in_hindi(app, make_user, client):
    booking_id, email, at = _started_early(app, make_user)
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    client.post(f"/provider/schedule/{booking_id}/complete")
    page = client.get("/provider/schedule").get_data(as_text=True)
    assert f"You can mark it complete from {at}, when it starts." in page
    client.post("/language", data={"language": "hi", "next": "/"})
    client.post(f"/provider/schedule/{booking_id}/complete")
    page = client.get("/provider/schedule").get_data(as_text=True)
    assert f"{at} से, जब यह शुरू हो," in page


def test_can_complete_only_once_started_and_from_the_start(world):
    provider, user = world.provider()
    booking, start = _nine_twenty(world, provider)
    early = start - timedelta(minutes=30)
    completion.start_booking(user, booking.id, now=early)
    assert not completion.can_complete(booking, early)
    assert completion.can_complete(booking, start)
    assert completion.can_complete(booking, start + timedelta(hours=3))
    # Until then the row says from when (the rule the schedule's row reads, not its own).
    assert completion.completes_from(booking, early) == start
    assert completion.completes_from(booking, start) is None


def test_a_row_started_early_says_from_when_instead_of_complete(app, make_user, client):
    """Review finding: Complete was shown for an appointment started early, then refused."""
    booking_id, email, at = _started_early(app, make_user)
    client.post("/auth/login", data={"email": email, "password": PASSWORD})
    row = _row(client.get("/provider/schedule").get_data(as_text=True), booking_id)
    assert f'<span class="muted">Complete from {at}</span>' in row
    assert "/complete" not in row and ">Complete</button>" not in row
    client.post("/language", data={"language": "hi", "next": "/"})
    row = _row(client.get("/provider/schedule").get_data(as_text=True), booking_id)
    assert f'<span class="muted">{at} से पूरा करें</span>' in row


def _row(html, booking_id):
    return html.split(f'id="booking-{booking_id}"', 1)[1].split("</tr>", 1)[0]


def _started_early(app, make_user):
    """A booking 30 minutes ahead, started now by its provider: (its id, the provider's
    e-mail, its start at the clinic "HH:MM")."""
    from tests.payouts.conftest import World

    with app.app_context():
        world = World(app, make_user)
        provider, user = world.provider()
        start = (utcnow() + timedelta(minutes=30)).replace(second=0, microsecond=0)
        booking = world.booking(provider, start=start)
        completion.start_booking(user, booking.id)
        db.session.commit()
        found = booking.id, user.email, start.astimezone(INDIA_TZ).strftime("%H:%M")
        db.session.remove()
    return found
