"""A signed-in request reads its user with the catalog's and the policy's stamps and the
bell's unread count, in one statement (portal.web.signed_in); each is then kept for the
request, and a write that changes one makes the request read that one again."""

import sqlalchemy as sa

from portal.accounts.models import User
from portal.catalog import cache as catalog_cache
from portal.catalog.models import Clinic
from portal.domain.rates import format_inr
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import credit, debit, post
from portal.notify import center
from portal.policies import store as policy_store
from portal.wallet import queries as wallet_queries
from portal.web import signed_in
from tests.querycount import counted_queries


def _session_id(user):
    return f"{user.id}:{user.session_version or 0}"


def test_the_user_comes_with_the_stamps_and_the_unread_count(app, make_user):
    user = make_user("patient")
    with app.app_context():
        center.notify_user(user.id, "test", "One", "Body", email=False)
        db.session.commit()
    with app.test_request_context("/me/"):
        with counted_queries() as statements:
            loaded = signed_in.load_user(_session_id(user))
            assert loaded.id == user.id
            assert center.unread_count(user.id) == 1
            catalog_cache.current_stamp()
            policy_store.snapshot()
        assert len(statements) == 1, statements


def test_a_notice_written_or_read_in_the_request_is_counted_again(app, make_user):
    user = make_user("patient")
    with app.test_request_context("/me/"):
        signed_in.load_user(_session_id(user))
        assert center.unread_count(user.id) == 0
        notice = center.notify_user(user.id, "test", "One", "Body", email=False)
        assert center.unread_count(user.id) == 1
        db.session.commit()
        center.mark_read(user.id, notice.id)
        assert center.unread_count(user.id) == 0
        center.notify_user(user.id, "test", "Two", "Body", email=False)
        center.notify_user(user.id, "test", "Three", "Body", email=False)
        db.session.commit()
        assert center.unread_count(user.id) == 2
        center.mark_all_read(user.id)
        assert center.unread_count(user.id) == 0
        # Another user's count is never the one kept.
        other = make_user("patient")
        center.notify_user(other.id, "test", "Theirs", "Body", email=False)
        assert center.unread_count(other.id) == 1


def test_a_catalog_edit_in_the_request_reads_the_new_stamp(app, make_user):
    user = make_user("admin")
    with app.app_context():
        db.session.add(Clinic(name="Stamp Clinic", city="Pune", timezone="Asia/Kolkata"))
        db.session.commit()
    with app.test_request_context("/admin/"):
        signed_in.load_user(_session_id(user))
        before = catalog_cache.current_stamp()
        clinic = db.session.scalars(sa.select(Clinic).where(Clinic.name == "Stamp Clinic")).one()
        clinic.city = "Mumbai"
        db.session.flush()
        after = catalog_cache.current_stamp()
        assert after != before
        assert after == db.session.scalar(sa.select(catalog_cache.STAMP))


def test_an_ended_session_keeps_nothing(app, make_user):
    user = make_user("patient")
    with app.app_context():
        db.session.get(User, user.id).session_version = 3
        db.session.commit()
    with app.test_request_context("/me/"):
        assert signed_in.load_user(f"{user.id}:0") is None
        with counted_queries() as statements:
            assert center.unread_count(user.id) == 0
        assert len(statements) == 1  # counted, not taken from the refused load


def _credit_wallet(app, user, paise):
    with app.app_context():
        post(
            "wallet_credit",
            [debit(chart.WALLET_ADJUSTMENTS, paise), credit(chart.patient_wallet(user.id), paise)],
        )
        db.session.commit()


def test_a_page_that_shows_the_wallet_reads_it_with_the_user(app, make_user):
    user = make_user("patient")
    _credit_wallet(app, user, 12_345)
    for url in ("/me/", "/me/wallet"):
        with app.test_request_context(url):
            with counted_queries() as statements:
                signed_in.load_user(_session_id(user))
                assert wallet_queries.shown_balance(user.id) == 12_345
            assert len(statements) == 1, (url, statements)
    # A page that does not show it reads it only if asked (one statement more).
    with app.test_request_context("/me/dependents"):
        with counted_queries() as statements:
            signed_in.load_user(_session_id(user))
            assert wallet_queries.shown_balance(user.id) == 12_345
        assert len(statements) == 2, statements


def test_a_patients_pages_show_their_own_wallet(app, client, login, make_user):
    user, other = make_user("patient"), make_user("patient")
    _credit_wallet(app, user, 12_345)
    _credit_wallet(app, other, 99_987)
    login(user)
    for url in ("/me/", "/me/wallet"):
        page = client.get(url).get_data(as_text=True)
        assert format_inr(12_345) in page and format_inr(99_987) not in page, url
    login(other)
    assert format_inr(99_987) in client.get("/me/wallet").get_data(as_text=True)
