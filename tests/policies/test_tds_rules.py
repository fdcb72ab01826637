"""A TDS rule from a later financial year (review finding): on /admin/policy "TDS from
financial year 2027-28, rate 2%" edited the only rule, and ``tds_rule_for`` gives a year
before every rule the first one, so FY 2026-27 was taxed at 2% at once. An edit of the
form's rule means "from year X on": the earlier years keep their own rule."""

import re

import sqlalchemy as sa

from portal.config import policy
from portal.domain.policy import TdsRule
from portal.extensions import db
from portal.policies import service as svc
from portal.policies import store
from portal.policies.models import PolicyVersion
from tests.policies.test_policy_web import form_data

REASON = "New rate announced in the budget for next year"
TEN = TdsRule("2025-26", 1_000, 5_000_000, "194J")


def _approved(admins, changes):
    maker, checker = admins
    version = svc.propose(maker, changes, reason=REASON)
    svc.approve(checker, version.id, note="Checked with the CA")
    store.forget()
    return version


def test_a_rate_set_from_next_financial_year_does_not_apply_to_this_one(ctx, clock, admins):
    _approved(admins, {"tds_rules.0.from_fy": "2027-28", "tds_rules.0.rate_bps": 200})
    assert policy().tds_rule_for("2027-28").rate_bps == 200
    assert policy().tds_rule_for("2026-27") == TEN, "this year is taxed at next year's rate"
    assert policy().tds_rules == (TdsRule("2027-28", 200, 5_000_000, "194J"), TEN)


def test_the_form_rule_changes_its_own_year_on_and_never_an_earlier_one(ctx, clock, admins):
    _approved(admins, {"tds_rules.0.from_fy": "2027-28", "tds_rules.0.rate_bps": 200})
    # The newest rule's rate corrected, same year: edited in place.
    _approved(admins, {"tds_rules.0.rate_bps": 300})
    assert [(r.from_fy, r.rate_bps) for r in policy().tds_rules] == [
        ("2027-28", 300),
        ("2025-26", 1_000),
    ]
    # From this year (2026-27) on, 5%: the 2027-28 rule is replaced, 2025-26 kept.
    _approved(admins, {"tds_rules.0.from_fy": "2026-27", "tds_rules.0.rate_bps": 500})
    assert [(r.from_fy, r.rate_bps) for r in policy().tds_rules] == [
        ("2026-27", 500),
        ("2025-26", 1_000),
    ]
    assert policy().tds_rule_for("2027-28").rate_bps == 500


def test_the_policy_page_adds_the_rule_and_shows_the_earlier_years(app, client, make_user, login):
    """Through the form: the pending change says what it adds, and once approved the form
    shows the new rule with the earlier years' rule beside "TDS from financial year"."""
    maker, checker = make_user("admin"), make_user("admin")
    login(maker)
    answer = client.post(
        "/admin/policy",
        data=form_data(app, tds_rules__0__from_fy="2027-28", tds_rules__0__rate_bps="2"),
    )
    assert answer.status_code == 303
    page = client.get("/admin/policy").get_data(as_text=True)
    assert "TDS from financial year: 2025-26 → 2027-28" in page
    assert "TDS rate (%): 10 → 2" in page
    assert "Earlier TDS rule 1: from financial year: — → 2025-26" in page
    assert "Earlier TDS rule 1: rate (%): — → 10" in page
    with app.app_context():
        version_id = db.session.scalars(
            sa.select(PolicyVersion.id).where(PolicyVersion.status == "PENDING")
        ).one()
    client.post("/auth/logout")
    login(checker)
    assert (
        client.post(f"/admin/policy/{version_id}/approve", data={"note": "ok"}).status_code == 303
    )
    html = client.get("/admin/policy").get_data(as_text=True)
    assert re.search(r'name="tds_rules__0__from_fy"[^>]*value="2027-28"', html)
    assert re.search(r'name="tds_rules__0__rate_bps"[^>]*value="2"', html)
    assert (
        "Earlier years: from 2025-26: 10% once the year&#39;s gross exceeds ₹50,000"
        " (section 194J), 20% without a PAN (section 206AA)." in html
    )
    version = client.get(f"/admin/policy/{version_id}").get_data(as_text=True)
    values = version.split("<h2>Values</h2>")[1]
    assert re.search(r"<td>Earlier TDS rule 1: rate \(%\)</td><td>10</td>", values)
    assert re.search(r"<td>TDS rate \(%\)</td><td>2</td>", values)
    with app.app_context():
        store.forget()
        assert policy().tds_rule_for("2026-27").rate_bps == 1_000
