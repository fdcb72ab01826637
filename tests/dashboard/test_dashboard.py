"""The dashboard's figures against the rows written, counted independently in Python:
windows in clinic days, daily series, refund turnaround percentiles, payouts without a
manual step, bookings per month, pending approvals; and the polled fragment."""

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.dashboard import queries
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.payouts.models import Payout
from tests.load.dashboard_data import seed_dashboard

NOW = datetime(2026, 6, 10, 15, 30, tzinfo=CLINIC_TZ)  # a Wednesday afternoon


@pytest.fixture
def seeded(app, ctx):
    with time_machine.travel(NOW, tick=False):
        data = seed_dashboard(NOW, providers=3, days=70, per_day=3, seed=7)
        queries.forget_months()
        yield data


def local_day(moment):
    return moment.astimezone(CLINIC_TZ).date()


def in_days(moments, n):
    first = NOW.date() - timedelta(days=n - 1)
    return [m for m in moments if local_day(m) >= first]


def test_windows_match_the_rows(seeded):
    dash = queries.dashboard()
    windows = dict(dash.windows())
    for label, n in queries.WINDOWS:
        w = windows[label]
        assert w["bookings"][0] == len(in_days(seeded.bookings, n)) > 0
        paid = [
            (t, a)
            for t, a in seeded.payments
            if t in set(in_days([p[0] for p in seeded.payments], n))
        ]
        assert w["money in"] == (len(paid), sum(a for _, a in paid))
        refunds = [
            r for r in seeded.refunds if local_day(r[1]) >= NOW.date() - timedelta(days=n - 1)
        ]
        # Refunds are cash out (to the card or account), as money in is cash in; refunds
        # credited to the wallet are their own figure.
        cash = [r for r in refunds if not r[3]]
        to_wallets = [r for r in refunds if r[3]]
        assert w["refunds"] == (len(cash), sum(r[2] for r in cash))
        assert w["wallet refunds"] == (len(to_wallets), sum(r[2] for r in to_wallets))
        payouts = [
            p for p in seeded.payouts if local_day(p[0]) >= NOW.date() - timedelta(days=n - 1)
        ]
        assert w["payouts"] == (len(payouts), sum(p[1] for p in payouts))
        assert w["failed payments"][0] == len(in_days(seeded.failed_attempts, n))
    assert windows["30 days"]["bookings"][0] > windows["7 days"]["bookings"][0]


def test_the_daily_series_is_by_clinic_day(seeded):
    dash = queries.dashboard()
    assert dash.days[-1] == NOW.date() and len(dash.days) == 30
    counts = dash.series["bookings"].count
    for day, n in zip(dash.days, counts):
        assert n == sum(1 for t in seeded.bookings if local_day(t) == day)
    assert dash.series["money in"].amount[-1] == sum(
        a for t, a in seeded.payments if local_day(t) == NOW.date()
    )


def test_outcome_figures(seeded):
    dash = queries.dashboard()
    since = NOW.date() - timedelta(days=29)
    turnaround = sorted(
        (done - made).total_seconds()
        for made, done, _, to_wallet in seeded.refunds
        if local_day(done) >= since and not to_wallet  # a wallet credit is instant
    )
    assert dash.refunds_measured == len(turnaround) > 2
    assert dash.refund_p50 == pytest.approx(queries._quantile(turnaround, 0.5))
    assert dash.refund_p95 == pytest.approx(queries._quantile(turnaround, 0.95))
    recent = [p for p in seeded.payouts if local_day(p[0]) >= since]
    assert dash.payouts_processed == len(recent)
    assert dash.payouts_automatic == sum(1 for p in recent if not p[2])
    assert dash.automatic_share == pytest.approx(dash.payouts_automatic / len(recent))
    months = dict(dash.months)
    assert len(dash.months) == 12
    for month_start, n in dash.months:
        assert n == sum(
            1
            for t in seeded.bookings
            if (local_day(t).year, local_day(t).month) == (month_start.year, month_start.month)
        )
    assert months[NOW.date().replace(day=1)] > 0


@pytest.mark.parametrize(
    "action",
    [
        "payout.hold",
        "payout.release",
        "payout.admin_retry",
        "payout.created",  # pay now
        "payout.mark_failed",  # "Mark as failed (not made at RazorpayX)"
    ],
)
def test_a_payout_an_admin_stepped_in_is_not_without_a_manual_step(seeded, action):
    """Every administrator's step on a payout counts: "Mark as failed" was left out, so a
    payout an admin had to unstick by hand, then paid by the automatic retry, counted as
    processed without a manual step."""
    before = queries.dashboard()
    touched = {
        int(a.object_id)
        for a in db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "payout"))
    }
    payout = db.session.scalars(
        sa.select(Payout)
        .where(
            Payout.status == "PROCESSED",
            Payout.processed_at >= NOW - timedelta(days=20),
            Payout.id.not_in(touched),
        )
        .order_by(Payout.id)
    ).first()
    admin = db.session.scalar(sa.select(User).where(User.role == "admin").limit(1))
    db.session.add(
        AuditEntry(
            at=payout.processed_at - timedelta(hours=2),
            actor_id=admin.id,
            action=action,
            object_type="payout",
            object_id=str(payout.id),
        )
    )
    db.session.commit()
    after = queries.dashboard()
    assert after.payouts_processed == before.payouts_processed
    assert after.payouts_automatic == before.payouts_automatic - 1


def test_discrepancies_come_from_the_reconciliation_cases(seeded):
    from portal.extensions import db
    from portal.reconcile.models import ReconCase

    def case(n, status, seen):
        return ReconCase(
            kind="payment", reference=f"pay_case{n}", status=status, first_seen_at=seen
        )

    now = datetime.now(CLINIC_TZ)
    db.session.add_all(
        [
            case(1, "discrepancy", now),
            case(2, "resolved", now),
            case(3, "matched", now),
            case(4, "matched", now),
            case(5, "discrepancy", now - timedelta(days=40)),  # open, but before the window
        ]
    )
    db.session.commit()
    dash = queries.dashboard()
    assert dash.open_discrepancies == 2
    assert dash.discrepancy_rate == pytest.approx(0.5)


def test_quantile_is_percentile_cont():
    assert queries._quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert queries._quantile([10.0], 0.95) == 10.0
    assert queries._quantile([0.0, 100.0], 0.95) == pytest.approx(95.0)


def test_pending_approvals_count_policy_changes(ctx, make_user):
    from portal.policies import service

    maker = make_user("admin")
    from portal.accounts.models import User
    from portal.extensions import db

    service.propose(db.session.get(User, maker.id), {"gst_bps": 1200}, reason="A lower GST rate")
    assert queries.pending_approvals() == {
        "Refund override": 0,
        "Wallet adjustment": 0,
        "Policy change": 1,
        "Admin account": 0,
    }


def test_the_fragment_polls_every_30_seconds(client, make_user, login):
    login(make_user("admin"))
    home = client.get("/admin/").get_data(as_text=True)
    assert 'hx-trigger="every 30s"' in home and 'hx-get="/admin/dashboard"' in home
    fragment = client.get("/admin/dashboard", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith("{#") is False and '<section id="dashboard"' in html
    assert "<html" not in html


def test_on_a_31st_this_months_bookings_take_no_statement_more(app, ctx):
    """The 30-day series starts on the 2nd on a 31st: this month's count once took a
    statement of its own that day (the admin home's query budget failed on 31 Jan). Now
    the bookings' daily statement starts at the month's first: the same cost every day,
    and the month's count right."""
    from datetime import date

    from tests.querycount import counted_queries

    end = datetime(2026, 7, 31, 15, 30, tzinfo=CLINIC_TZ)
    with time_machine.travel(end, tick=False):
        data = seed_dashboard(end, providers=3, days=70, per_day=3, seed=7)
        queries.forget_months()
        queries.dashboard()  # the closed months, kept per process
        with counted_queries() as on_the_31st:
            dash = queries.dashboard()
    july = [t for t in data.bookings if date(2026, 7, 1) <= local_day(t) <= end.date()]
    assert local_day(min(july)) == date(2026, 7, 1)  # the 1st has bookings, outside the 30 days
    assert dict(dash.months)[date(2026, 7, 1)] == len(july)
    first = end.date() - timedelta(days=29)
    assert sum(dash.series["bookings"].count) == sum(
        1 for t in data.bookings if first <= local_day(t) <= end.date()
    )
    with time_machine.travel(end - timedelta(days=15), tick=False):
        queries.forget_months()
        queries.dashboard()
        with counted_queries() as mid_month:
            queries.dashboard()
    assert len(on_the_31st) == len(mid_month)
