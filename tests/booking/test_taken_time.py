"""A hold for a time another patient already holds is refused from one read of the claims
in the way, before the clinic, the providers, the offer or the policy are read or anything
is written: under a race, every loser after the winner's commit costs the database almost
nothing (docs/performance.md)."""

import pytest

from portal.booking import lookup
from portal.booking.errors import SlotUnavailable
from tests.booking.factories import at
from tests.payments.test_payments_checkout import hold
from tests.querycount import counted_queries


def test_a_time_someone_holds_is_refused_from_the_claims_alone(world, users):
    winner, loser = users(world.patients[0]), users(world.patients[1])
    hold(world, winner)
    with counted_queries() as statements, pytest.raises(SlotUnavailable):
        hold(world, loser)
    # The patient (who may book for whom), the service (its duration gives the end of the
    # time), then the live claims in the way with their visits' status and hold in one
    # query, read as columns (a stale hold would be cleared; this one is not).
    assert len(statements) == 3, statements
    assert "slot_claims" in statements[-1] and "JOIN visits" in statements[-1]


def test_a_stale_hold_in_the_way_still_gives_way(world, users, clock):
    first, second = users(world.patients[0]), users(world.patients[1])
    hold(world, first)
    clock.shift(60 * 60)  # the first hold ran out; the sweep has not been by
    visit = lookup.get_visit(hold(world, second))
    assert [i.start_at for i in visit.items] == [at(1, 10)]


def _join(world, patient, hour=10, doctor=0):
    """A hold as the patient's book form asks for it: in their newest unpaid visit."""
    return hold(world, patient, hour=hour, doctor=doctor, join_open_visit=True)


def test_a_loser_joining_their_open_visit_is_refused_before_it_is_read(world, users):
    winner, loser = users(world.patients[0]), users(world.patients[1])
    hold(world, winner)
    hold(world, loser, hour=12)  # the loser has an unpaid visit the hold would join
    with counted_queries() as statements, pytest.raises(SlotUnavailable) as refused:
        _join(world, loser)
    assert refused.value.taken
    assert len(statements) == 3, statements  # as above: their open visit is not read
    assert not any("FROM visits" in s and "slot_claims" not in s for s in statements)


def test_a_free_time_joins_the_open_visit(world, users):
    patient = users(world.patients[0])
    first = hold(world, patient)
    assert _join(world, patient, hour=11) == first


def test_the_open_visit_joined_is_not_expired_under_it_by_its_own_lapsed_hold(world, users, clock):
    """The person's own unpaid visit holds them at 10:00 and its hold has lapsed (the sweep
    has not been by): joining it at 10:00 with another doctor does not expire the visit
    being joined; the person is busy then (as when the visit was read first)."""
    patient = users(world.patients[0])
    first = hold(world, patient)
    clock.shift(60 * 60)
    with pytest.raises(SlotUnavailable) as refused:
        _join(world, patient, doctor=1)
    assert not refused.value.taken  # their own time, not someone else's
    assert lookup.get_visit(first).status != "EXPIRED"


def test_a_stale_hold_the_sweep_expired_meanwhile_still_gives_way(world, users, clock, monkeypatch):
    """The sweep expired the stale visit while this hold waited for its lock: the hold
    finds nothing left to expire, and reads the claims again all the same."""
    from portal.booking import lifecycle

    first, second = users(world.patients[0]), users(world.patients[1])
    hold(world, first)
    clock.shift(60 * 60)
    real = lifecycle.expire_if_stale

    def the_sweep_got_there_first(visit_id, now=None):
        real(visit_id, now)
        return False

    monkeypatch.setattr(lifecycle, "expire_if_stale", the_sweep_got_there_first)
    visit = lookup.get_visit(hold(world, second))
    assert [i.start_at for i in visit.items] == [at(1, 10)]
