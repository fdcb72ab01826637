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
    # time), then the live claims in the way with their bookings and visits in one query
    # (a stale hold would be cleared; this one is not).
    assert len(statements) == 3, statements
    assert "slot_claims" in statements[-1] and "JOIN visits" in statements[-1]


def test_a_stale_hold_in_the_way_still_gives_way(world, users, clock):
    first, second = users(world.patients[0]), users(world.patients[1])
    hold(world, first)
    clock.shift(60 * 60)  # the first hold ran out; the sweep has not been by
    visit = lookup.get_visit(hold(world, second))
    assert [i.start_at for i in visit.items] == [at(1, 10)]
