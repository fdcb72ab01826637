"""Removing the same leave twice at once (a double click, two tabs): the second request read
the leave (its get_owned_or_404) before the first removed it. Its removal is NotFound (the
view's 404), not a ValueError (a 500) (review finding)."""

from datetime import timedelta

import pytest

from portal.accounts.models import User
from portal.catalog import availability
from portal.catalog.checks import NotFound
from portal.catalog.models import Leave, Provider
from portal.db import utcnow
from portal.extensions import db
from portal.web.provider import availability as view
from tests.plugin import PASSWORD


def _provider_with_leave(app, make_user):
    user = make_user("provider")
    with app.app_context():
        provider = Provider(user_id=user.id, display_name="Dr Asha Rao", kind="DOCTOR")
        db.session.add(provider)
        db.session.flush()
        leave = Leave(
            provider=provider,
            starts_at=utcnow() + timedelta(days=20),
            ends_at=utcnow() + timedelta(days=21),
            reason="",
        )
        db.session.add(leave)
        db.session.commit()
        return user, leave.id


def test_a_leave_removed_meanwhile_is_not_found(app, make_user):
    user, leave_id = _provider_with_leave(app, make_user)
    with app.app_context():  # the second request
        actor = db.session.get(User, user.id)
        seen = db.session.get(Leave, leave_id)  # as get_owned_or_404 read it
        with app.app_context():  # the first request removes it meanwhile
            availability.remove_leave(db.session.get(User, user.id), leave_id)
        with pytest.raises(NotFound):
            availability.remove_leave(actor, seen)


def test_the_second_remove_of_a_leave_is_a_404_not_a_500(app, make_user, monkeypatch):
    user, leave_id = _provider_with_leave(app, make_user)
    real = availability.remove_leave

    def the_other_tab_first(actor, leave):
        with app.app_context():  # the other tab's removal, committed meanwhile
            real(db.session.get(User, user.id), leave_id)
            db.session.remove()
        return real(actor, leave)

    monkeypatch.setattr(view, "remove_leave", the_other_tab_first)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        client = app.test_client()
        client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        response = client.post(f"/provider/availability/leave/{leave_id}/delete")
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert response.status_code == 404
