"""A provider's account closed (deactivated by an administrator: docs/privacy.md,
"A provider's account closed"): the TDS records keep the PAN. TDS deducted from a
provider's payouts is reported under their PAN (Form 26Q) and its records are kept for the
statutory period, like invoices; docs/privacy.md's rule is to erase only what no law
requires kept. The admin's provider form cleared the PAN of a closed provider (blank, as
to erase their data) and every past quarter of the TDS report then said "not on file"
(review finding). A PAN under which TDS was deducted is now refused clearing; a wrong one
is still corrected (the TDS statement is corrected with it)."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts import service as accounts
from portal.accounts.models import User
from portal.catalog.models import Provider
from portal.catalog.providers import update_provider
from portal.extensions import db
from portal.payouts import runs
from portal.payouts.models import FundAccount
from portal.reports import tds
from tests.payouts.conftest import payouts_of

PAN, CORRECTED = "ABCPA1234F", "ABCPA1234G"


def _at(day):
    return time_machine.travel(datetime.combine(day, datetime.min.time(), UTC).replace(hour=6))


def _ready(world):
    """Dr Asha, paid by the engine, her profile complete (an admin's save checks it all)."""
    asha, asha_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Asha")
    asha.pan, asha.registration_no = PAN, "KMC 12345"
    asha.specializations = [world._spec]
    db.session.commit()
    return asha, asha_user


def _pans(provider_name):
    report = tds.report(tds.parse({"fy": "2026-27"}))
    return {r.pan for r in report["rows"] if r.provider == provider_name}


def test_a_closed_providers_pan_stays_with_their_tds_records(world, x, make_user):
    asha, asha_user = _ready(world)
    with _at(date(2026, 6, 20)):  # crosses the threshold at once: 10 % of ₹60,000
        world.earn(asha, asha_user, 6_000_000)
        runs.run_cycle("WEEKLY", date(2026, 6, 20))
        x.settle()
    [payout] = payouts_of(asha.id)
    assert payout.tds == 600_000
    admin = db.session.get(User, make_user("admin").id)

    # The account closed: deactivated, the profile with it (no bookings ahead).
    accounts.deactivate_user(admin, asha_user.id)
    provider = db.session.get(Provider, asha.id)
    assert not provider.active and provider.pan == PAN
    # Its bank details are the masked ones kept for its payouts' history.
    [fund] = db.session.scalars(sa.select(FundAccount).where(FundAccount.provider_id == asha.id))
    assert fund.account_last4 == "5678" and "50100012345678" not in repr(vars(fund))

    # Clearing the PAN (to erase it) is refused: TDS was deducted under it.
    with pytest.raises(accounts.ValidationError) as refused:
        update_provider(admin, asha.id, pan="")
    assert "TDS" in str(refused.value.errors.get("pan")), refused.value.errors
    db.session.rollback()
    assert db.session.get(Provider, asha.id).pan == PAN
    assert _pans("Dr Asha") == {PAN}

    # A wrong PAN is still corrected, and the TDS report says the corrected one.
    update_provider(admin, asha.id, pan=CORRECTED)
    db.session.commit()
    assert _pans("Dr Asha") == {CORRECTED}


def test_a_pan_with_no_tds_under_it_can_still_be_cleared(world, x, make_user):
    """Nothing was deducted under it (no payout above the threshold): no TDS record needs
    it, so the administrator may clear it as before."""
    asha, asha_user = _ready(world)
    with _at(date(2026, 6, 20)):  # below the threshold: no TDS
        world.earn(asha, asha_user, 3_000_000)
        runs.run_cycle("WEEKLY", date(2026, 6, 20))
        x.settle()
    assert [p.tds for p in payouts_of(asha.id)] == [0]
    admin = db.session.get(User, make_user("admin").id)
    update_provider(admin, asha.id, pan="")
    db.session.commit()
    assert db.session.get(Provider, asha.id).pan is None
