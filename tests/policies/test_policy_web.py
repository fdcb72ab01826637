"""The policy page: the form shows the policy in force in ₹, % and hours; a bad edit comes
back with its messages and saves nothing; a money edit waits for a second administrator,
who approves it on the same page."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.config import policy
from portal.domain.schedule import may_retry_payment, needs_intervention
from portal.extensions import db
from portal.policies import store
from portal.policies.models import PolicyVersion
from portal.web.forms.policy import SPEC, field_name, form_for

REASON = "Quarterly review of the cancellation tiers"


def form_data(app, **changes):
    from portal.domain.policy import DEFAULT_POLICY
    from portal.domain.policy_data import to_data

    with app.test_request_context():
        form = form_for(to_data(DEFAULT_POLICY))
        data = {field_name(path): form[field_name(path)].data for _, path, _, _ in SPEC}
    data.update({"reason": REASON, **changes})
    return data


def _field_html(html, name):
    """The form's block of one field (its label, input and messages), "" when absent."""
    found = re.search(rf'<div class="field[^"]*">\s*<label for="{name}".*?</div>', html, re.S)
    return found.group(0) if found else ""


def count_versions(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion))


def test_the_form_shows_the_policy_in_force(app, client, make_user, login):
    login(make_user("admin"))
    page = client.get("/admin/policy")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="patient_cancellation_tiers__1__refund_bps"' in html
    assert re.search(r'name="patient_cancellation_tiers__1__refund_bps"[^>]*value="75"', html)
    assert re.search(r'name="patient_cancellation_tiers__1__deduction"[^>]*value="100"', html)
    assert re.search(r'name="reschedule_tiers__0__more_than"[^>]*value="72"', html)
    assert re.search(r'name="reminder_offsets"[^>]*value="1440, 60, 15"', html)
    assert "POLICY.md&#39;s defaults" in html or "POLICY.md's defaults" in html


def test_tiers_out_of_order_and_percentages_over_100_save_nothing(app, client, make_user, login):
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy",
        data=form_data(
            app,
            patient_cancellation_tiers__1__notice="72",
            platform_fee_bps="105",
        ),
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Cancellation tiers must go from the longest notice down: tier 2" in html
    assert "Enter a percentage between 0 and 100." in html
    assert count_versions(app) == 0


def test_values_that_do_not_parse_save_nothing(app, client, make_user, login):
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy",
        data=form_data(app, payout_minimum="five hundred", reminder_offsets="60, soon"),
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Enter an amount in rupees" in html and "Enter whole minutes separated by commas" in html
    assert count_versions(app) == 0


def test_reminders_in_part_minutes_are_refused_beside_the_field(app, client, make_user, login):
    """120 and 120.5 minutes both passed and both became the "2h" reminder (a reminder is
    kept by its whole minute): only one was ever scheduled, silently. Reminders are whole
    minutes; the same minute twice is refused too."""
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, reminder_offsets="1440, 120, 120.5"))
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    field = re.search(
        r'<div class="field[^"]*">\s*<label for="reminder_offsets".*?</div>', html, re.S
    )
    assert "Reminders are set in whole minutes: 120.5 is not a whole number of minutes." in (
        field.group(0)
    )
    answer = client.post("/admin/policy", data=form_data(app, reminder_offsets="120, 60, 120.0"))
    assert answer.status_code == 422
    assert (
        "Two reminders are at the same time (120 minutes before the visit): enter each time once."
        in answer.get_data(as_text=True)
    )
    assert count_versions(app) == 0
    # Whole minutes, each once: saved, and shown back as typed.
    answer = client.post("/admin/policy", data=form_data(app, reminder_offsets="1440, 120, 90"))
    assert answer.status_code == 303
    html = client.get("/admin/policy").get_data(as_text=True)
    assert re.search(r'name="reminder_offsets"[^>]*value="1440, 120, 90"', html)


def test_the_reminder_refusal_is_said_in_hindi(app, client, make_user, login):
    login(make_user("admin"))
    client.post("/language", data={"language": "hi", "next": "/"})
    answer = client.post("/admin/policy", data=form_data(app, reminder_offsets="120, 120.5"))
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "रिमाइंडर पूरे मिनटों में तय होते हैं: 120.5 पूरे मिनट नहीं है।" in html
    assert "Reminders are set in whole minutes" not in html
    assert count_versions(app) == 0


def test_an_hours_value_too_large_for_a_duration_is_a_message_not_a_500(
    app, client, make_user, login
):
    """12 digits of hours parse, but no timedelta holds them (an OverflowError was a 500):
    the domain's upper bound refuses them beside the field."""
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, link_max_lifetime="999999999999"))
    assert answer.status_code == 422
    assert "Enter a duration of at most 365 days." in answer.get_data(as_text=True)
    assert count_versions(app) == 0


@pytest.mark.parametrize(
    "field", ["link_max_lifetime", "patient_cancellation_tiers__0__notice", "reminder_offsets"]
)
@pytest.mark.parametrize("typed", ["1e999999999", "9" * 40])
def test_a_huge_duration_is_a_message_not_a_500(app, client, make_user, login, field, typed):
    """Review rv_forms: "1e999999999" parsed as a Decimal and ``value * 3600`` raised
    decimal.Overflow (a 500). A duration is read as every typed number is (no exponent);
    40 digits are "That number is too large." before any arithmetic."""
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, **{field: typed}))
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    message = "Enter a number such as 24 or 1.5." if "e" in typed else "That number is too large."
    if field == "reminder_offsets":
        message = "Enter whole minutes separated by commas"
    assert _field_html(html, field) and message in _field_html(html, field)
    assert count_versions(app) == 0


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1_0", "Type the number without spaces, underscores or commas, e.g. 24 or 1.5."),
        ("1 0", "Type the number without spaces, underscores or commas, e.g. 24 or 1.5."),
        ("1,0", "Type the number without spaces, underscores or commas, e.g. 24 or 1.5."),
        ("1e1", "Enter a number such as 24 or 1.5."),
        (".5", "Enter a number such as 24 or 1.5."),
        ("NaN", "Enter a number such as 24 or 1.5."),
        ("١٠", "Type the number in the digits 0–9 or ०–९, one kind throughout."),
        ("１０", "Type the number in the digits 0–9 or ०–९, one kind throughout."),
    ],
)
def test_an_hours_value_is_read_by_the_forms_number_rules(
    app, client, make_user, login, typed, message
):
    """Review rv_forms: the same form refuses "1_0", "1e1" and other scripts' digits in a
    percentage or an amount (docs/security.md, "Numbers typed"), but Python's Decimal read
    each as 10 hours in a duration. Now a duration is read by the same rules."""
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, link_before_start=typed))
    assert answer.status_code == 422
    assert message in _field_html(answer.get_data(as_text=True), "link_before_start")
    assert count_versions(app) == 0


def test_durations_in_devanagari_digits_and_decimals_are_read(app, client, make_user, login):
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy",
        data=form_data(app, link_before_start="१.५", no_show_grace="90", attention_window="0.25"),
    )
    assert answer.status_code == 303
    with app.app_context():
        store.forget()
        pol = policy()
        assert pol.link_before_start == timedelta(minutes=90)
        assert pol.no_show_grace == timedelta(minutes=90)
        assert pol.attention_window == timedelta(minutes=15)


def test_failed_attempts_before_an_alert_is_bounded(app, client, make_user, login):
    """Review rv_forms: docs/decisions.md leaves the alert thresholds with one administrator
    because each is bounded; this one was not: 999,999,999 was saved and applied at once,
    and no visit was ever flagged for failed payments."""
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy", data=form_data(app, payment_failures_for_intervention="999999999")
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Enter a whole number of at most 20." in _field_html(
        html, "payment_failures_for_intervention"
    )
    assert count_versions(app) == 0


def test_the_intervention_threshold_cannot_exceed_the_attempts_a_patient_may_make(
    app, client, make_user, login
):
    """Review rv_forms: 6 failures for intervention with 5 attempts allowed: after the 5th
    failure the patient may not retry and the threshold is never reached. Refused beside
    the field; raising both together is fine."""
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy", data=form_data(app, payment_failures_for_intervention="6")
    )
    assert answer.status_code == 422
    assert (
        "Failed attempts before an alert cannot be more than the payment attempts allowed (5)."
        in _field_html(answer.get_data(as_text=True), "payment_failures_for_intervention")
    )
    assert count_versions(app) == 0
    answer = client.post(
        "/admin/policy",
        data=form_data(app, payment_failures_for_intervention="6", payment_max_attempts="6"),
    )
    assert answer.status_code == 303
    with app.app_context():
        store.forget()
        _, pol = store.in_force()
        assert needs_intervention(6, policy=pol) and not may_retry_payment(6, pol)


def test_an_attention_window_too_long_is_refused_and_the_admin_home_keeps_working(
    app, client, make_user, login
):
    """An 11-digit window is a valid timedelta, would apply at once (no money, no second
    admin), and then every page adding it to now overflowed: it is refused at entry."""
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, attention_window="20000000000"))
    assert answer.status_code == 422
    assert count_versions(app) == 0
    assert client.get("/admin/").status_code == 200


def test_a_digit_python_reads_but_int_cannot_is_a_message_not_a_500(app, client, make_user, login):
    """ "²".isdigit() is True, int("²") raises: a count field takes ASCII digits only."""
    login(make_user("admin"))
    answer = client.post("/admin/policy", data=form_data(app, payment_max_attempts="²"))
    assert answer.status_code == 422
    assert "Enter a whole number." in answer.get_data(as_text=True)
    assert count_versions(app) == 0


def test_a_money_edit_is_approved_by_a_second_admin(app, client, make_user, login):
    maker, checker = make_user("admin"), make_user("admin")
    login(maker)
    answer = client.post(
        "/admin/policy", data=form_data(app, patient_cancellation_tiers__1__refund_bps="50")
    )
    assert answer.status_code == 303
    with app.app_context():
        version = db.session.scalars(
            sa.select(PolicyVersion).where(PolicyVersion.status == "PENDING")
        ).one()
        version_id = version.id
        assert version.values["patient_cancellation_tiers"][1]["refund_bps"] == 5_000
    page = client.get("/admin/policy").get_data(as_text=True)
    assert "Tier 2: refund (%): 75 → 50" in page
    assert "Another administrator must approve." in page
    client.post(f"/admin/policy/{version_id}/approve", data={"note": ""})
    with app.app_context():
        assert db.session.get(PolicyVersion, version_id).status == "PENDING"
    client.post("/auth/logout")
    login(checker)
    answer = client.post(f"/admin/policy/{version_id}/approve", data={"note": "ok"})
    assert answer.status_code == 303
    with app.app_context():
        assert db.session.get(PolicyVersion, version_id).status == "APPROVED"
    page = client.get(f"/admin/policy/{version_id}").get_data(as_text=True)
    assert "Approved" in page and "Tier 2: refund (%)" in page


def test_a_form_opened_before_another_admins_change_is_refused_not_saved_over_it(
    app, client, make_user, login
):
    from portal.accounts.models import User
    from portal.policies import service as svc

    editor, other = make_user("admin"), make_user("admin")
    login(editor)
    page = client.get("/admin/policy").get_data(as_text=True)
    [opened_on] = re.findall(r'name="base_version"[^>]*value="(\d+)"', page)
    with app.app_context():  # meanwhile, another administrator changes something else
        svc.propose(
            db.session.get(User, other.id), {"payment_failures_for_intervention": 4}, reason=REASON
        )
    answer = client.post(
        "/admin/policy",
        data=form_data(app, payment_max_attempts="6", base_version=opened_on),
    )
    assert answer.status_code == 422
    assert "Another administrator changed the policy while you were editing it" in (
        answer.get_data(as_text=True)
    )
    assert count_versions(app) == 2  # the defaults and the other's change, not undone
    page = client.get("/admin/policy").get_data(as_text=True)
    assert re.search(r'name="payment_failures_for_intervention"[^>]*value="4"', page)
    [fresh] = re.findall(r'name="base_version"[^>]*value="(\d+)"', page)
    answer = client.post(
        "/admin/policy",
        data=form_data(
            app, payment_max_attempts="6", payment_failures_for_intervention="6", base_version=fresh
        ),
    )
    assert answer.status_code == 303


def test_a_scheduled_change_is_withdrawn_from_the_policy_page(app, client, make_user, login):
    from datetime import datetime, timedelta

    from portal.domain.timezone import CLINIC_TZ

    login(make_user("admin"))
    typo = (datetime.now(CLINIC_TZ) + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M")
    answer = client.post("/admin/policy", data=form_data(app, effective_from=typo))
    assert answer.status_code == 422
    assert "Effective from can be at most a year from now." in answer.get_data(as_text=True)
    later = (datetime.now(CLINIC_TZ) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(
        "/admin/policy", data=form_data(app, no_show_grace="60", effective_from=later)
    )
    assert answer.status_code == 303
    with app.app_context():
        version_id = db.session.scalars(
            sa.select(PolicyVersion.id).order_by(PolicyVersion.id.desc())
        ).first()
    withdraw = f"/admin/policy/{version_id}/withdraw"
    page = client.get("/admin/policy").get_data(as_text=True)
    assert f'action="{withdraw}"' in page and "Withdraw this change" in page
    assert f'action="{withdraw}"' in client.get(f"/admin/policy/{version_id}").get_data(
        as_text=True
    )
    answer = client.post(withdraw, data={"note": "Typo"}, follow_redirects=True)
    assert "Say why the change is withdrawn (at least 10 characters)." in answer.get_data(
        as_text=True
    )
    answer = client.post(withdraw, data={"note": "Wrong month, see ticket 12"})
    assert answer.status_code == 303
    with app.app_context():
        assert db.session.get(PolicyVersion, version_id).status == "WITHDRAWN"
    page = client.get(f"/admin/policy/{version_id}").get_data(as_text=True)
    assert "Withdrawn by" in page and "Wrong month, see ticket 12" in page
    assert f'action="{withdraw}"' not in page
    client.post("/auth/logout")
    login(make_user("patient"))
    assert client.post(withdraw, data={"note": "Wrong month, see ticket 12"}).status_code == 403


def test_patients_cannot_see_it(client, make_user, login):
    login(make_user("patient"))
    assert client.get("/admin/policy").status_code == 403


def test_the_approvals_queue_lists_and_decides_policy_changes(app, client, make_user, login):
    maker, checker = make_user("admin"), make_user("admin")
    login(maker)
    client.post("/admin/policy", data=form_data(app, gst_bps="12"))
    with app.app_context():
        version_id = db.session.scalars(
            sa.select(PolicyVersion.id).where(PolicyVersion.status == "PENDING")
        ).one()
    client.post(f"/admin/approvals/policy/{version_id}/approve", data={"note": ""})
    with app.app_context():
        assert db.session.get(PolicyVersion, version_id).status == "PENDING"  # the maker
    client.post("/auth/logout")
    login(checker)
    queue = client.get("/admin/approvals?kind=policy").get_data(as_text=True)
    assert f"Policy version {version_id}" in queue and "18% → 12% from" in queue
    answer = client.post(f"/admin/approvals/policy/{version_id}/approve", data={"note": "ok"})
    assert answer.status_code == 303
    with app.app_context():
        assert db.session.get(PolicyVersion, version_id).status == "APPROVED"
    assert client.post("/admin/approvals/policy/999999/approve", data={}).status_code == 404


def test_the_approvals_queue_says_a_money_change_was_withdrawn(app, client, make_user, login):
    """The queue listed a withdrawn money change as "Approved by <the checker>", though it
    never applied."""
    from datetime import timedelta

    from portal.accounts.models import User
    from portal.db import utcnow
    from portal.policies import service as svc

    maker_id = make_user("admin", email="maker@example.com").id
    checker = make_user("admin", email="checker@example.com", name="Ravi Checker")
    with app.app_context():
        maker, approver = db.session.get(User, maker_id), db.session.get(User, checker.id)
        reason = "Policy review of June 2026"
        money = svc.propose(
            maker, {"gst_bps": 1200}, effective_from=utcnow() + timedelta(days=30), reason=reason
        )
        svc.approve(approver, money.id, note="Checked against the notification")
        svc.withdraw(maker, money.id, note="The GST notification was rescinded")
        version_id = money.id
        db.session.remove()
    login(checker)
    html = client.get("/admin/approvals?kind=policy").get_data(as_text=True)
    assert f"Policy version {version_id}" in html
    assert "Approved (withdrawn before it applied) by Ravi Checker" in html
    assert "Approved by Ravi Checker" not in html


def test_a_rate_typed_with_an_underscore_or_a_comma_saves_nothing(app, client, make_user, login):
    """The policy's rates are read as every percentage is (docs/security.md "Money
    typed"): "1_0" and "1,0" were 10 %, now each is a message beside its field."""
    login(make_user("admin"))
    answer = client.post(
        "/admin/policy",
        data=form_data(app, platform_fee_bps="1_0", commission_bps="1,0"),
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert html.count("Type the percentage without spaces, underscores or commas") == 2
    assert count_versions(app) == 0


def test_a_policy_change_in_the_queue_describes_itself(app, client, make_user, login):
    """Review finding: the queue asked "Approve the extra refund of ₹0 (Policy version 2)?",
    showed ₹0 as its amount and "Changes platform fee bps; from 2026-12-06 06:52 UTC", while
    the policy page said "5 → 6" in IST. A policy change says what changes and when, in
    clinic time, and has no amount."""
    from datetime import UTC, datetime

    from portal.accounts.models import User
    from portal.policies import service as svc

    maker_id = make_user("admin", email="maker@example.com").id
    checker = make_user("admin", email="checker@example.com")
    with app.app_context():
        maker = db.session.get(User, maker_id)
        when = datetime(2026, 12, 6, 6, 52, tzinfo=UTC)
        version_id = svc.propose(
            maker, {"platform_fee_bps": 600}, effective_from=when, reason="Quarterly review",
            now=datetime(2026, 12, 1, tzinfo=UTC),
        ).id  # fmt: skip
        db.session.remove()
    login(checker)
    html = client.get("/admin/approvals?kind=policy").get_data(as_text=True)
    row = html.split(f'id="policy-approval-{version_id}"')[1].split("</tr>")[0]
    assert "Platform fee 5% → 6% from 6 Dec 2026, 12:22 IST" in row
    assert "extra refund" not in row and "₹0" not in row
    assert "Approve the policy change (Policy version" in row
    with app.app_context():  # the line is the source's own (the page adds no rule per kind)
        from portal.approvals.sources import _policy_describe, _policy_load

        detail = _policy_describe(_policy_load([version_id])[version_id]).detail
        assert detail == "Platform fee 5% → 6% from 6 Dec 2026, 12:22 IST"
    assert '<td class="num">—</td>' in row


def test_the_approvals_queue_reads_what_each_policy_change_changes_in_a_fixed_count(
    app, client, make_user, login
):
    """Review finding: each policy row read the version before it twice (the queue's line
    and the source's description), one query each: up to 2 x 80 on one page. They are
    now read in one statement for the page, and shared by both lines. (One change waits at
    a time; the decided ones are policy rows of the same page.)"""
    from datetime import UTC, datetime, timedelta

    from portal.accounts.models import User
    from portal.policies import service as svc
    from tests.querycount import counted_queries

    maker_id = make_user("admin", email="maker@example.com").id
    checker = make_user("admin", email="checker@example.com")
    first = datetime(2026, 12, 6, 6, 52, tzinfo=UTC)

    def propose(start, n):
        """Changes ``start`` … ``start + n - 1``: each approved, then one more left waiting."""
        with app.app_context():
            maker, approver = db.session.get(User, maker_id), db.session.get(User, checker.id)
            for i in range(start, start + n + 1):
                version = svc.propose(
                    maker, {"platform_fee_bps": 600 + i}, effective_from=first + timedelta(days=i),
                    reason="Quarterly review", now=datetime(2026, 12, 1, tzinfo=UTC),
                )  # fmt: skip
                if i < start + n:
                    svc.approve(
                        approver, version.id, note="ok", now=datetime(2026, 12, 1, tzinfo=UTC)
                    )
            db.session.remove()

    def queue():
        with counted_queries() as statements:
            html = client.get("/admin/approvals?kind=policy").get_data(as_text=True)
        return html, len(statements)

    login(checker)
    propose(0, 1)  # one decided, one waiting
    queue()  # warm: the policy cache, the session's user
    html, few = queue()
    assert "Platform fee 5% → 6% from 6 Dec 2026, 12:22 IST" in html
    assert "Platform fee 6% → 6.01% from 7 Dec 2026, 12:22 IST" in html
    with app.app_context():  # the waiting one decided, five more decided, one waiting
        version_id = db.session.scalars(
            sa.select(PolicyVersion.id).where(PolicyVersion.status == "PENDING")
        ).one()
        svc.approve(db.session.get(User, checker.id), version_id, note="ok",
                    now=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
        db.session.remove()
    propose(2, 5)
    queue()  # warm again: the policy cache reads the versions approved since
    html, many = queue()
    assert "Platform fee 6.06% → 6.07% from 13 Dec 2026, 12:22 IST" in html
    assert html.count("Platform fee ") == 8
    assert many == few
    with app.app_context():  # the page's one statement says what each row's own would
        from portal.policies import store

        versions = db.session.scalars(sa.select(PolicyVersion)).all()
        assert store.policy_versions_before(versions) == {
            v.id: store.policy_version_before(v) for v in versions
        }
