"""The notification centre and the admin jobs page, through the test client."""

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.extensions import db
from portal.notify.center import notify_user
from portal.notify.models import Notification
from portal.outbox import OutboxItem

CALLS = []


@jobs.job("test.notify.flaky")
def _flaky(fail=True):
    CALLS.append(fail)
    if fail and len(CALLS) == 1:
        raise RuntimeError("smtp timed out")


@jobs.job("test.notify.sms_away")
def _sms_away(**payload):
    raise RuntimeError("sms gateway away")


def _notice(app, user, title="Hello", link="/me", **kw):
    with app.app_context():
        notice = notify_user(user.id, "test", title, "Body text", link=link, email=False, **kw)
        db.session.commit()
        return notice.id


@pytest.mark.parametrize("role", ["patient", "provider", "admin"])
def test_bell_shows_the_unread_count_and_polls(app, client, make_user, login, role):
    user = make_user(role)
    login(user)
    _notice(app, user)
    _notice(app, user, "Second")
    page = client.get("/notifications/bell").get_data(as_text=True)
    assert 'hx-trigger="every 30s, notifications-changed from:body"' in page
    assert "Notifications: 2 unread" in page
    home = client.get("/notifications/").get_data(as_text=True)
    assert "Hello" in home and "Second" in home and "Mark all read" in home
    assert "style=" not in home and "<script>" not in home  # CSP: no inline styles/scripts


def test_bell_is_in_the_top_bar(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    _notice(app, user)
    page = client.get("/notifications/").get_data(as_text=True)
    assert 'id="notification-bell"' in page


def test_mark_read_plain_and_htmx(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    first, second = _notice(app, user), _notice(app, user, "Two", link="/me/visits/3")
    response = client.post(f"/notifications/{first}/read")
    assert response.status_code == 303 and response.location.endswith("/notifications/")
    response = client.post(f"/notifications/{second}/read", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "notifications-changed"
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<li id="notice-{second}"') and "Mark read" not in body
    assert "<html" not in body
    with app.app_context():
        assert all(n.read_at for n in db.session.scalars(sa.select(Notification)))


def test_open_marks_read_and_follows_the_link(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    notice = _notice(app, user, link="/me/visits/9")
    response = client.post(f"/notifications/{notice}/read", data={"open": "1"})
    assert response.status_code == 303 and response.location.endswith("/me/visits/9")


def test_mark_all_read(app, client, make_user, login):
    user = make_user("provider")
    login(user)
    for i in range(3):
        _notice(app, user, f"N{i}")
    response = client.post("/notifications/read-all", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Trigger"]
    assert "Notifications:" not in client.get("/notifications/bell").get_data(as_text=True)


def test_another_persons_notice_is_404(app, client, make_user, login):
    owner, other = make_user("patient"), make_user("patient")
    notice = _notice(app, owner)
    login(other)
    assert client.post(f"/notifications/{notice}/read").status_code == 404
    assert "Hello" not in client.get("/notifications/").get_data(as_text=True)


def test_mark_read_needs_a_csrf_token(app, client, make_user, login):
    user = make_user("patient")
    login(user)
    notice = _notice(app, user)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post(f"/notifications/{notice}/read").status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/notifications/bell")
    assert response.status_code == 302 and "/auth/login" in response.location


def test_admin_jobs_page_lists_failures_and_retries(app, client, make_user, login):
    CALLS.clear()
    admin = make_user("admin")
    with app.app_context():
        jobs.enqueue("test.notify.flaky")
        db.session.commit()
        item = db.session.scalar(sa.select(OutboxItem))
        assert item.attempts == 1 and item.done_at is None
        item_id = item.id
    login(admin)
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "test.notify.flaky" in page and "smtp timed out" in page and "Retry now" in page
    row = page[page.index(f'id="outbox-{item_id}"') :].split("</tr>")[0]
    assert '<span class="badge warn">1</span>' in row  # one attempt of several: retrying
    assert "no Redis configured" in page
    response = client.post(f"/admin/jobs/outbox/{item_id}/retry")
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(OutboxItem, item_id).done_at is not None
    assert CALLS == [True, True]
    assert "Nothing waiting" in client.get("/admin/jobs").get_data(as_text=True)


def test_jobs_page_shows_a_payload_in_hindi_as_written(app, client, make_user, login):
    """Review finding: the outbox showed a payload as ``tojson`` writes it, a patient's
    Hindi name as ``\\u0930\\u093e...``. It is JSON written as read, still HTML-escaped."""
    admin = make_user("admin")
    with app.app_context():
        item_id = jobs.enqueue("test.notify.sms_away", patient="राहुल शर्मा", note="<b>5 & 6</b>")
        db.session.commit()
    login(admin)
    page = client.get("/admin/jobs").get_data(as_text=True)
    row = page[page.index(f'id="outbox-{item_id}"') :]
    payload = row[row.index("<code>") + len("<code>") : row.index("</code>")]
    assert payload == (
        "{&#34;note&#34;: &#34;&lt;b&gt;5 &amp; 6&lt;/b&gt;&#34;, "
        "&#34;patient&#34;: &#34;राहुल शर्मा&#34;}"
    )
    assert "\\u" not in payload and "<b>5" not in page


def test_jobs_page_is_for_admins_only(client, make_user, login):
    login(make_user("provider"))
    assert client.get("/admin/jobs").status_code == 403


def test_the_centre_shows_clinic_time(app, client, make_user, login):
    """Issue #16: the notification centre showed UTC; everything else is clinic time."""
    from datetime import UTC, datetime

    user = make_user("patient")
    login(user)
    notice_id = _notice(app, user, "Timed")
    with app.app_context():
        db.session.get(Notification, notice_id).created_at = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
        db.session.commit()
    html = client.get("/notifications/").get_data(as_text=True)
    assert "02 Mar 2026 10:00 IST" in html
    assert "04:30 UTC" not in html


def test_paging_one_jobs_list_keeps_the_others_place(app, client, make_user, login):
    """Review finding (as on the reconciliation screen): the outbox and the failing
    deliveries page apart on one page, but each pager was built with its own cursors
    alone, so paging the deliveries put the outbox back to its first page, and the other
    way round."""

    from portal.notify.models import SMS, Delivery, DeliveryStatus
    from tests.pagers import assert_each_pager_keeps_the_others_place

    admin = make_user("admin")
    with app.app_context():
        for n in range(2):
            jobs.enqueue("test.notify.sms_away", n=n)
            db.session.add(
                Delivery(
                    channel=SMS,
                    recipient="+919812345678",
                    kind="reminder",
                    status=DeliveryStatus.FAILED,
                    attempts=8,
                    error="sms gateway away",
                )
            )
        db.session.commit()
    login(admin)
    base = {"outbox_per_page": "1", "deliveries_per_page": "1"}
    assert_each_pager_keeps_the_others_place(
        client, "/admin/jobs", base, ("deliveries_", "outbox_")
    )
