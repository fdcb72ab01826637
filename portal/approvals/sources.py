"""The kinds of request a second administrator decides, each an :class:`ApprovalSource`.

A source gives its requests as rows of one shape (SQL columns of the same names, so the
queue is one UNION ALL paged by keyset), loads the objects of a page, describes one for
the queue, and names its approve / reject use cases (which enforce "the maker can't
decide" themselves), and the audit actions that are the steps of its trail (the audit
report's "approval steps only" keeps exactly those). Everything the queue says of a
request is said here, by its source (the page has no rule per kind). Adding a kind: write
its source here and append it to ``SOURCES`` (and a link for its object in
``portal/web/admin/approvals.py``)."""

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.accounts import admin_access
from portal.accounts import service as accounts
from portal.accounts.models import INVITE, AdminAccessRequest
from portal.booking import errors as booking_errors
from portal.booking.models import IndividualBooking
from portal.domain.rates import format_inr
from portal.domain.states import AdjustmentStatus, ApprovalStatus
from portal.extensions import db
from portal.policies import describe as policy_describe
from portal.policies import queries as policy_queries
from portal.policies import service as policy_service
from portal.policies.models import PolicyVersion
from portal.refunds import approvals as refund_approvals
from portal.refunds.common import CancellationError
from portal.refunds.models import RefundApproval
from portal.wallet import adjustments
from portal.wallet.models import WalletAdjustment

# The common columns every source's ``select`` gives, in this order.
COLUMNS = (
    "kind",
    "id",
    "created_at",
    "maker_id",
    "amount",
    "reason",
    "status",
    "pending",
    "decided_by_id",
    "decided_at",
    "decision_note",
)


# What a decision did (``ApprovalSource.outcome``). Admin pages are English only.
APPROVED = "Approved."
REJECTED = "Rejected."
WITHDRAWN = "Withdrawn."


@dataclass(frozen=True)
class Described:
    subject: str  # what the request is about ("Consultation · visit V-12")
    detail: str  # beside the reason while it waits ("Credit. Internal note: …")
    object_type: str  # the audit log's object (the History link)
    object_id: object
    what: str  # the request as the confirm boxes name it ("credit of ₹500", "policy change")
    trail: tuple[str, ...] = ()  # extra steps of the decision trail (balances applied)
    # Beside the reason once decided: only a detail still true then ("total after approval"
    # is not, once rejected); "" for none.
    decided_detail: str = ""


@dataclass(frozen=True)
class ApprovalSource:
    kind: str
    label: str
    select: Callable[[], sa.Select]  # the COLUMNS, every request of this kind
    load: Callable[[list[int]], dict]  # ids → {id: object}, with what describe reads
    describe: Callable[[object], Described]
    approve: Callable  # (admin, id, note) → object
    reject: Callable
    refusals: tuple[type[Exception], ...]  # a decision refused: its message is shown
    not_found: tuple[type[Exception], ...]
    # The audit actions of its maker-checker trail (request, decision, withdrawal), as its
    # use cases record them: required, so a new kind cannot leave its trail out of the
    # audit report (a guess by words in the names left the requests out).
    audit_steps: tuple[str, ...]
    shows_amount: bool = True  # False: its ``amount`` column is no amount ("—" on the page)
    # True: its maker may withdraw a waiting request (its ``reject`` takes the maker as a
    # withdrawal, and its objects say so: ``withdrawn``); the page offers them "Withdraw"
    # where others get Approve and Reject.
    maker_withdraws: bool = False

    def withdrawn(self, decided):
        """Whether a decided request of this kind was its maker's withdrawal (a maker's
        own rejection, where this kind allows one): the request says so itself. The one
        answer the flash (``outcome``) and the queue's decision trail give."""
        return self.maker_withdraws and decided.withdrawn

    def outcome(self, decision, decided):
        """What a decision just taken did, in the words the page flashes: ``decision`` is
        "approve" or "reject", ``decided`` what its use case returned."""
        if decision == "approve":
            return APPROVED
        return WITHDRAWN if self.withdrawn(decided) else REJECTED


def _columns(
    kind,
    id_,
    created_at,
    maker_id,
    amount,
    reason,
    status,
    pending,
    decided_by_id,
    decided_at,
    note,
):
    values = (
        sa.literal(kind, sa.String(40)),
        id_,
        created_at,
        maker_id,
        sa.cast(amount, sa.BigInteger),
        sa.cast(reason, sa.Text),
        sa.cast(status, sa.String(20)),
        pending,
        decided_by_id,
        decided_at,
        sa.cast(note, sa.Text),
    )
    return sa.select(*(v.label(name) for v, name in zip(values, COLUMNS)))


# --- refund overrides and further refunds ----------------------------------------------------


def _refund_select():
    a = RefundApproval
    return _columns(
        "refund",
        a.id,
        a.created_at,
        a.requested_by_id,
        a.extra,
        a.reason,
        a.status,
        sa.case((a.status == ApprovalStatus.PENDING, True), else_=False),
        a.decided_by_id,
        a.decided_at,
        a.decision_note,
    )


def _refund_load(ids):
    rows = db.session.scalars(
        sa.select(RefundApproval)
        .where(RefundApproval.id.in_(ids))
        .options(
            joinedload(RefundApproval.booking).joinedload(IndividualBooking.service),
            joinedload(RefundApproval.booking).joinedload(IndividualBooking.visit),
        )
    )
    return {a.id: a for a in rows}


def _refund_describe(a):
    where = ""
    if a.prefer_wallet is not None:
        where = " To the wallet." if a.prefer_wallet else " To the original payment."
    return Described(
        subject=f"{a.booking.service.name} · visit {a.booking.visit.number}",
        detail=(
            f"Extra refund. Refunded so far {format_inr(a.calculated)}; "
            f"total after approval {format_inr(a.override_amount)}.{where}"
        ),
        object_type="booking",
        object_id=a.booking_id,
        what=f"extra refund of {format_inr(a.extra)}",
    )


REFUNDS = ApprovalSource(
    kind="refund",
    label="Refund override",
    select=_refund_select,
    load=_refund_load,
    describe=_refund_describe,
    approve=refund_approvals.approve_override,
    reject=refund_approvals.reject_override,
    refusals=(CancellationError, booking_errors.PermissionDenied),
    not_found=(booking_errors.NotFound,),
    audit_steps=refund_approvals.APPROVAL_STEPS,
)


# --- manual wallet adjustments -------------------------------------------------------------


def _adjustment_select():
    w = WalletAdjustment
    return _columns(
        "wallet_adjustment",
        w.id,
        w.created_at,
        w.created_by_id,
        w.amount,
        w.public_reason,
        w.status,
        sa.case((w.status == AdjustmentStatus.PENDING_APPROVAL, True), else_=False),
        w.decided_by_id,
        w.decided_at,
        w.decision_note,
    ).where(w.needs_approval.is_(True))


def _adjustment_load(ids):
    rows = db.session.scalars(
        sa.select(WalletAdjustment)
        .where(WalletAdjustment.id.in_(ids))
        .options(joinedload(WalletAdjustment.patient))
    )
    return {w.id: w for w in rows}


def _receipt(w):
    """A pay-out's reference: " (desk receipt D-1)", " (UTR SBIN…)"."""
    return f" ({w.reference_name} {w.receipt_no})" if w.is_payout else ""


def _adjustment_describe(w):
    trail = ()
    if w.balance_after is not None:
        trail = (
            f"Applied: balance {format_inr(w.balance_before)} → {format_inr(w.balance_after)}",
        )
    return Described(
        subject=f"Wallet of {w.patient.name}",
        detail=f"{w.what.capitalize()}{_receipt(w)}. Internal note: {w.note}",
        object_type=adjustments.AUDIT_TYPE,
        object_id=w.id,
        what=f"{w.what} of {format_inr(w.magnitude)}",
        trail=trail,
    )


ADJUSTMENTS = ApprovalSource(
    kind="wallet_adjustment",
    label="Wallet adjustment",
    select=_adjustment_select,
    load=_adjustment_load,
    describe=_adjustment_describe,
    approve=adjustments.approve_adjustment,
    reject=adjustments.reject_adjustment,
    refusals=(adjustments.AdjustmentError, adjustments.PermissionDenied),
    not_found=(adjustments.NotFound,),
    audit_steps=adjustments.APPROVAL_STEPS,
)

# --- policy changes that move money or a control (a second administrator decides) -----


def _policy_select():
    v = PolicyVersion
    return _columns(
        "policy",
        v.id,
        v.created_at,
        v.created_by_id,
        sa.literal(0),
        v.reason,
        v.status,
        sa.case((v.status == ApprovalStatus.PENDING, True), else_=False),
        v.decided_by_id,
        v.decided_at,
        v.decision_note,
    ).where(v.needs_approval.is_(True))


@dataclass(frozen=True)
class PolicyChange:
    """A policy version in the queue with what it changes (``{path: (before, after)}``),
    worked out once for the page's rows (one statement, ``policy_queries.changes_of``)."""

    version: PolicyVersion
    changes: dict


def _policy_load(ids):
    versions = db.session.scalars(sa.select(PolicyVersion).where(PolicyVersion.id.in_(ids))).all()
    changes = policy_queries.changes_of(versions)
    return {v.id: PolicyChange(v, changes[v.id]) for v in versions}


def _policy_describe(change):
    """What it changes and when, as the policy page says it; still true once decided."""
    v = change.version
    summary = policy_describe.change_summary(v, change.changes)
    return Described(
        subject=f"Policy version {v.id}",
        detail=summary,
        object_type="policy_version",
        object_id=v.id,
        what="policy change",
        decided_detail=summary,
    )


POLICY = ApprovalSource(
    kind="policy",
    label="Policy change",
    select=_policy_select,
    load=_policy_load,
    describe=_policy_describe,
    approve=policy_service.approve,
    reject=policy_service.reject,
    refusals=(policy_service.PolicyError, policy_service.PolicyPermissionDenied),
    not_found=(policy_service.PolicyNotFound,),
    audit_steps=policy_service.APPROVAL_STEPS,
    shows_amount=False,  # a policy change moves no amount of its own
)


# --- an administrator's invitation or reactivation (who may decide money and controls) --


def _admin_access_select():
    r = AdminAccessRequest
    return _columns(
        "admin_account",
        r.id,
        r.created_at,
        r.requested_by_id,
        sa.literal(0),
        r.reason,
        r.status,
        sa.case((r.status == ApprovalStatus.PENDING, True), else_=False),
        r.decided_by_id,
        r.decided_at,
        r.decision_note,
    )


def _admin_access_load(ids):
    rows = db.session.scalars(
        sa.select(AdminAccessRequest)
        .where(AdminAccessRequest.id.in_(ids))
        .options(joinedload(AdminAccessRequest.requested_by), joinedload(AdminAccessRequest.user))
    )
    return {r.id: r for r in rows}


def _admin_access_describe(r):
    if r.kind == INVITE:
        subject = f"{r.name} · {r.email}"
        what = "invitation of a new administrator"
        detail = "New administrator: the account is made and its link mailed once approved."
        if r.phone:
            detail += f" Mobile {r.phone}."
    else:
        subject = f"{r.user.name} · {r.user.email}"
        what = "reactivation of an administrator account"
        detail = "Deactivated administrator: they can sign in again once approved."
    if r.status == ApprovalStatus.PENDING and not r.requested_by.active:
        detail += " " + admin_access.MSG_MAKER_GONE
    return Described(
        subject=subject,
        detail=detail,
        object_type=admin_access.AUDIT_TYPE,
        object_id=r.id,
        what=what,
    )


ADMIN_ACCESS = ApprovalSource(
    kind="admin_account",
    label="Admin account",
    select=_admin_access_select,
    load=_admin_access_load,
    describe=_admin_access_describe,
    approve=admin_access.approve,
    reject=admin_access.reject,
    refusals=(accounts.ValidationError, accounts.PermissionDenied),
    not_found=(accounts.NotFound,),
    audit_steps=admin_access.APPROVAL_STEPS,
    shows_amount=False,  # it moves no money: it decides who may approve money
    maker_withdraws=True,
)

SOURCES = (REFUNDS, ADJUSTMENTS, POLICY, ADMIN_ACCESS)
BY_KIND = {s.kind: s for s in SOURCES}
# Every step of every kind's trail: the audit report's "approval steps only".
AUDIT_STEPS = tuple(step for s in SOURCES for step in s.audit_steps)
