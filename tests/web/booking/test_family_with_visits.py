"""A family member with visits on record stays on the list: removing them is a message,
not a 500 (the visits, their invoices and refunds name them; review finding)."""

from portal.accounts.models import Dependent
from portal.extensions import db
from tests.web.booking.helpers import hold


def test_a_child_with_a_visit_is_not_removed(app, client, login, world):
    hold(app, world, dependent=world.child)
    login(world.patient)
    answer = client.post(f"/me/dependents/{world.child}/delete", follow_redirects=True)
    assert answer.status_code == 200
    assert "Aarav has visits on record, so they stay on your family list." in answer.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.get(Dependent, world.child) is not None


def test_a_child_without_visits_is_removed(app, client, login, world):
    login(world.patient)
    answer = client.post(f"/me/dependents/{world.child}/delete", follow_redirects=True)
    assert "Aarav removed." in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Dependent, world.child) is None
