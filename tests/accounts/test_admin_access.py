"""Who becomes an administrator (review: maker-checker had a gap). Money and control changes
wait for a different administrator, but one administrator could invite a second account
they control, or reactivate a dormant one, and approve their own changes from it. Now
inviting an administrator and reactivating an administrator's account wait for a second
administrator while another active one exists (``accounts.admin_access``, a source of the
one approvals queue); the only active administrator's go at once (a clinic must be able
to get its second). Nothing is half-written: a refused or withdrawn request leaves no
account and no link."""

import pytest
import sqlalchemy as sa

from portal.accounts import admin_access as access
from portal.accounts import service
from portal.accounts.models import AdminAccessRequest, User
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.notify.models import MailMessage, Notification

ASHA = "asha.admin@example.com"
ALERT = "alert.ADJUSTMENT_PENDING_APPROVAL"


@pytest.fixture
def admins(ctx, make_user):
    """The maker and the checker, as their pages hold them."""
    maker = make_user("admin", name="Meera Maker")
    checker = make_user("admin", name="Ravi Checker")
    return db.session.merge(maker), db.session.merge(checker)


def _account(email):
    return db.session.scalar(sa.select(User).where(User.email == email))


def _mails(to):
    return db.session.scalars(sa.select(MailMessage).where(MailMessage.to == to)).all()


def _steps(request_id):
    return [
        (a.action, a.actor_id, a.after)
        for a in db.session.scalars(
            sa.select(AuditEntry)
            .where(
                AuditEntry.object_type == access.AUDIT_TYPE,
                AuditEntry.object_id == str(request_id),
            )
            .order_by(AuditEntry.id)
        )
    ]


def _fresh(user):
    return db.session.get(User, user.id, populate_existing=True)


# --- inviting ----------------------------------------------------------------------------


def test_the_only_active_administrator_invites_at_once(ctx, make_user):
    """A clinic must be able to get its second administrator (docs/security.md: a clinic
    may run with one)."""
    alone = db.session.merge(make_user("admin", name="Meera Alone"))
    done = access.invite_admin(alone, "Asha.Admin@Example.com", "Asha Rao")
    assert done.request is None
    user = done.user
    assert (user.email, user.role, user.password_hash, user.active) == (ASHA, "admin", None, True)
    [mail] = _mails(ASHA)
    assert "/auth/accept-invite/" in mail.text and "Meera Alone" in mail.text
    [entry] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.invite"))
    assert entry.actor_id == alone.id and entry.after["second_admin"] is False


def test_with_another_active_administrator_the_invitation_waits(admins):
    maker, checker = admins
    waiting = access.invite_admin(maker, ASHA, "Asha Rao", reason="Our new finance lead")
    assert waiting.user is None
    request = waiting.request
    assert (request.status, request.kind, request.email, request.requested_by_id) == (
        "PENDING",
        access.INVITE,
        ASHA,
        maker.id,
    )
    # Nothing usable yet: no account, no mail with a link.
    assert _account(ASHA) is None and _mails(ASHA) == []
    [(action, actor, after)] = _steps(request.id)
    assert (action, actor) == (access.REQUESTED, maker.id)
    assert after["email"] == ASHA and after["reason"] == "Our new finance lead"
    # The other administrators are told, as for a waiting adjustment or policy change.
    notices = db.session.scalars(sa.select(Notification).where(Notification.kind == ALERT)).all()
    assert checker.id in {n.user_id for n in notices}
    assert {n.link for n in notices} == {"/admin/approvals?kind=admin_account"}
    assert all("Meera Maker" in n.body and ASHA in n.body for n in notices)


def test_a_second_administrator_is_needed_while_another_active_administrator_exists(ctx, make_user):
    """``needs_second_admin``, the one rule the invitation, the reactivation and the invite
    page ask: only an active, unclosed administrator account other than the asker's
    counts (an invited one too); the asker, patients, providers, a deactivated or a closed
    administrator do not."""
    me = db.session.merge(make_user("admin", name="Meera Alone"))
    make_user("patient")
    make_user("provider")
    assert access.needs_second_admin(me) is False
    other = make_user("admin", name="Other Admin")
    assert access.needs_second_admin(me) is True
    assert access.needs_second_admin(db.session.merge(other)) is True  # either way round
    service.deactivate_user(me, other.id)
    assert access.needs_second_admin(me) is False
    closed = db.session.merge(make_user("admin", name="Closed Admin"))
    closed.closed_at = closed.created_at
    db.session.commit()
    assert access.needs_second_admin(me) is False
    access.invite_admin(me, ASHA, "Asha Rao")  # alone: at once, no password chosen yet
    assert access.needs_second_admin(me) is True


def test_an_invited_administrator_who_has_not_chosen_a_password_counts_as_another(ctx, make_user):
    """Otherwise the only administrator could invite any number at once before the first
    invited one signed in."""
    alone = db.session.merge(make_user("admin", name="Meera Alone"))
    assert access.invite_admin(alone, ASHA, "Asha Rao").user is not None
    assert access.invite_admin(alone, "ravi.admin@example.com", "Ravi").request is not None
    assert _account("ravi.admin@example.com") is None


def test_the_maker_cannot_approve_their_own_invitation(admins):
    maker, _ = admins
    request = access.invite_admin(maker, ASHA, "Asha Rao").request
    with pytest.raises(service.PermissionDenied) as refused:
        access.approve(maker, request.id)
    assert str(refused.value) == access.MSG_SECOND_ADMIN
    db.session.rollback()
    assert db.session.get(AdminAccessRequest, request.id).status == "PENDING"
    assert _account(ASHA) is None and _mails(ASHA) == []


def test_a_second_administrator_approves_and_only_then_the_mail_goes(admins):
    maker, checker = admins
    request = access.invite_admin(maker, ASHA, "Asha Rao", phone="98123 45678").request
    approved = access.approve(checker, request.id, note="Met her on Monday")
    user = _account(ASHA)
    assert (user.role, user.phone, user.password_hash, user.active) == (
        "admin",
        "+919812345678",
        None,
        True,
    )
    assert (approved.status, approved.decided_by_id, approved.user_id) == (
        "APPROVED",
        checker.id,
        user.id,
    )
    [mail] = _mails(ASHA)
    assert "/auth/accept-invite/" in mail.text and "Meera Maker" in mail.text  # who asked
    # Who asked and who approved, on the request's trail and on the account's history.
    steps = _steps(request.id)
    assert [(a, actor) for a, actor, _ in steps] == [
        (access.REQUESTED, maker.id),
        (access.APPROVED, checker.id),
    ]
    assert steps[1][2]["requested_by_id"] == maker.id and steps[1][2]["user_id"] == user.id
    [invite] = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "user.invite", AuditEntry.object_id == str(user.id)
        )
    )
    assert invite.actor_id == checker.id
    assert (invite.after["requested_by_id"], invite.after["approved_by_id"]) == (
        maker.id,
        checker.id,
    )


@pytest.mark.parametrize("who", ["checker", "maker"])
def test_a_refused_or_withdrawn_invitation_leaves_no_account_and_no_link(admins, who):
    maker, checker = admins
    request = access.invite_admin(maker, ASHA, "Asha Rao").request
    decider = checker if who == "checker" else maker
    decided = access.reject(decider, request.id, note="Not now")
    assert (decided.status, decided.decided_by_id) == ("REJECTED", decider.id)
    assert _account(ASHA) is None and _mails(ASHA) == []
    step = access.REJECTED if who == "checker" else access.WITHDRAWN
    assert [a for a, _, _ in _steps(request.id)] == [access.REQUESTED, step]
    with pytest.raises(access.AccessError) as refused:
        access.approve(checker, request.id)
    assert refused.value.errors == {service.FORM: access.MSG_DECIDED}
    db.session.rollback()
    # The address may be asked for again.
    assert access.invite_admin(maker, ASHA, "Asha Rao").request.status == "PENDING"


def test_an_invitation_already_waiting_for_the_address_is_not_asked_twice(admins):
    maker, checker = admins
    first = access.invite_admin(maker, ASHA, "Asha Rao").request
    for who, typed in ((maker, "ASHA.ADMIN@example.com"), (checker, "ａsha.admin@example.com")):
        with pytest.raises(access.AccessError) as refused:
            access.invite_admin(who, typed, "Asha Rao")
        assert refused.value.errors == {"email": access.MSG_ALREADY_WAITING.format(id=first.id)}
        db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(AdminAccessRequest.id))) == 1


def test_an_address_with_an_account_is_refused_when_asked(admins, make_user):
    maker, _ = admins
    make_user("patient", email="taken@example.com")
    with pytest.raises(service.ValidationError) as refused:
        access.invite_admin(maker, "Taken@Example.com", "Someone")
    assert refused.value.errors == {"email": service.EMAIL_TAKEN}
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(AdminAccessRequest.id))) == 0


def test_an_address_registered_while_it_waits_is_refused_at_approval_and_keeps_waiting(
    admins, make_user
):
    """As a waiting debit the balance no longer covers: refused, still waiting, and the
    approver may reject it."""
    maker, checker = admins
    request = access.invite_admin(maker, ASHA, "Asha Rao").request
    patient = make_user("patient", email=ASHA)
    with pytest.raises(access.AccessError) as refused:
        access.approve(checker, request.id)
    assert refused.value.errors == {service.FORM: access.MSG_ADDRESS_TAKEN}
    db.session.rollback()
    assert db.session.get(AdminAccessRequest, request.id).status == "PENDING"
    assert _fresh(patient).role == "patient" and _mails(ASHA) == []
    assert access.reject(checker, request.id).status == "REJECTED"


def test_a_request_of_an_administrator_deactivated_since_is_not_approved(admins, make_user):
    """The maker's word is all that vouches for the person; once the maker is deactivated
    it no longer does. A second administrator may still reject it (and invite the person
    themselves if the clinic wants them)."""
    maker, checker = admins
    third = db.session.merge(make_user("admin", name="Third Admin"))
    request = access.invite_admin(maker, ASHA, "Asha Rao").request
    service.deactivate_user(third, maker.id)
    with pytest.raises(access.AccessError) as refused:
        access.approve(checker, request.id)
    assert refused.value.errors == {service.FORM: access.MSG_MAKER_GONE}
    db.session.rollback()
    assert _account(ASHA) is None and _mails(ASHA) == []
    assert access.reject(checker, request.id).status == "REJECTED"


def test_an_approver_deactivated_meanwhile_is_refused(admins, make_user):
    maker, checker = admins
    request = access.invite_admin(maker, ASHA, "Asha Rao").request
    service.deactivate_user(maker, checker.id)
    stale = db.session.get(User, checker.id)
    db.session.expunge(stale)
    stale.active = True  # the page's copy, read before the deactivation
    with pytest.raises(service.ValidationError) as refused:
        access.approve(stale, request.id)
    assert refused.value.errors == {service.FORM: service.NOT_ACTIVE_ADMIN}
    db.session.rollback()
    assert _account(ASHA) is None


def test_only_administrators_ask_or_decide(admins, make_user):
    maker, _ = admins
    request = access.invite_admin(maker, ASHA, "Asha Rao").request
    provider = db.session.merge(make_user("provider"))
    with pytest.raises(service.PermissionDenied):
        access.invite_admin(provider, "x@example.com", "X")
    with pytest.raises(service.PermissionDenied):
        access.approve(provider, request.id)
    with pytest.raises(service.NotFound):
        access.approve(maker, 999_999)


def test_the_form_is_checked_before_anything_is_asked(admins):
    maker, _ = admins
    with pytest.raises(service.ValidationError) as refused:
        access.invite_admin(maker, "not an address", "12.5", phone="123")
    assert set(refused.value.errors) == {"email", "name", "phone"}
    with pytest.raises(service.ValidationError) as refused:
        access.invite_admin(maker, ASHA, "Asha Rao", reason="x" * 501)
    assert set(refused.value.errors) == {"reason"}
    assert db.session.scalar(sa.select(sa.func.count(AdminAccessRequest.id))) == 0


def test_an_administrator_is_no_longer_invited_past_the_rule(admins):
    """``service.invite_user`` makes provider logins (the catalog's provider page); an
    administrator invited through it would skip the second administrator."""
    maker, _ = admins
    with pytest.raises(service.PermissionDenied):
        service.invite_user(ASHA, "Asha Rao", "admin", maker)
    assert _account(ASHA) is None


# --- reactivating ------------------------------------------------------------------------


@pytest.fixture
def dormant(admins, make_user):
    """A third administrator's account, deactivated."""
    maker, checker = admins
    user = make_user("admin", name="Dormant Admin")
    service.deactivate_user(checker, user.id)
    return db.session.get(User, user.id)


def test_reactivating_an_administrator_waits_for_a_second_one(admins, dormant):
    maker, checker = admins
    waiting = access.reactivate(maker, dormant.id)
    assert waiting.user is None and waiting.request.kind == access.REACTIVATE
    assert _fresh(dormant).active is False
    with pytest.raises(service.PermissionDenied):
        access.approve(maker, waiting.request.id)
    db.session.rollback()
    access.approve(checker, waiting.request.id, note="Back from leave")
    assert _fresh(dormant).active is True
    steps = _steps(waiting.request.id)
    assert [(a, actor) for a, actor, _ in steps] == [
        (access.REQUESTED, maker.id),
        (access.APPROVED, checker.id),
    ]
    [entry] = db.session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "user.reactivate", AuditEntry.object_id == str(dormant.id)
        )
    )
    assert entry.actor_id == checker.id and entry.after["requested_by_id"] == maker.id


def test_a_refused_reactivation_leaves_the_account_deactivated(admins, dormant):
    maker, checker = admins
    request = access.reactivate(maker, dormant.id).request
    with pytest.raises(access.AccessError) as twice:
        access.reactivate(checker, dormant.id)
    assert twice.value.errors == {
        service.FORM: access.MSG_REACTIVATION_WAITING.format(id=request.id)
    }
    db.session.rollback()
    access.reject(checker, request.id)
    assert _fresh(dormant).active is False


def test_the_only_active_administrator_reactivates_at_once(ctx, make_user):
    alone = db.session.merge(make_user("admin", name="Meera Alone"))
    other = make_user("admin", name="Other Admin")
    service.deactivate_user(alone, other.id)
    done = access.reactivate(alone, other.id)
    assert done.request is None and done.user.active is True


def test_reactivating_a_patient_or_provider_is_as_before(admins, make_user):
    maker, _ = admins
    for role in ("patient", "provider"):
        user = make_user(role)
        service.deactivate_user(maker, user.id)
        done = access.reactivate(maker, user.id)
        assert done.request is None and done.user.active is True


def test_an_account_active_again_meanwhile_is_refused_at_approval(admins, dormant):
    maker, checker = admins
    request = access.reactivate(maker, dormant.id).request
    _fresh(dormant).active = True
    db.session.commit()
    with pytest.raises(access.AccessError) as refused:
        access.approve(checker, request.id)
    assert refused.value.errors == {service.FORM: access.MSG_ACTIVE_ALREADY}


def test_an_administrator_is_not_reactivated_past_the_rule(admins, dormant):
    maker, _ = admins
    with pytest.raises(service.PermissionDenied):
        service.reactivate_user(maker, dormant.id)
    assert _fresh(dormant).active is False
