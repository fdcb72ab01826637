"""What a run found at the gateway is what a sync sees, whichever process serves the
gateway (review finding: the demo's faults lived only in the memory of the process that
loaded the demo, so the served gateway answered clean and "Sync from the gateway" matched
an altered amount and a duplicate, docs/reconciliation.md "Resolving")."""

import pytest

from portal.gateway.sandbox import create_sandbox_app
from portal.gateway.sandbox.shared import attach
from portal.reconcile import resolve
from tests.reconcile.helpers import admin, case_for, later, paid, payment_id, run_day
from tests.threads import serve


def _another_process(app, gateway, url):
    """A second sandbox app on the same shared state (as the served demo is to the loader),
    and the portal pointed at it."""
    c = app.config
    other = create_sandbox_app(
        {
            "KEY_ID": c["RAZORPAY_KEY_ID"],
            "KEY_SECRET": c["RAZORPAY_KEY_SECRET"],
            "WEBHOOK_THREAD": False,
            "DATABASE_URL": url,
        }
    )
    served = serve(other)
    c["RAZORPAY_BASE_URL"] = served.url
    app.extensions.pop("gateway_adapters", None)
    return served


def test_a_sync_through_another_process_refuses_what_the_run_found(
    app, world, users, gateway, clock, tmp_path
):
    url = "sqlite:///" + str(tmp_path / "sandbox.sqlite3")
    attach(gateway.sandbox.store, url)
    altered = payment_id(paid(world, users, gateway, hour=10))
    twice = payment_id(paid(world, users, gateway, hour=11))
    hidden = payment_id(paid(world, users, gateway, hour=12))
    amount = gateway.sandbox.store.payments[altered]["amount"]
    gateway.sandbox.set_faults(
        alter={altered: {"amount": amount + 10_000}}, duplicate=[twice], hide=[hidden]
    )
    later(clock)
    run_day(world)
    assert case_for(altered).reason == "amount_differs"
    assert case_for(twice).reason == "duplicate"
    assert case_for(hidden).reason == "missing_gateway"
    served = _another_process(app, gateway, url)
    try:
        with pytest.raises(resolve.ResolveError, match="still differ"):
            resolve.sync(admin(world), case_for(altered).id)
        with pytest.raises(resolve.ResolveError, match="twice"):
            resolve.sync(admin(world), case_for(twice).id)
        assert (case_for(altered).status, case_for(twice).status) == ("discrepancy",) * 2
        # A run through the other process finds what the first found.
        again = run_day(world)
        assert again.status == "finished", again.error
        assert case_for(hidden).reason == "missing_gateway"
        assert case_for(altered).reason == "amount_differs"
    finally:
        served.stop()
