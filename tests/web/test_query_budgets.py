"""Query budgets: every patient, doctor and admin page runs a fixed number of SQL
statements, the same for 2 visits as for 24 (lists load their rows with the page, never
one query per row), and no more than its budget. A new per-row query, or a page that
grows by a query, fails here; raise a budget only with a reason."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from portal.catalog.models import Availability, Provider
from portal.extensions import db
from tests.querycount import counted_queries
from tests.web.booking.conftest import world  # noqa: F401  (the booking pages' fixture)
from tests.web.booking.helpers import HX, hold, slot

# (role, url template, htmx?) -> budget. Every signed-in page: the session's user, read
# with the catalog's and the policy's stamps and the bell's unread count (1 statement in
# all: portal.web.signed_in), then what the page shows.
BUDGETS = {
    # The unpaid and the upcoming visits in one query, as columns with whom each is for,
    # their item count and first item's start and zone
    # (booking.queries.open_and_upcoming_visits); the wallet's balance comes with the user
    # (signed_in.reads_with_user).
    ("patient", "/me/", False): 2,
    # The free times: kept per process (portal.catalog.calendar), the whole page and its
    # htmx answer alike: only the user read (computed, they add one query: availability,
    # leave and busy intervals; the providers, their clinics and services come from the
    # catalog cache). The filter form's options are cached with the catalog.
    ("patient", "/find?clinic={clinic}&service={consult}", False): 1,
    ("patient", "/find?clinic={clinic}&service={consult}&date={day}", True): 1,
    # The slot's provider, service and clinic from the catalog cache, the unpaid visit it
    # joins with its item count (one query), dependents.
    ("patient", "/me/book?{book}", False): 3,
    # The page's visits with whom each is for, then their items with service names and
    # clinic zones, read as columns (booking.queries.patient_visits_page).
    ("patient", "/me/visits", False): 3,
    ("patient", "/me/visits", True): 3,
    # The visit with what its page shows (booking.queries.VISIT_PAGE: one query, its
    # payments' attempts joined in since session 20; this visit is unpaid); the
    # wallet's balance with the user (an unpaid visit's page shows no refunds: none read).
    ("patient", "/me/visits/{visit}", False): 2,
    # Where the payment's return lands: the visit loaded as its page loads it (VISIT_PAGE).
    ("patient", "/me/visits/{visit}/confirmation", False): 2,
    # The history's page; the balance with the user.
    ("patient", "/me/wallet", False): 2,
    ("patient", "/me/dependents", False): 2,
    # The data download (docs/privacy.md): the user; the visits with their dependents,
    # items, payments, clinics (and their hours), providers and services
    # (booking.queries.patient_record: 8); the wallet's history (one page of 500); the
    # dependents; the paid reschedule fees and the fee payments that paid none (one each,
    # refunds.queries.fees_of_patient / fees_not_applied_of_patient: the fees were left
    # out); the refunds; the balance; the notices' page and count; what was sent; the
    # credit notes against the visits' invoices (booking.credit_notes.of_patient: a
    # cancelled visit's were left out, 18 → 19; the coupons are joined to the visits).
    ("patient", "/me/account/data.json", False): 19,
    ("patient", "/notifications/", False): 3,  # the bell shows the count read with the user
    ("patient", "/notifications/bell", True): 1,
    # The provider (user's), the page's bookings with their service, clinic and visit, and
    # their providers (a team's). Was 3 while this world's bookings, all unpaid holds, were
    # not shown: an empty page read no providers; a page with paid bookings read 5 (the
    # clinics' opening hours too, which rows never show: not loaded now). Moves' new times
    # held while their fee is paid, and each booking's "Moving to", are rows and columns of
    # the same page query (tests/refunds/test_move_on_schedule.py counts it with moves).
    ("doctor", "/provider/", False): 4,
    ("doctor", "/provider/schedule", False): 4,
    # Any 14 days (?from=): the same page query, bounded by those days.
    ("doctor", "/provider/schedule?from={day}", False): 4,
    # The year's TDS and gross in one query, the payout history once (the page's keyset
    # page, not also the dashboard's list); since the doctor's-week review, the latest
    # payout run (when the next one is) and the account payouts go to while a new one
    # validates (payout_fund_account), each one statement: 11 → 13.
    ("doctor", "/provider/earnings", False): 13,
    # TDS by quarter: the provider, the years they have payouts in, and the admin TDS
    # report's query once per quarter (portal.reports.tds.rows, with the provider filter):
    # fixed, whatever the number of payouts (test_tds_by_quarter_costs_the_same_…).
    ("doctor", "/provider/earnings/tds", False): 7,
    ("doctor", "/provider/availability", False): 6,
    # A window's Edit: the page, and the window (its provider, whose it is, is the page's).
    ("doctor", "/provider/availability/windows/{window}/edit", False): 7,
    ("doctor", "/provider/availability/windows/{window}/edit", True): 7,
    # The live dashboard: 5 daily series, refund percentiles, payout automation, the
    # 12-month count, pending approvals, 2 discrepancy counts — fixed, whatever the data.
    ("admin", "/admin/", False): 18,
    ("admin", "/admin/visits", False): 10,
    ("admin", "/admin/visits/{visit}", False): 19,
    ("admin", "/admin/refunds", False): 2,
    ("admin", "/admin/approvals", False): 3,
    ("admin", "/admin/payouts", False): 5,
    # The page's providers, their fund accounts (newest first: the current one and where
    # payouts go, payouts.common.fund_accounts_of), the payable balances.
    ("admin", "/admin/payouts/accounts", False): 4,
    ("admin", "/admin/providers", False): 7,
    ("admin", "/admin/clinics", False): 4,
    # The signed-in admin, the page's users and their count, and the administrator requests
    # waiting for a second administrator (accounts.queries.admin_requests_waiting).
    ("admin", "/admin/users", False): 4,
    ("admin", "/admin/coupons", False): 2,
    ("admin", "/admin/jobs", False): 6,
}


def _nth_slot(world, i):
    """The ``i``-th free half hour from ``world.day`` on (weekdays 09:00–18:00 IST)."""
    day, left = world.day, i
    while True:
        if day.weekday() < 5:
            if left < 18:
                return slot(day, 9 + left // 2, 30 * (left % 2))
            left -= 18
        day += timedelta(days=1)


def _holds(app, world, first, n):
    ids = []
    for i in range(first, first + n):
        visit_id, _ = hold(
            app,
            world,
            provider=world.doc1 if i % 2 else world.doc2,
            start=_nth_slot(world, i),
            dependent=world.child if i % 3 == 0 else None,
        )
        ids.append(visit_id)
    return ids


def _url(template, world, visit_id):
    book = urlencode(
        {
            "provider": world.doc1,
            "service": world.consult,
            "clinic": world.clinic,
            "start": _nth_slot(world, 200).isoformat(),
        }
    )
    return template.format(
        window=world.window,
        clinic=world.clinic,
        consult=world.consult,
        day=world.day.isoformat(),
        visit=visit_id,
        book=book,
    )


def _count(client, url, htmx):
    headers = HX if htmx else None
    client.get(url, headers=headers)  # warm: templates compiled, per-process caches filled
    with counted_queries() as statements:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return statements


@pytest.mark.parametrize("role", ["patient", "doctor", "admin"])
def test_every_page_costs_a_fixed_number_of_queries(app, client, login, world, role):  # noqa: F811
    login({"patient": world.patient, "doctor": world.provider_user, "admin": world.admin}[role])
    pages = [(key, budget) for key, budget in BUDGETS.items() if key[0] == role]
    visit_id = _holds(app, world, 0, 2)[0]
    with app.app_context():  # the doctor's first weekly window (their Edit page)
        world.window = db.session.scalar(
            sa.select(Availability.id)
            .join(Provider)
            .where(Provider.user_id == world.provider_user.id)
            .order_by(Availability.id)
        )
    few = {key: _count(client, _url(key[1], world, visit_id), key[2]) for key, _ in pages}
    _holds(app, world, 2, 22)
    failures = []
    for key, budget in pages:
        many = _count(client, _url(key[1], world, visit_id), key[2])
        if len(many) != len(few[key]) or len(many) > budget:
            failures.append(
                f"{key}: {len(few[key])} queries with 2 visits, {len(many)} with 24, budget {budget}"
                + "".join(f"\n    {s.splitlines()[0][:120]}" for s in many)
            )
    assert not failures, "\n".join(failures)


def test_tds_by_quarter_costs_the_same_for_any_number_of_payouts(app, client, login, world):  # noqa: F811
    """The TDS page's statements do not grow with the payouts (nor do its CSV's)."""
    from tests.i18n.test_doctor_money import _payout

    login(world.provider_user)
    url = "/provider/earnings/tds?fy=2026-27"
    counts = {}
    for n in (1, 12):
        with app.app_context():
            have = len(_payouts_of(world.doc1))
            for i in range(have, n):
                _payout(world.doc1, 100_000 + i, 10_000 + i, reversed_=i % 3 == 0)
        page = _count(client, url, False)
        total = client.get(url).get_data(as_text=True).split('id="tds-total"')[1]
        net = n - len(range(0, n, 3))  # every payout counted, the reversed ones taken back
        assert f'class="num"><strong>{net}</strong></td>' in total.split("</tr>")[0]
        with counted_queries() as file:
            answer = client.get(url.replace("/tds?", "/tds.csv?"), buffered=True)
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        counts[n] = (len(page), len(file))
    assert counts[1] == counts[12], counts
    assert counts[12][0] <= BUDGETS["doctor", "/provider/earnings/tds", False], counts


def _payouts_of(provider_id):
    from portal.payouts.models import Payout

    return db.session.scalars(sa.select(Payout.id).where(Payout.provider_id == provider_id)).all()
