"""An administrator's invitation decided, or asked for, by two administrators at the same
moment, on PostgreSQL (as a wallet adjustment's two decisions at once,
tests/refunds/test_admin_races_postgres.py): one wins, the other is told."""

import time

import pytest
import sqlalchemy as sa

from portal.accounts import admin_access as access
from portal.accounts.models import AdminAccessRequest, User
from portal.extensions import db
from portal.notify.models import MailMessage
from tests.plugin import user_maker
from tests.threads import lock_waiters, run_together

pytestmark = pytest.mark.postgres

ASHA = "asha.admin@example.com"


def _meet_before(monkeypatch, name, parties=2):
    """Each caller of ``access.<name>`` waits there until all have come (the code before it
    ran in each) or another session waits on a lock, at most 10 s."""
    original = getattr(access, name)
    arrived = []

    def wait_then(*args, **kwargs):
        arrived.append(1)
        deadline = time.monotonic() + 10
        while len(arrived) < parties and not lock_waiters(db.engine):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return original(*args, **kwargs)

    monkeypatch.setattr(access, name, wait_then)


@pytest.fixture
def three(pg_app):
    make = user_maker(pg_app)
    return [make("admin", name=f"Admin {n}").id for n in (1, 2, 3)]


def _as(user_id):
    return db.session.get(User, user_id)


def _read(pg_app, statement):
    with pg_app.app_context():
        answer = db.session.scalars(statement).all()
        db.session.remove()
    return answer


@pytest.mark.parametrize("second", ["approve", "reject"])
def test_two_administrators_deciding_one_invitation_at_once(pg_app, three, monkeypatch, second):
    maker, a2, a3 = three
    with pg_app.app_context():
        request_id = access.invite_admin(_as(maker), ASHA, "Asha Rao").request.id
        db.session.remove()
    _meet_before(monkeypatch, "_lock_admins")

    def decide(admin_id, how):
        return lambda: getattr(access, how)(_as(admin_id), request_id).status

    results = run_together(pg_app, decide(a2, "approve"), decide(a3, second))
    refused = [r for r in results if isinstance(r, access.AccessError)]
    assert len(refused) == 1, results
    assert refused[0].errors == {access.FORM: access.MSG_DECIDED}
    [status] = _read(pg_app, sa.select(AdminAccessRequest.status))
    accounts = _read(pg_app, sa.select(User.id).where(User.email == ASHA))
    mails = _read(pg_app, sa.select(MailMessage.id).where(MailMessage.to == ASHA))
    assert (len(accounts), len(mails)) == ((1, 1) if status == "APPROVED" else (0, 0)), status


def test_two_administrators_inviting_one_address_at_once(pg_app, three, monkeypatch):
    maker, a2, _ = three
    _meet_before(monkeypatch, "_lock_admins")

    def invite(admin_id):
        return lambda: access.invite_admin(_as(admin_id), ASHA, "Asha Rao").request.id

    results = run_together(pg_app, invite(maker), invite(a2))
    made = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, access.AccessError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].errors == {"email": access.MSG_ALREADY_WAITING.format(id=made[0])}
    assert _read(pg_app, sa.select(AdminAccessRequest.id)) == made
