"""Who becomes an administrator: inviting one, and reactivating an administrator's account,
wait for a second administrator while another active one exists, as money and control
changes do (docs/decisions.md "Who becomes an administrator"). Otherwise one administrator
could invite a second account they control, or reactivate a dormant one, and approve their
own changes from it. The approvals queue shows and decides these requests
(``approvals.sources``, kind ``admin_account``).

Rules:

* "another active administrator" is an active administrator account other than the
  maker's, an invited one that has not chosen its password yet included (it can accept
  and decide; without it the only administrator could invite any number at once);
* the only active administrator's invitation or reactivation goes at once: a clinic must
  be able to get its second administrator (docs/security.md: it may run with one);
* a waiting invitation holds only the person (address, name, mobile) and the maker's
  note: the account and its link are made when a second administrator approves, so a
  refused or withdrawn request leaves no account and no link;
* one request waits per address and per account; an address that has an account is
  refused when asked, and at approval (the request keeps waiting: reject it);
* the maker cannot approve their own request, and may withdraw it (a rejection by the
  maker); a request whose maker is no longer an active administrator is not approved,
  only rejected: the maker's word is all that vouches for the person;
* each use case takes the administrators' lock (``ADMINS_LOCK``, PostgreSQL's advisory
  lock; SQLite serialises writers) first, then the request, then the accounts in id
  order (``service.lock_accounts``, as a deactivation does): two decisions of one request
  run one after the other, and the count of other administrators is read with nothing
  adding one underneath.

Each use case is one unit of work with its audit rows: the request (by the maker), the
approval (by the checker, naming the maker), the rejection or withdrawal."""

from typing import NamedTuple

import sqlalchemy as sa

from portal import events
from portal.accounts import service
from portal.accounts.models import ADMIN, INVITE, REACTIVATE, AdminAccessRequest, User
from portal.accounts.service import FORM, NotFound, PermissionDenied, ValidationError
from portal.audit.service import record
from portal.db import lock_subjects, unit_of_work, utcnow
from portal.domain.states import APPROVAL, ApprovalStatus
from portal.extensions import db

ADMINS_LOCK = "admin-accounts"
AUDIT_TYPE = "admin_access_request"
# The audit actions of a request's maker-checker trail (the approvals queue's source names
# them as its steps). Not "user.invite" / "user.reactivate": what is done at once.
REQUESTED = "admin_access.requested"
APPROVED = "admin_access.approved"
REJECTED = "admin_access.rejected"
WITHDRAWN = "admin_access.withdrawn"
APPROVAL_STEPS = (REQUESTED, APPROVED, REJECTED, WITHDRAWN)

NOTE_MAX = 500
# Admin pages are English only: not in the catalogue.
MSG_SECOND_ADMIN = "A different administrator must approve this request."
MSG_DECIDED = "This request has already been decided."
MSG_ALREADY_WAITING = (
    "An invitation for this address already waits for a second administrator's approval "
    "(request {id})."
)
MSG_REACTIVATION_WAITING = (
    "Reactivating this account already waits for a second administrator's approval (request {id})."
)
MSG_ADDRESS_TAKEN = (
    "An account with this address was made while the invitation waited: reject this request."
)
MSG_MAKER_GONE = (
    "The administrator who asked has been deactivated since, so this can only be rejected "
    "(invite the person yourself if the clinic still wants them)."
)
MSG_ACTIVE_ALREADY = "This account is active again already: reject this request."
MSG_NOTE_LONG = f"Keep the note to {NOTE_MAX} characters."


class AccessError(ValidationError):
    """A refused request or decision: ``errors`` maps a form field (or ``FORM``) to its
    message."""


class Outcome(NamedTuple):
    """What an invitation or reactivation did: ``user`` when done at once, else the
    ``request`` waiting for a second administrator."""

    user: User | None
    request: AdminAccessRequest | None


def _lock_admins():
    lock_subjects([ADMINS_LOCK])


def needs_second_admin(admin):
    """Whether ``admin``'s invitation of an administrator, or reactivation of one, waits
    for a second administrator: while another active administrator account exists (an
    invited one included); the only one's go at once. The one answer both use cases act
    on and the invitation page words itself by (read there without the lock: it only
    picks the wording)."""
    return db.session.scalar(
        sa.select(
            sa.exists().where(
                User.role == ADMIN,
                User.active.is_(True),
                User.closed_at.is_(None),
                User.id != admin.id,
            )
        )
    )


def _waiting(**whom):
    """The id of the request waiting for this address or account, or None."""
    return db.session.scalar(
        sa.select(AdminAccessRequest.id).filter_by(status=ApprovalStatus.PENDING, **whom)
    )


def _requested(maker, request):
    record(
        maker,
        REQUESTED,
        AUDIT_TYPE,
        request.id,
        after={
            "kind": request.kind,
            "email": request.email,
            "name": request.name,
            "phone": request.phone,
            "user_id": request.user_id,
            "reason": request.reason,
        },
    )
    events.admin_access_requested.send("accounts", request_id=request.id)


def invite_admin(admin, email, name, phone=None, reason="", now=None):
    """Invite an administrator: at once when ``admin`` is the only active one, else a
    request a second administrator decides (``reason``: a note for them). Returns an
    :class:`Outcome`. ValidationError beside the fields (an address with an account:
    ``service.EMAIL_TAKEN``; one already waiting: ``MSG_ALREADY_WAITING``)."""
    service.require_admin(admin)
    reason = (reason or "").strip()
    try:
        data = service.invite_data(email, name, phone)
    except ValidationError as exc:
        errors = exc.errors
    else:
        errors = {}
    if len(reason) > NOTE_MAX:
        errors["reason"] = MSG_NOTE_LONG
    if errors:
        raise ValidationError(errors)
    with service.unique_email(), unit_of_work():
        _lock_admins()
        maker = service.acting_admin(service.lock_accounts({admin.id}), admin)
        if service.email_taken(data["email"]):
            raise ValidationError({"email": service.EMAIL_TAKEN})
        waiting = _waiting(email=data["email"])
        if waiting is not None:
            raise AccessError({"email": MSG_ALREADY_WAITING.format(id=waiting)})
        if not needs_second_admin(maker):
            user = service.invite(
                data, ADMIN, inviter=maker, actor=maker, facts={"second_admin": False}
            )
            return Outcome(user, None)
        request = AdminAccessRequest(
            kind=INVITE,
            requested_by_id=maker.id,
            email=data["email"],
            name=data["name"],
            phone=data.get("phone"),
            reason=reason,
            status=ApprovalStatus.PENDING,
            created_at=now or utcnow(),
        )
        db.session.add(request)
        db.session.flush()
        _requested(maker, request)
    return Outcome(None, request)


def reactivate(admin, user_id, now=None):
    """Let a deactivated account sign in again: an administrator's waits for a second
    administrator unless ``admin`` is the only active one; any other account's is done at
    once (``service.reactivate_user``'s rules). Returns an :class:`Outcome`."""
    service.require_admin(admin)
    with unit_of_work():
        _lock_admins()
        ids = {admin.id} | ({user_id} if isinstance(user_id, int) else set())
        rows = service.lock_accounts(ids)
        maker = service.acting_admin(rows, admin)
        user = rows.get(user_id)
        if user is None:
            raise NotFound("user")
        if user.role != ADMIN or user.active or user.closed_at is not None:
            return Outcome(service.reactivate_user(maker, user.id), None)
        if not needs_second_admin(maker):
            return Outcome(service.reactivate(maker, user.id, facts={"second_admin": False}), None)
        waiting = _waiting(user_id=user.id)
        if waiting is not None:
            raise AccessError({FORM: MSG_REACTIVATION_WAITING.format(id=waiting)})
        request = AdminAccessRequest(
            kind=REACTIVATE,
            requested_by_id=maker.id,
            user_id=user.id,
            reason="",
            status=ApprovalStatus.PENDING,
            created_at=now or utcnow(),
        )
        db.session.add(request)
        db.session.flush()
        _requested(maker, request)
    return Outcome(None, request)


def _pending(request_id):
    """The request, locked (its decisions one at a time; read afresh after the wait)."""
    request = db.session.scalar(
        sa.select(AdminAccessRequest)
        .where(AdminAccessRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None:
        raise NotFound("request")
    if request.status != ApprovalStatus.PENDING:
        raise AccessError({FORM: MSG_DECIDED})
    return request


def _decided(request, admin, status, note, now):
    APPROVAL.move(request, status)
    request.decided_by_id = admin.id
    request.decided_at = now or utcnow()
    request.decision_note = (note or "").strip()[:NOTE_MAX] or None


def approve(admin, request_id, note=None, now=None):
    """A different administrator approves: the invited account is made and its mail sent
    (naming the maker as the one who invited), or the account reactivated. Refused, and
    still waiting, when the maker is no longer an active administrator, the address got an
    account meanwhile, or the account is active again."""
    service.require_admin(admin)
    with service.unique_email(), unit_of_work():
        _lock_admins()
        request = _pending(request_id)
        if request.requested_by_id == admin.id:
            raise PermissionDenied(MSG_SECOND_ADMIN)
        ids = {admin.id, request.requested_by_id} | ({request.user_id} - {None})
        rows = service.lock_accounts(ids)
        checker = service.acting_admin(rows, admin)
        maker = rows[request.requested_by_id]
        if not maker.active or maker.role != ADMIN:
            raise AccessError({FORM: MSG_MAKER_GONE})
        facts = {
            "request_id": request.id,
            "requested_by_id": maker.id,
            "approved_by_id": checker.id,
        }
        if request.kind == INVITE:
            if service.email_taken(request.email):
                raise AccessError({FORM: MSG_ADDRESS_TAKEN})
            data = {"email": request.email, "name": request.name, "phone": request.phone}
            user = service.invite(data, ADMIN, inviter=maker, actor=checker, facts=facts)
        else:
            user = rows[request.user_id]
            if user.active:
                raise AccessError({FORM: MSG_ACTIVE_ALREADY})
            service.reactivate(checker, user.id, facts=facts)
        request.user_id = user.id
        _decided(request, checker, ApprovalStatus.APPROVED, note, now)
        record(
            checker,
            APPROVED,
            AUDIT_TYPE,
            request.id,
            before={"status": ApprovalStatus.PENDING},
            after={
                "status": ApprovalStatus.APPROVED,
                "kind": request.kind,
                "requested_by_id": maker.id,
                "user_id": user.id,
                "note": request.decision_note,
            },
        )
    return request


def reject(admin, request_id, note=None, now=None):
    """Any other administrator rejects a waiting request, and its maker withdraws it:
    nothing was made, so nothing is left (no account, no link)."""
    service.require_admin(admin)
    with unit_of_work():
        _lock_admins()
        request = _pending(request_id)
        service.acting_admin(service.lock_accounts({admin.id}), admin)
        _decided(request, admin, ApprovalStatus.REJECTED, note, now)
        record(
            admin,
            WITHDRAWN if request.withdrawn else REJECTED,
            AUDIT_TYPE,
            request.id,
            before={"status": ApprovalStatus.PENDING},
            after={
                "status": ApprovalStatus.REJECTED,
                "kind": request.kind,
                "requested_by_id": request.requested_by_id,
                "note": request.decision_note,
            },
        )
    return request
