"""Two admins' retries of one returned payout at once (a double click, two tabs) on
PostgreSQL: one makes the MANUAL payout, the other is refused after the first commits
(review finding: both made one, ₹1,000 paid twice)."""

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.extensions import db
from portal.payouts import admin as payout_admin
from portal.payouts import models as m
from portal.payouts.common import PayoutError
from tests.payouts.conftest import World, sandbox_x
from tests.payouts.test_retry_returned import REASON, returned_cycle_payout
from tests.plugin import user_maker
from tests.threads import run_together

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_x(pg_app, ledger_stays_sound):
    with sandbox_x(pg_app) as served:
        pg_app.config["PAYOUT_RETRY_BACKOFF_SECONDS"] = 0  # put back by sandbox_x
        pg_app.config["PAYOUT_RESEND_BACKOFF_SECONDS"] = 0
        yield served


def test_a_returned_payout_retried_twice_at_once_is_paid_once(mid_year, pg_app, pg_x):
    make_user = user_maker(pg_app)
    with pg_app.app_context():
        world = World(pg_app, make_user, pg_x)
        admin, provider, payout = returned_cycle_payout(world, pg_x, make_user("admin").id)
        admin_id, provider_id, payout_id = admin.id, provider.id, payout.id
        db.session.remove()

    def click():
        made = payout_admin.retry_payout_now(db.session.get(User, admin_id), payout_id, REASON)
        return made.id

    results = run_together(pg_app, click, click)
    made = [r for r in results if isinstance(r, int)]
    refused = [r.message for r in results if isinstance(r, PayoutError)]
    assert len(made) == 1 and refused == [f"This payout was already retried: payout #{made[0]}."], (
        results
    )
    with pg_app.app_context():
        pg_x.settle()
        grosses = db.session.scalars(
            sa.select(m.Payout.gross).where(
                m.Payout.provider_id == provider_id, m.Payout.id != payout_id
            )
        ).all()
        db.session.remove()
    assert grosses == [100_000]


def test_a_retry_and_the_next_run_at_once_pay_the_returned_money_once(mid_year, pg_app, pg_x):
    """The retry reads what is still owed under the provider's payout lock: the run paying
    the whole payable at the same moment is either seen (the retry is refused: nothing
    owed) or waits (and pays only the ₹1,000 earned since). Either way ₹2,000 in all."""
    from datetime import date

    from portal.payouts import runs

    make_user = user_maker(pg_app)
    with pg_app.app_context():
        world = World(pg_app, make_user, pg_x)
        admin, provider, payout = returned_cycle_payout(world, pg_x, make_user("admin").id)
        admin_id, provider_id, payout_id = admin.id, provider.id, payout.id
        db.session.remove()

    def click():
        return payout_admin.retry_payout_now(db.session.get(User, admin_id), payout_id, REASON).id

    def run():
        return runs.run_cycle("WEEKLY", date(2026, 11, 8)).id

    results = run_together(pg_app, click, run)
    refused = [r for r in results if isinstance(r, PayoutError)]
    assert all(r.message == payout_admin.MSG_PAID_AGAIN for r in refused), results
    assert not [r for r in results if isinstance(r, BaseException) and r not in refused]
    with pg_app.app_context():
        pg_x.settle()
        grosses = db.session.scalars(
            sa.select(m.Payout.gross).where(
                m.Payout.provider_id == provider_id, m.Payout.id != payout_id
            )
        ).all()
        db.session.remove()
    assert sum(grosses) == 200_000 and len(grosses) == (1 if refused else 2), grosses
