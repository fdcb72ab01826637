"""The rule settling a failed refund against refunds made on Razorpay's dashboard
(``portal.domain.outside_refunds``): the excess over the capture is covered, up to the
refund, oldest dashboard refund first; the rest is still owed."""

from portal.domain.outside_refunds import settle


def test_the_excess_over_the_capture_is_covered_and_the_rest_is_owed():
    # ₹882.50 captured; ours standing ₹529.50 + the failed ₹353; ₹100 on the dashboard.
    plan = settle(35_300, 88_250, 88_250, [("rfnd_a", 10_000)])
    assert plan.parts == (("rfnd_a", 10_000),)
    assert (plan.covered, plan.to_wallet) == (10_000, 25_300)


def test_nothing_is_covered_within_the_capture():
    plan = settle(35_300, 88_250, 35_300, [("rfnd_a", 10_000)])
    assert (plan.parts, plan.covered, plan.to_wallet) == ((), 0, 35_300)
    assert settle(35_300, 88_250, 88_250, []).covered == 0


def test_never_more_than_the_refund_and_the_oldest_dashboard_refund_first():
    plan = settle(35_300, 88_250, 88_250, [("rfnd_old", 20_000), ("rfnd_new", 40_000)])
    assert plan.parts == (("rfnd_old", 20_000), ("rfnd_new", 15_300))
    assert (plan.covered, plan.to_wallet) == (35_300, 0)


def test_a_dashboard_refund_partly_counted_before_covers_only_what_is_left():
    # ₹600 on the dashboard, ₹353 of it counted by an earlier settlement (a row of ours now).
    plan = settle(52_950, 88_250, 88_250, [("rfnd_a", 24_700)])
    assert plan.parts == (("rfnd_a", 24_700),)
    assert plan.to_wallet == 28_250
