"""The audit log viewer: filters by actor, action (or a prefix), object and clinic
dates; a backwards range, one over a year, a bad date and an unknown actor each get a
clear message; keyset pages; object pages link to their own history."""

import re
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.audit.queries import (
    MSG_BACKWARDS,
    MSG_NO_ACTOR,
    MSG_TOO_LONG,
    AuditFilter,
    clinic_midnight,
)
from portal.extensions import db
from portal.reports.periods import MSG_DATE
from portal.wallet import adjustments as adj
from tests.wallet.conftest import fresh


def entry(app, action, obj_type, obj_id, at, actor=None):
    with app.app_context():
        db.session.add(
            AuditEntry(
                action=action, object_type=obj_type, object_id=str(obj_id), at=at, actor_id=actor
            )
        )
        db.session.commit()


def rows(html):
    return re.findall(r'<tr id="audit-(\d+)">', html)


def table(html):
    """Only the results (the filter's choices name every action too)."""
    return html[html.index('id="audit-entries"') :]


@pytest.fixture
def logged_in(client, login, people):
    login(people.admin)
    return client


def test_only_admins_see_the_audit_log(client, login, people):
    login(people.patient)
    assert client.get("/admin/audit").status_code == 403


def test_filter_by_object_actor_action_and_prefix(app, logged_in, people):
    with app.app_context():
        a = adj.create_adjustment(
            fresh(people.admin),
            people.patient.id,
            adj.CREDIT,
            15_000_00,
            "A note long enough",
            "Why",
        )
        adj.approve_adjustment(fresh(people.admin2), a.id, "ok")
        a_id = a.id
    entry(app, "payout.created", "payout", 7, datetime(2026, 3, 1, tzinfo=UTC))
    html = table(
        logged_in.get(f"/admin/audit?object_type=wallet_adjustment&object_id={a_id}").get_data(
            as_text=True
        )
    )
    assert len(rows(html)) == 2
    assert "wallet.adjustment_requested" in html and "wallet.adjustment_approved" in html
    assert "payout.created" not in html
    html = table(logged_in.get(f"/admin/audit?actor={people.admin2.email}").get_data(True))
    assert "wallet.adjustment_approved" in html and "wallet.adjustment_requested" not in html
    html = table(
        logged_in.get(f"/admin/audit?actor={people.admin.id}&action=wallet.").get_data(True)
    )
    assert len(rows(html)) == 1 and "wallet.adjustment_requested" in html
    assert ">login<" not in html
    html = logged_in.get("/admin/audit?action=payout.created").get_data(as_text=True)
    assert len(rows(html)) == 1


def test_dates_are_clinic_dates(app, logged_in):
    # 31 March 2026, 23:30 IST is 18:00 UTC: it belongs to the 31st, not the 1st of April.
    entry(app, "payout.created", "payout", 1, datetime(2026, 3, 31, 18, 0, tzinfo=UTC))
    entry(app, "payout.created", "payout", 2, datetime(2026, 3, 31, 18, 31, tzinfo=UTC))  # 1 Apr
    html = logged_in.get(
        "/admin/audit?action=payout.created&date_from=2026-03-31&date_to=2026-03-31"
    ).get_data(as_text=True)
    assert len(rows(html)) == 1 and ">payout 1<" in html
    html = logged_in.get("/admin/audit?action=payout.created&date_from=2026-04-01").get_data(
        as_text=True
    )
    assert len(rows(html)) == 1 and ">payout 2<" in html


@pytest.mark.parametrize(
    "query, message",
    [
        ("date_from=2026-04-10&date_to=2026-04-01", MSG_BACKWARDS),
        ("date_from=2025-01-01&date_to=2026-01-02", MSG_TOO_LONG),
        ("date_from=2026-13-01", MSG_DATE),
        ("date_to=yesterday", MSG_DATE),
        ("actor=nobody@example.com", MSG_NO_ACTOR),
    ],
)
def test_bad_filters_get_a_clear_message(logged_in, query, message):
    r = logged_in.get(f"/admin/audit?{query}")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert message in html and 'id="audit-entries"' not in html


def test_a_year_exactly_is_allowed():
    assert AuditFilter(date_from=date(2025, 4, 1), date_to=date(2026, 3, 31)).problems() == {}
    assert AuditFilter(date_from=date(2024, 1, 1), date_to=date(2024, 12, 31)).problems() == {}
    assert AuditFilter(date_from=date(2025, 4, 1), date_to=date(2026, 4, 1)).problems() == {
        "date_to": MSG_TOO_LONG
    }


def test_clinic_midnight_is_ist():
    assert clinic_midnight(date(2026, 4, 1)).astimezone(UTC) == datetime(
        2026, 3, 31, 18, 30, tzinfo=UTC
    )


def test_keyset_pages_neither_repeat_nor_skip(app, logged_in):
    for i in range(7):
        entry(app, "payout.created", "payout", i, datetime(2026, 3, 1, 10, i, tzinfo=UTC))
    seen, url = [], "/admin/audit?action=payout.created&per_page=3"
    for _ in range(5):
        html = logged_in.get(url).get_data(as_text=True)
        seen += rows(html)
        nxt = re.search(r'href="([^"]+)" rel="next"', html)
        if not nxt:
            break
        url = nxt.group(1).replace("&amp;", "&")
    with app.app_context():
        ids = db.session.scalars(
            sa.select(AuditEntry.id)
            .where(AuditEntry.action == "payout.created")
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        ).all()
    assert seen == [str(i) for i in ids] and len(seen) == 7


def test_object_pages_link_to_their_history(app, logged_in, people):
    html = logged_in.get("/admin/users").get_data(as_text=True)
    assert f"/admin/audit?object_type=user&amp;object_id={people.patient.id}" in html
    assert f"/admin/wallets/{people.patient.id}" in html
    html = logged_in.get(f"/admin/audit?object_type=user&object_id={people.admin.id}").get_data(
        as_text=True
    )
    assert "login" in html  # the admin's own sign-in
