"""The policy's "TDS rate without a PAN (206AA)": kept per financial year with the 194J
rule, edited on /admin/policy beside it, at least 20% (the section's own floor) and never
below the TDS rate; a change waits for a second administrator, as every TDS change."""

import re

from portal.config import policy
from portal.policies import service as svc
from portal.policies import store
from tests.policies.test_policy_web import _field_html, count_versions, form_data

FIELD = "tds_rules__0__no_pan_rate_bps"
REASON = "206AA rate set as the finance team asked"


def test_the_form_shows_the_rate_with_its_floor(app, client, make_user, login):
    login(make_user("admin"))
    html = client.get("/admin/policy").get_data(as_text=True)
    field = _field_html(html, FIELD)
    assert "TDS rate without a PAN (206AA) (%)" in field
    assert re.search(rf'name="{FIELD}"[^>]*value="20"', field)
    assert "At least 20 (section 206AA)." in field
    assert "A change needs a second administrator." in field


def test_a_rate_below_20_percent_is_refused_beside_the_field(app, client, make_user, login):
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, **{FIELD: "15"}))
    assert answer.status_code == 422
    field = _field_html(answer.get_data(as_text=True), FIELD)
    assert "Section 206AA deducts at least 20% from a payee without a PAN: enter 20 or more." in (
        field
    )
    assert count_versions(app) == 0


def test_a_rate_below_the_194j_rate_is_refused_beside_the_field(app, client, make_user, login):
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy", data=form_data(app, tds_rules__0__rate_bps="25", **{FIELD: "20"})
    )
    assert answer.status_code == 422
    field = _field_html(answer.get_data(as_text=True), FIELD)
    assert (
        "The TDS rate without a PAN cannot be below the TDS rate (25%): section 206AA deducts "
        "the higher of the two."
    ) in field
    assert count_versions(app) == 0


def test_a_raised_rate_is_approved_by_a_second_admin_and_kept_per_year(ctx, admins):
    maker, checker = admins
    version = svc.propose(
        maker,
        {"tds_rules.0.from_fy": "2027-28", "tds_rules.0.no_pan_rate_bps": 3_000},
        reason=REASON,
    )
    assert version.needs_approval
    svc.approve(checker, version.id, note="Checked with the CA")
    store.forget()
    assert policy().tds_rule_for("2027-28").no_pan_rate_bps == 3_000
    assert policy().tds_rule_for("2026-27").no_pan_rate_bps == 2_000  # its own year's
