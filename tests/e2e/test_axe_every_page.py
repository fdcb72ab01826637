"""axe-core on every page: each GET route of the patient, provider, public, auth,
notifications and admin blueprints, found in ``app.url_map``, opened in Chromium and
checked; no violation of any impact is allowed (none is left: a moderate or minor one
fails as a serious one does, so the fixes made stay made), and no page is wider than a
phone's screen at 390 px.

The state is the Hindi walk's (``tests/i18n/test_every_page_hi.py``: a patient with a
visit of several items, cancelled, moved, refunded to the wallet and to the card, today's
visits started and completed, a child's visits paid and held, payouts paid and returned,
leave), read in English, and what the back office has on top of it: wallet adjustments
(one applied, one waiting for a second admin), a payment link, a failed gateway refund,
a settlement, a reconciliation run and its cases, a payout run, an export, the policy's
first version, a clinic open without a GSTIN and GST filed under "no GSTIN" (their
warnings). Its URLs are the Hindi walk's (``_urls``) for the patient's and the
providers' pages, and ``_admin_urls`` for the back office. A route neither knows (a new
one) fails the test until it is added, with ids that fill it, or to ``NOT_WALKED`` with
why. Files (CSV, JSON) are known by the answer's Content-Type and left out, their
status checked first; the routes that answered one must be exactly ``FILES``.

One browser context a role: the visitor's pages and then the patient's (signed in in
the same context); the doctor's, the lab's and a provider's without a profile (signed
in one after the other); the admin's. Patient and provider pages are checked at 390 px
(a phone), each route's first page at 1280 px too; the admin's at 1280 px; the first page
of each person once more with the menus open (docs/mobile.md).

The forms htmx opens inside a list's row (``INLINE``: the doctor's hours, the admin's
catalog rows and coupons) are checked open there too, not only as their own edit pages:
the list opened, the first row's Edit clicked, the page checked at each of the context's
widths.
"""

import datetime as dt
import os
import time
from collections import defaultdict
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import time_machine

from portal.extensions import db
from tests.conftest import PASSWORD
from tests.i18n.test_every_page_hi import NOT_WALKED as NOT_WALKED_HI
from tests.i18n.test_every_page_hi import READ, WALKED, _urls, monday, state  # noqa: F401  (fixtures)
from tests.web.booking.conftest import gateway, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

AXE = os.path.join(os.path.dirname(__file__), "vendor", "axe.min.js")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# The routes whose answer is a file (not a page to check), each must answer with one.
FILES = {
    "patient.download_data": "the patient's data export (JSON)",
    "provider.tds_quarters_csv": "a doctor's or a lab's TDS by quarter (CSV)",
    "admin.transactions_csv": "the transactions console's CSV",
    "admin.reconciliation_cases_csv": "the reconciliation cases' CSV",
    "admin.reconciliation_runs_csv": "the reconciliation runs' CSV",
}
# GET routes of the walked blueprints not opened, with why.
NOT_WALKED = {
    **NOT_WALKED_HI,
    "admin.export_download": "the export's CSV file (a download)",
    # Parts of a page, fetched by htmx, checked in the page that holds them.
    "notifications.bell": "the header's bell: on every page",
    "admin.dashboard": "the admin home's live figures (polled): on /admin/",
    "admin.transactions_summary": "the console's sums (loaded after it): on /admin/transactions",
}


@pytest.fixture
def rich(state, app, gateway, monkeypatch):
    """The Hindi walk's state, read in English, with the back office's objects on top
    (see the module's docstring); the ids that fill the admin's routes."""
    from portal.accounts.models import User
    from portal.booking.links import create_payment_link
    from portal.booking.models import Coupon, IndividualBooking
    from portal.catalog.models import Clinic, ClinicHours, Specialization
    from portal.db import utcnow
    from portal.domain.states import AdjustmentStatus
    from portal.exports import service as exports
    from portal.payouts import models as payouts
    from portal.policies.service import ensure_first_version
    from portal.reconcile import run as recon
    from portal.reconcile.models import ReconCase
    from portal.reconcile.window import day_window
    from portal.refunds.models import Refund
    from portal.reports import gst
    from portal.settlements.ingest import ingest
    from portal.settlements.models import Settlement
    from portal.transactions.models import MoneyMovement
    from portal.wallet.adjustments import CREDIT, create_adjustment

    world = state.world
    with app.app_context():
        for person in db.session.scalars(sa.select(User).where(User.language == "hi")):
            person.language = "en"
        db.session.commit()
        admin = db.session.get(User, world.admin.id)
        patient = world.patient.id
        applied = create_adjustment(
            admin, patient, CREDIT, 5_000, "Goodwill for the doctor's late start", "Late start"
        )
        waiting = create_adjustment(
            admin, patient, CREDIT, 2_000_000, "A duplicate payment made good by hand", "Duplicate"
        )
        create_payment_link(admin, state.visits.held)
        assert waiting.status == AdjustmentStatus.PENDING_APPROVAL
        # The card's refund as Razorpay's refund.failed leaves it once the retries are
        # spent (set directly: the pages only read it): Retry and To wallet are offered.
        failed = db.session.scalar(
            sa.select(Refund).where(Refund.destination == "GATEWAY").order_by(Refund.id)
        )
        failed.status, failed.failure_reason = "FAILED", "BAD_REQUEST_ERROR: refund failed"
        db.session.commit()
        # What the gateway paid out (the day's captures) and a payment it has that the
        # portal never made: a reconciliation run finds it (a run lists what is a second
        # old at least, past its grace: none here).
        gateway.settle_day(gateway.today())
        ingest()
        stray = gateway.stray_payment(12_345)["id"]
        today = gateway.today()
        with (
            monkeypatch.context() as patch,
            time_machine.travel(utcnow() + timedelta(seconds=2), tick=True),
        ):
            patch.setitem(app.config, "RECON_PENDING_GRACE_SECONDS", 0)
            run = recon.start_run(*day_window(today, today), trigger=recon.ADMIN, actor=admin)
            recon.execute(run.id)
        # A payout run holding the doctor's payout.
        cycle = payouts.PayoutRun(key="axe-run", schedule="WEEKLY", period_end=today)
        db.session.add(cycle)
        db.session.flush()
        payout = db.session.scalar(sa.select(payouts.Payout).order_by(payouts.Payout.id))
        payout.run_id = cycle.id
        db.session.commit()
        export = exports.start(admin, "transactions", {})
        # A clinic open without a GSTIN (its note on the clinics' pages, the home's card)
        # and an invoice line filed under "no GSTIN" (set directly: the pages only read
        # it): the GST report's warning.
        unregistered = Clinic(name="Koramangala Clinic", city="Bengaluru")
        unregistered.hours = [
            ClinicHours(weekday=d, opens=dt.time(9), closes=dt.time(18)) for d in range(5)
        ]
        db.session.add(unregistered)
        db.session.execute(
            sa.update(IndividualBooking)
            .where(IndividualBooking.id == state.items.lab)
            .values(invoice_gstin=None)
        )
        db.session.commit()
        assert gst.report(gst.parse({})).collected_without_gstin > 0  # this month's
        ids = SimpleNamespace(
            adjustment=applied.id,
            waiting=waiting.id,
            refund=failed.id,
            settlement=db.session.scalar(sa.select(Settlement.id)),
            run=run.id,
            case=db.session.scalar(
                sa.select(ReconCase.id).where(
                    ReconCase.reference == stray, ReconCase.status == "discrepancy"
                )
            ),
            reference=stray,
            payout=payout.id,
            payout_run=cycle.id,
            export=export.id,
            version=ensure_first_version().id,
            movement=db.session.scalar(sa.select(MoneyMovement.id).order_by(MoneyMovement.id)),
            coupon=db.session.scalar(sa.select(Coupon.id)),
            spec=db.session.scalar(sa.select(Specialization.id).order_by(Specialization.id)),
            unregistered=unregistered.id,
        )
        db.session.remove()
    state.admin = ids
    return state


def _admin_urls(s):
    """Each admin endpoint → its URLs (a redirect is followed: the page it lands on is
    checked, once)."""
    world, v, i, a = s.world, s.visits, s.items, s.admin
    return {
        "admin.home": ["/admin/"],
        "admin.visits": ["/admin/visits"],
        "admin.visit": [f"/admin/visits/{n}" for n in (v.several, v.carded, v.held, v.childs)],
        "admin.visit_receipt": [f"/admin/visits/{v.several}/receipt"],
        "admin.new_visit": ["/admin/visits/new"],
        "admin.new_visit_for": [f"/admin/visits/new/{world.patient.id}"],
        "admin.cancel_booking": [f"/admin/bookings/{n}/cancel" for n in (i.lab, i.started)],
        "admin.rebook_booking": [f"/admin/bookings/{i.by_doctor}/rebook"],
        "admin.reschedule_booking": [f"/admin/bookings/{i.online}/reschedule"],
        "admin.payments_monitor": ["/admin/payments"],
        "admin.approvals": ["/admin/approvals"],
        "admin.adjustments_list": ["/admin/adjustments"],
        "admin.adjustment": [f"/admin/adjustments/{n}" for n in (a.adjustment, a.waiting)],
        "admin.wallet": [f"/admin/wallets/{world.patient.id}"],
        "admin.refunds_list": ["/admin/refunds"],
        "admin.retry_refund_confirm": [f"/admin/refunds/{a.refund}/retry"],
        "admin.refund_to_wallet_confirm": [f"/admin/refunds/{a.refund}/to-wallet"],
        # No refund made on Razorpay's dashboard in this world: settling is refused and the
        # walk lands on the list with the refusal's message. Its confirmation is the shared
        # confirm template, walked at retry and to-wallet.
        "admin.settle_refund_confirm": [f"/admin/refunds/{a.refund}/settle"],
        "admin.payouts": ["/admin/payouts"],
        "admin.payout_detail": [f"/admin/payouts/{a.payout}"],
        "admin.payout_run_detail": [f"/admin/payouts/runs/{a.payout_run}"],
        "admin.payout_accounts": ["/admin/payouts/accounts"],
        "admin.payout_pay_now_confirm": [f"/admin/payouts/providers/{world.doc1}/pay"],
        "admin.transactions": ["/admin/transactions"],
        "admin.transaction_detail": [f"/admin/transactions/{a.movement}"],
        "admin.transactions_csv": ["/admin/transactions.csv"],
        "admin.settlements": ["/admin/settlements"],
        "admin.settlement_detail": [f"/admin/settlements/{a.settlement}"],
        "admin.reconciliation": ["/admin/reconciliation"],
        "admin.reconciliation_run_detail": [f"/admin/reconciliation/runs/{a.run}"],
        "admin.reconciliation_case": [f"/admin/reconciliation/cases/{a.case}"],
        "admin.reconciliation_case_by_reference": [
            f"/admin/reconciliation/cases/by-reference/{a.reference}"
        ],
        "admin.reconciliation_cases_csv": ["/admin/reconciliation/cases.csv"],
        "admin.reconciliation_runs_csv": ["/admin/reconciliation/runs.csv"],
        "admin.reports": ["/admin/reports"],
        "admin.report_gst": ["/admin/reports/gst"],
        "admin.report_tds": ["/admin/reports/tds"],
        "admin.report_audit": ["/admin/reports/audit"],
        "admin.audit": ["/admin/audit"],
        "admin.exports_list": ["/admin/exports"],
        "admin.export_detail": [f"/admin/exports/{a.export}"],
        "admin.jobs": ["/admin/jobs"],
        "admin.policy_page": ["/admin/policy"],
        "admin.policy_version": [f"/admin/policy/{a.version}"],
        "admin.coupons": ["/admin/coupons"],
        "admin.coupon_row": [f"/admin/coupons/{a.coupon}"],
        "admin.edit_coupon": [f"/admin/coupons/{a.coupon}/edit"],
        "admin.clinics": ["/admin/clinics"],
        "admin.clinic_new": ["/admin/clinics/new"],
        "admin.clinic_edit": [f"/admin/clinics/{n}/edit" for n in (world.clinic, a.unregistered)],
        "admin.clinic_row": [f"/admin/clinics/{world.clinic}/row"],
        "admin.specializations": ["/admin/specializations"],
        "admin.specialization_edit": [f"/admin/specializations/{a.spec}/edit"],
        "admin.specialization_row": [f"/admin/specializations/{a.spec}/row"],
        "admin.services": ["/admin/services"],
        "admin.service_new": ["/admin/services/new"],
        "admin.service_edit": [f"/admin/services/{world.consult}/edit"],
        "admin.service_row": [f"/admin/services/{world.consult}/row"],
        "admin.providers": ["/admin/providers"],
        "admin.provider_new": ["/admin/providers/new"],
        "admin.provider_edit": [
            f"/admin/providers/{n}/edit" for n in (world.doc1, world.lab_provider)
        ],
        "admin.provider_row": [f"/admin/providers/{world.doc1}/row"],
        "admin.users": ["/admin/users"],
        "admin.invite_user": ["/admin/users/invite"],
    }


def _routes(app):
    """{endpoint: rule} of every GET route of the walked blueprints and the admin's."""
    return {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.endpoint.split(".")[0] in (*WALKED, "admin")
    }


def _pages(s):
    """{who: [(endpoint, url, status)]}: each person's pages (the visitor's are opened in
    the patient's context before the patient signs in). The Hindi walk's URLs of htmx
    blocks (a cancel's preview, the wallet's share, a day's free times) are opened as
    the whole page they are a part of, in that state."""
    pages = defaultdict(list)
    for endpoint, visits in _urls(s).items():
        for who, url, status, _target in visits:
            if endpoint not in NOT_WALKED:
                pages[who].append((endpoint, url, status))
    for endpoint, urls in _admin_urls(s).items():
        pages["admin"] += [(endpoint, url, 200) for url in urls]
    return pages


# The forms htmx opens in a list's row: who → [(the list, what shows the form open)]. Each
# opens from the first row's Edit link; one page load a kind.
INLINE = {
    "doctor": [("/provider/availability", "#availability-windows tr.editing form")],
    "admin": [
        ("/admin/clinics", "tr.editing form"),
        ("/admin/specializations", "tr.editing form"),
        ("/admin/services", "tr.editing form"),
        ("/admin/providers", "tr.editing form"),
        ("/admin/coupons", "tr[id^=coupon-] > td[colspan] form"),
    ],
}


# Who is signed in, one after the other, in each role's browser context; the widths its
# pages are checked at (the first: every page; the others: each route's first page).
CONTEXTS = {
    "patient": (("visitor", "patient"), (PHONE, DESKTOP)),
    "provider": (("doctor", "lab", "newcomer"), (PHONE, DESKTOP)),
    "admin": (("admin",), (DESKTOP,)),
}
# Wait until htmx has no request on its way (the console's sums load after the page,
# ``hx-trigger="load"``), then check. The stylesheets are read (``preload``, for the
# orientation lock rule) on a context's first page only: they are the same on every page.
AXE_RUN = """async (preload) => {
    while (document.querySelector('.htmx-request')) await new Promise(r => setTimeout(r, 50));
    return axe.run(document, {resultTypes: ['violations'], preload});
}"""
# Ids given twice (but a hidden input's, the CSRF token's: nothing reads it). axe does not
# tell: a label's ``for`` names the first, the other field goes unnamed (a row's edit form
# opened beside the list's New form, specializations and coupons, had every field's).
TWICE = """() => {
    const seen = new Set(), twice = new Set();
    document.querySelectorAll('[id]:not(input[type=hidden])').forEach(e => {
        (seen.has(e.id) ? twice : seen).add(e.id);
    });
    return [...twice];
}"""
# The menus open: the phone's Menu list (its checkbox ticked) and the admin's groups.
OPEN_MENUS = """() => {
    const toggle = document.querySelector('#menu-toggle');
    if (toggle) toggle.checked = true;
    document.querySelectorAll('details.nav-group').forEach(d => d.open = true);
}"""


class Walk:
    """One browser context's pages checked: violations by (rule, impact) → [(where,
    how many elements, the first targets)], files left out, answers that were not the
    page expected, JavaScript errors."""

    def __init__(self, browser, live_server, widths):
        self.base, self.widths = live_server, widths
        self.context = browser.new_context(
            base_url=live_server,
            viewport=widths[0],
            locale="en-IN",
            timezone_id="Asia/Kolkata",
            bypass_csp=True,  # only so that axe-core can be injected
        )
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(path=AXE)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"{self.page.url}: {exc}"))
        self.violations = defaultdict(list)
        self.files, self.wrong = [], []
        self.checked, self.seen, self.routes = 0, set(), set()
        self.began, self.took = time.monotonic(), None

    def sign_in(self, user):
        self.context.clear_cookies()
        self.page.set_viewport_size(self.widths[0])
        if user is not None:
            page = self.page
            page.goto("/auth/login")
            page.fill("input[name=email]", user.email)
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert "/auth/login" not in page.url, f"{user.email} was not signed in"

    def check(self, where, width):
        if width == PHONE:  # and no sideways scrolling on a phone (docs/mobile.md)
            wide = self.page.evaluate("document.scrollingElement.scrollWidth")
            if wide > PHONE["width"]:
                self.wrong.append(f"{where}: {wide} px wide")
        twice = self.page.evaluate(TWICE)
        if twice:
            self.wrong.append(f"{where}: ids given twice: {twice}")
        result = self.page.evaluate(AXE_RUN, self.checked == 0)
        self.checked += 1
        for v in result["violations"]:
            targets = [n["target"] for n in v["nodes"]]
            self.violations[(v["id"], v["impact"])].append((where, len(targets), targets[:3]))

    def open(self, who, endpoint, url, status):
        """Open ``url``; check the page it lands on (once for ``who``) at the first
        width, and at the others when it is the route's first page."""
        from playwright.sync_api import Error

        page = self.page
        page.set_viewport_size(self.widths[0])
        try:
            answer = page.goto(url, wait_until="load")
        except Error as exc:
            if "Download is starting" not in str(exc):
                raise
            answer = self.context.request.get(url)
        # The status first: a file is left out only once it is the answer expected.
        if answer.status not in ({200, status} if status >= 400 else {200}):
            self.wrong.append(f"{who} {url}: {answer.status}, not {status}")
        kind = answer.headers.get("content-type", "")
        if not kind.startswith("text/html"):
            self.files.append((endpoint, kind))
            return
        landed = page.url.removeprefix(self.base)
        if (who, landed) in self.seen:
            return
        self.seen.add((who, landed))
        first = endpoint not in self.routes
        self.routes.add(endpoint)
        for width in self.widths if first else self.widths[:1]:
            page.set_viewport_size(width)
            self.check(f"{who} {landed} @{width['width']}", width)

    def inline(self, who, url, opened):
        """``url``'s first row's Edit clicked (htmx swaps its form into the row): the page
        checked with it open, at each width."""
        page = self.page
        page.set_viewport_size(self.widths[0])
        page.goto(url)
        page.locator("main tbody tr").locator("a[hx-get]", has_text="Edit").first.click()
        page.locator(opened).wait_for()
        for width in self.widths:
            page.set_viewport_size(width)
            self.check(f"{who} {url} (a row's form open) @{width['width']}", width)

    def menus(self, who):
        """The page's menus open, at the first width."""
        self.page.set_viewport_size(self.widths[0])
        self.page.evaluate(OPEN_MENUS)
        where = f"{who} {self.page.url.removeprefix(self.base)} (menus open)"
        self.check(where, self.widths[0])

    def close(self):
        self.context.close()
        self.took = time.monotonic() - self.began


def test_every_page_passes_axe_and_fits_a_phone(rich, app, browser, live_server):
    routes, pages = _routes(app), _pages(rich)
    walked = {endpoint for who in pages.values() for endpoint, _url, _status in who}
    unknown = set(routes) - walked - set(NOT_WALKED)
    assert not unknown, f"GET routes the walk does not open (add them): {unknown}"
    world = rich.world
    people = {
        "visitor": None,
        "patient": world.patient,
        "doctor": world.provider_user,
        "lab": rich.lab_user,
        "newcomer": rich.newcomer,
        "admin": world.admin,
    }
    walks = []
    app.config["WTF_CSRF_ENABLED"] = True
    began = time.monotonic()
    try:
        with time_machine.travel(READ, tick=True):
            for who_all, widths in CONTEXTS.values():
                walk = Walk(browser, live_server, widths)
                walks.append(walk)
                try:
                    for who in who_all:
                        walk.sign_in(people[who])
                        for n, (endpoint, url, status) in enumerate(pages[who]):
                            walk.open(who, endpoint, url, status)
                            if n == 0:
                                walk.menus(who)
                        for url, opened in INLINE.get(who, ()):
                            walk.inline(who, url, opened)
                finally:
                    walk.close()
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    took = time.monotonic() - began
    violations = defaultdict(list)
    for walk in walks:
        for key, found in walk.violations.items():
            violations[key] += found
    files = [f for walk in walks for f in walk.files]
    print(f"\naxe: {sum(w.checked for w in walks)} checks in {took:.1f} s; files: {files}")
    for role, walk in zip(CONTEXTS, walks, strict=True):
        print(f"  {role}: {walk.checked} checks of {len(walk.seen)} pages in {walk.took:.1f} s")
    for (rule, impact), found in sorted(violations.items()):
        print(f"  {impact} {rule}: {len(found)} pages, e.g. {found[:2]}")
    violated = [
        f"{rule} ({impact}): {where}: {count} × {targets}"
        for (rule, impact), found in sorted(violations.items())
        for where, count, targets in found
    ]
    wrong = [line for walk in walks for line in walk.wrong + walk.errors]
    filed = {endpoint for endpoint, _kind in files}
    if filed != set(FILES):
        wrong.append(f"files: {sorted(filed)}, not {sorted(FILES)}")
    assert wrong + violated == [], "\n".join(wrong + violated)
