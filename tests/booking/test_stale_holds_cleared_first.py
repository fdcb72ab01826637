"""Another person's stale hold in the way is cleared in a unit of work of its own, before
the use case runs again (``holds.clears_stale_holds``), never under the use case's own
locks (docs/booking.md, lock order; the circles it made: test_stale_holds_lock_order_pg.py).
On both databases."""

import pytest

from portal.booking import holds, lookup
from portal.booking import reschedule as rs
from portal.booking.errors import SlotUnavailable
from portal.booking.tasks import expire_holds
from tests.booking.factories import at
from tests.payments.test_payments_checkout import hold

HOUR = 60 * 60


def test_a_stale_hold_is_expired_for_good_even_when_the_hold_is_then_refused(world, users, clock):
    """Patient 1's hold of doctor 0 at 10:00 ran out (the sweep has not been by). Patient 0
    asks for that time while busy then (their own hold with doctor 1): refused, but the
    stale hold was expired in its own unit of work, committed, as the sweep would have."""
    first, second = users(world.patients[1]), users(world.patients[0])
    stale = hold(world, first)
    clock.shift(HOUR)
    hold(world, second, doctor=1)  # patient 0 is busy at 10:00
    with pytest.raises(SlotUnavailable) as refused:
        hold(world, second)
    assert not refused.value.taken  # their own time, not someone else's
    assert lookup.get_visit(stale).status == "EXPIRED"


def test_a_stale_hold_still_in_the_way_when_run_again_is_taken(world, users, clock, monkeypatch):
    """A hold that lapsed between the clearing and the second run (here: the clearing did
    nothing) is in the way, as a live one is: refused once, no third run, no wait."""
    first, second = users(world.patients[0]), users(world.patients[1])
    stale = hold(world, first)
    clock.shift(HOUR)
    cleared = []
    monkeypatch.setattr(holds, "clear_stale_holds", lambda *args: cleared.append(args))
    with pytest.raises(SlotUnavailable) as refused:
        hold(world, second)
    assert refused.value.taken
    assert [visit_id for visit_id, _, _ in cleared] == [stale]
    assert lookup.get_visit(stale).status != "EXPIRED"


def test_stale_holds_in_the_way_are_cleared_in_the_order_of_their_visits(
    world, users, clock, monkeypatch
):
    """A team's hold (doctors 0 and 1 at 10:00) finds two stale visits in its way; the one
    numbered first got its claim there last. Each is cleared in a unit of work of its own,
    in the visits' order (one order of locks, whatever order the claims are read in)."""
    a, b, team = (users(world.patients[i]) for i in (1, 2, 0))
    lower = hold(world, a, hour=12)  # visit numbered first, its time elsewhere
    higher = hold(world, b, doctor=0)  # then: 10:00 with doctor 0
    hold(world, a, doctor=1, visit_id=lower)  # and only now: 10:00 with doctor 1
    clock.shift(HOUR)
    real, cleared = holds.clear_stale_holds, []

    def clear(visit_id, reschedule_id=None, now=None):
        cleared.append(visit_id)
        return real(visit_id, reschedule_id, now)

    monkeypatch.setattr(holds, "clear_stale_holds", clear)
    item = rs.visits.add_item(
        team,
        patient_id=team.id,
        service_id=world.consult,
        provider_ids=[world.doctors[0], world.doctors[1]],
        clinic_id=world.clinic,
        start_at=at(1, 10),
    )
    assert cleared == sorted([lower, higher]) == [lower, higher]
    assert [lookup.get_visit(v).status for v in (lower, higher)] == ["EXPIRED", "EXPIRED"]
    assert item.id is not None


def test_a_rebooking_clears_a_stale_hold_in_its_way_outside_its_unit_of_work(world, users, clock):
    """Rebooking holds inside its own unit of work (``rebook`` → ``add_item``): the hold
    stops the rebooking, the stale hold is cleared, and the rebooking runs again."""
    patient, other = users(world.patients[0]), users(world.patients[1])
    lapsed = lookup.get_visit(hold(world, patient)).items[0]
    clock.shift(HOUR)
    assert expire_holds() == 1
    stale = hold(world, other, hour=11, day=2)
    clock.shift(HOUR)
    new = rs.rebook(patient, lapsed.id, at(2, 11))
    assert lookup.get_visit(new.master_id).items[0].start_at == at(2, 11)
    assert lookup.get_visit(stale).status == "EXPIRED"
