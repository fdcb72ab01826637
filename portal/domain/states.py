"""Status fields as explicit state machines: a transition table and a refusal outside it.

Statuses are ``StrEnum`` members, so they compare equal to their stored strings
(``BookingStatus.CONFIRMED == "CONFIRMED"``) and can be used as database values.

Decisions where POLICY.md is silent:

* Booking: ``STARTED -> CANCELLED`` is refused (a visit in progress is completed, not
  cancelled; money questions after the start go through an admin refund override).
  ``EXPIRED`` is final: a payment arriving after expiry is refunded by the service, it
  does not revive the hold (the slot may be taken by then).
* Payment: ``PENDING -> SUCCESSFUL | FAILED | EXPIRED``, all final. Every retry is a new
  payment attempt row (the timeline), so a failed attempt is never flipped back.
* Refund: ``PENDING -> PROCESSED | FAILED``; ``FAILED -> PENDING`` when retried (with the
  same idempotency key).
* Visit (``VisitStatus``, a master booking): its status is derived from its items and
  its pending payment (``derive_master_status`` plus "is an order or link pending"), so
  VISIT lists the moves that derivation makes today: ``DRAFT <-> PENDING_PAYMENT`` (a
  checkout starts / is abandoned), ``DRAFT | PENDING_PAYMENT -> CONFIRMED | EXPIRED``,
  ``CONFIRMED -> PARTIALLY_CANCELLED | CANCELLED | COMPLETED``,
  ``PARTIALLY_CANCELLED -> CANCELLED | COMPLETED`` and ``EXPIRED -> CONFIRMED`` (a late
  payment revives the visit while its slots are still free). Re-deriving the same status
  is a no-op (``allow_same``). CANCELLED and COMPLETED are final.
* Late payment: ``BOOKING_LATE_PAYMENT`` is the one documented exception to the booking
  table, ``EXPIRED -> CONFIRMED`` for an item whose gateway payment was captured after its
  hold ran out while its slot is still free (docs/booking.md "Late payments"); only the
  payment capture uses it, every other path keeps EXPIRED final.
* Reschedule: ``PENDING_PAYMENT -> DONE | FAILED | EXPIRED``, all final. A move without a
  fee (or paid from the wallet or at the desk) is created PENDING_PAYMENT and done in the
  same transaction; a newer request or the expiry sweep closes a pending one as EXPIRED,
  a captured payment that cannot move the booking closes it as FAILED.
* Refund approval: ``PENDING -> APPROVED | REJECTED``, decided once.
* Policy version: ``PENDING -> APPROVED | REJECTED`` as an approval, and
  ``APPROVED -> WITHDRAWN`` for a change not in force yet (an administrator takes back a
  scheduled change: a date typed wrong, a decision reversed); never once in force.
* Payout: ``QUEUED -> PROCESSING -> PROCESSED | FAILED | REVERSED``, ``PROCESSED -> REVERSED``.
  Also ``QUEUED -> PROCESSED | FAILED | REVERSED`` directly, because RazorpayX webhooks
  may skip or reorder the intermediate ``payout.processing`` event, and ``FAILED -> QUEUED``
  for the automatic retry (same payout row, same idempotency key).

Over 400 lines on purpose: every status and transition table of the portal on one page."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = [
    "InvalidTransition",
    "StateMachine",
    "BookingStatus",
    "MasterStatus",
    "PaymentStatus",
    "RefundStatus",
    "PayoutStatus",
    "FundAccountStatus",
    "VisitStatus",
    "RescheduleStatus",
    "ApprovalStatus",
    "PolicyStatus",
    "BOOKING",
    "BOOKING_LATE_PAYMENT",
    "VISIT",
    "RESCHEDULE",
    "APPROVAL",
    "POLICY_VERSION",
    "PAYMENT",
    "REFUND",
    "PAYOUT",
    "FUND_ACCOUNT",
    "transition",
    "can_transition",
    "derive_master_status",
]


class InvalidTransition(ValueError):
    def __init__(self, machine: str, current, target):
        self.machine = machine
        self.current = current
        self.target = target
        super().__init__(f"{machine}: cannot go from {current} to {target}")


class BookingStatus(StrEnum):
    SCHEDULED = "SCHEDULED"  # held, awaiting payment
    CONFIRMED = "CONFIRMED"  # paid
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # never paid


class MasterStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"


class PayoutStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


class VisitStatus(StrEnum):
    """What a visit (master booking) stores: derived from its items and its payment."""

    DRAFT = "DRAFT"
    PENDING_PAYMENT = "PENDING_PAYMENT"
    CONFIRMED = "CONFIRMED"
    PARTIALLY_CANCELLED = "PARTIALLY_CANCELLED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"


class RescheduleStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"  # the fee's checkout is open; the new time is held
    DONE = "DONE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class ApprovalStatus(StrEnum):
    """A refund override above the calculated amount, awaiting a second administrator."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class PolicyStatus(StrEnum):
    """A policy version: an approval (as ``ApprovalStatus``), and a scheduled change taken
    back before it took effect."""

    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


class FundAccountStatus(StrEnum):
    PENDING = "PENDING"  # details saved, validation (penny drop) under way
    VALIDATED = "VALIDATED"
    FAILED = "FAILED"


class StateMachine:
    """A transition table over one ``StrEnum``."""

    def __init__(self, name: str, states: type[StrEnum], table: dict, initial):
        self.name = name
        self.states = states
        self.table = {states(k): frozenset(states(t) for t in v) for k, v in table.items()}
        for state in states:
            self.table.setdefault(state, frozenset())
        self.initial = states(initial)

    def _coerce(self, value):
        try:
            return self.states(value)
        except ValueError:
            raise InvalidTransition(self.name, value, "?") from None

    def can(self, current, target) -> bool:
        try:
            return self.states(target) in self.table[self.states(current)]
        except ValueError:
            return False

    def transition(self, current, target, *, allow_same: bool = False):
        """Return ``target`` (as the enum) if the move is in the table, else raise
        :class:`InvalidTransition`. ``allow_same=True`` accepts ``current == target`` as a
        no-op (for repeated webhooks)."""
        cur = self._coerce(current)
        try:
            tgt = self.states(target)
        except ValueError:
            raise InvalidTransition(self.name, current, target) from None
        if allow_same and cur == tgt:
            return tgt
        if tgt not in self.table[cur]:
            raise InvalidTransition(self.name, cur, tgt)
        return tgt

    def move(self, obj, target, *, allow_same: bool = False, attr: str = "status"):
        """Check ``obj.<attr> -> target`` against the table and assign it: the one place a
        status is written (a test walks the source tree for any other)."""
        new = self.transition(getattr(obj, attr), target, allow_same=allow_same)
        setattr(obj, attr, new)
        return new

    def is_final(self, state) -> bool:
        return not self.table[self.states(state)]

    def targets(self, state) -> frozenset:
        return self.table[self.states(state)]


_B = BookingStatus
BOOKING = StateMachine(
    "booking",
    BookingStatus,
    {
        _B.SCHEDULED: {_B.CONFIRMED, _B.EXPIRED, _B.CANCELLED},
        _B.CONFIRMED: {_B.STARTED, _B.CANCELLED},
        _B.STARTED: {_B.COMPLETED},
    },
    _B.SCHEDULED,
)

# The one documented exception (module docstring): a late payment revives an expired item.
BOOKING_LATE_PAYMENT = StateMachine(
    "booking (late payment)",
    BookingStatus,
    {
        _B.EXPIRED: {_B.CONFIRMED},
    },
    _B.EXPIRED,
)

_V = VisitStatus
VISIT = StateMachine(
    "visit",
    VisitStatus,
    {
        _V.DRAFT: {_V.PENDING_PAYMENT, _V.CONFIRMED, _V.EXPIRED},
        _V.PENDING_PAYMENT: {_V.DRAFT, _V.CONFIRMED, _V.EXPIRED},
        _V.CONFIRMED: {_V.PARTIALLY_CANCELLED, _V.CANCELLED, _V.COMPLETED},
        _V.PARTIALLY_CANCELLED: {_V.CANCELLED, _V.COMPLETED},
        _V.EXPIRED: {_V.CONFIRMED},
    },
    _V.DRAFT,
)

_S = RescheduleStatus
RESCHEDULE = StateMachine(
    "reschedule",
    RescheduleStatus,
    {
        _S.PENDING_PAYMENT: {_S.DONE, _S.FAILED, _S.EXPIRED},
    },
    _S.PENDING_PAYMENT,
)

_A = ApprovalStatus
APPROVAL = StateMachine(
    "refund approval",
    ApprovalStatus,
    {
        _A.PENDING: {_A.APPROVED, _A.REJECTED},
    },
    _A.PENDING,
)

_Y = PolicyStatus
POLICY_VERSION = StateMachine(
    "policy version",
    PolicyStatus,
    {
        _Y.PENDING: {_Y.APPROVED, _Y.REJECTED},
        _Y.APPROVED: {_Y.WITHDRAWN},  # only before it takes effect (policies.service)
    },
    _Y.PENDING,
)

_P = PaymentStatus
PAYMENT = StateMachine(
    "payment",
    PaymentStatus,
    {
        _P.PENDING: {_P.SUCCESSFUL, _P.FAILED, _P.EXPIRED},
    },
    _P.PENDING,
)

_R = RefundStatus
REFUND = StateMachine(
    "refund",
    RefundStatus,
    {
        _R.PENDING: {_R.PROCESSED, _R.FAILED},
        _R.FAILED: {_R.PENDING},
    },
    _R.PENDING,
)

_O = PayoutStatus
PAYOUT = StateMachine(
    "payout",
    PayoutStatus,
    {
        _O.QUEUED: {_O.PROCESSING, _O.PROCESSED, _O.FAILED, _O.REVERSED},
        _O.PROCESSING: {_O.PROCESSED, _O.FAILED, _O.REVERSED},
        _O.PROCESSED: {_O.REVERSED},
        _O.FAILED: {_O.QUEUED},
    },
    _O.QUEUED,
)

_F = FundAccountStatus
FUND_ACCOUNT = StateMachine(
    "fund account",
    FundAccountStatus,
    {
        _F.PENDING: {_F.VALIDATED, _F.FAILED},
        _F.VALIDATED: {_F.PENDING},  # new bank details: validated again
        _F.FAILED: {_F.PENDING},
    },
    _F.PENDING,
)

_MACHINES = {
    BookingStatus: BOOKING,
    PaymentStatus: PAYMENT,
    RefundStatus: REFUND,
    PayoutStatus: PAYOUT,
    FundAccountStatus: FUND_ACCOUNT,
    VisitStatus: VISIT,
    RescheduleStatus: RESCHEDULE,
    ApprovalStatus: APPROVAL,
    PolicyStatus: POLICY_VERSION,
}


def _machine_for(current, machine):
    if machine is not None:
        return machine
    for enum_type, m in _MACHINES.items():
        if isinstance(current, enum_type):
            return m
    raise TypeError("pass a status enum member, or the machine= (BOOKING, PAYMENT, …)")


def transition(current, target, machine: StateMachine | None = None, *, allow_same: bool = False):
    """Validate ``current -> target``; returns the target enum or raises
    :class:`InvalidTransition`. The machine is chosen by the enum type of ``current``
    (or given explicitly for plain strings)."""
    return _machine_for(current, machine).transition(current, target, allow_same=allow_same)


def can_transition(current, target, machine: StateMachine | None = None) -> bool:
    return _machine_for(current, machine).can(current, target)


_LIVE = {_B.SCHEDULED, _B.CONFIRMED, _B.STARTED}
_OFF = {_B.CANCELLED, _B.EXPIRED}


def derive_master_status(statuses: Iterable) -> MasterStatus:
    """The master booking's status from its items' statuses, in this order:

    1. nothing live and nothing completed: all CANCELLED → CANCELLED; all EXPIRED →
       EXPIRED; a mix of the two → CANCELLED;
    2. all closed (COMPLETED / CANCELLED / EXPIRED) with at least one COMPLETED →
       COMPLETED (decision: a finished visit reads COMPLETED even if an item of it was
       cancelled; the item keeps its own status);
    3. some items live and some cancelled or expired → PARTIALLY_CANCELLED;
    4. otherwise, any item still SCHEDULED (awaiting payment) → PENDING; else
       (all live items paid, possibly started, some maybe completed) → CONFIRMED.
    """
    items = [BookingStatus(s) for s in statuses]
    if not items:
        raise ValueError("a master booking has at least one item")
    kinds = set(items)
    if not kinds & _LIVE and _B.COMPLETED not in kinds:
        if kinds == {_B.EXPIRED}:
            return MasterStatus.EXPIRED
        return MasterStatus.CANCELLED
    if not kinds & _LIVE:
        return MasterStatus.COMPLETED
    if kinds & _OFF:
        return MasterStatus.PARTIALLY_CANCELLED
    if _B.SCHEDULED in kinds:
        return MasterStatus.PENDING
    return MasterStatus.CONFIRMED


# --- payouts and catalog (svc-f) -----------------------------------------------------------


class PayoutAttemptStatus(StrEnum):
    """One payout created at RazorpayX under one idempotency key: RazorpayX's own payout
    statuses, plus SENDING (asked, no answer yet)."""

    SENDING = "SENDING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


class PayoutRunStatus(StrEnum):
    OPEN = "OPEN"
    DONE = "DONE"


# An attempt follows the payout machine (webhooks may skip ``processing``), except that a
# FAILED attempt is final: a retry is a new attempt with a new key, so a late ``queued``
# event for a failed attempt changes nothing.
_A = PayoutAttemptStatus
PAYOUT_ATTEMPT = StateMachine(
    "payout attempt",
    PayoutAttemptStatus,
    {
        _A.SENDING: {_A.QUEUED, _A.PROCESSING, _A.PROCESSED, _A.FAILED, _A.REVERSED},
        _A.QUEUED: {_A.PROCESSING, _A.PROCESSED, _A.FAILED, _A.REVERSED},
        _A.PROCESSING: {_A.PROCESSED, _A.FAILED, _A.REVERSED},
        _A.PROCESSED: {_A.REVERSED},
    },
    _A.SENDING,
)

# What a move of the payout's current attempt means for the payout itself.
ATTEMPT_TO_PAYOUT = {
    _A.SENDING: _O.QUEUED,
    _A.QUEUED: _O.QUEUED,
    _A.PROCESSING: _O.PROCESSING,
    _A.PROCESSED: _O.PROCESSED,
    _A.FAILED: _O.FAILED,
    _A.REVERSED: _O.REVERSED,
}

PAYOUT_RUN = StateMachine(
    "payout run",
    PayoutRunStatus,
    {
        PayoutRunStatus.OPEN: {PayoutRunStatus.DONE},
    },
    PayoutRunStatus.OPEN,
)

__all__ += [
    "PayoutAttemptStatus",
    "PayoutRunStatus",
    "PAYOUT_ATTEMPT",
    "PAYOUT_RUN",
    "ATTEMPT_TO_PAYOUT",
]


class AdjustmentStatus(StrEnum):
    """A manual wallet adjustment: applied at once, or waiting for a second administrator
    (POLICY.md "Wallet and manual adjustments")."""

    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"


# Created PENDING_APPROVAL; one under the threshold is applied in the same transaction.
# A debit the balance no longer covers when approved is refused and stays pending (the
# approver rejects it or waits for money to arrive): nothing half-written.
ADJUSTMENT = StateMachine(
    "wallet adjustment",
    AdjustmentStatus,
    {
        AdjustmentStatus.PENDING_APPROVAL: {AdjustmentStatus.APPLIED, AdjustmentStatus.REJECTED},
    },
    AdjustmentStatus.PENDING_APPROVAL,
)
_MACHINES[AdjustmentStatus] = ADJUSTMENT

__all__ += ["AdjustmentStatus", "ADJUSTMENT"]


# --- exports (helper "reports") ------------------------------------------------------------
# A background CSV export: QUEUED until its job wrote the file (DONE) or gave up (FAILED);
# a DONE file is deleted after EXPORT_KEEP_DAYS (EXPIRED). Progress while it runs is read
# from a side file, not the row (docs/reports.md).
class ExportStatus(StrEnum):
    QUEUED = "QUEUED"
    DONE = "DONE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


EXPORT = StateMachine(
    "export",
    ExportStatus,
    {
        ExportStatus.QUEUED: {ExportStatus.DONE, ExportStatus.FAILED},
        ExportStatus.DONE: {ExportStatus.EXPIRED},
    },
    ExportStatus.QUEUED,
)

_MACHINES[ExportStatus] = EXPORT

__all__ += ["ExportStatus", "EXPORT"]
# --- reconciliation (recon) ----------------------------------------------------------------


class ReconCaseStatus(StrEnum):
    """One record compared with the gateway (``portal.reconcile``)."""

    MATCHED = "matched"  # both sides final and equal
    PENDING = "pending"  # one side not final yet: looked at again by the next run
    DISCREPANCY = "discrepancy"  # open: an admin syncs from the gateway or accepts it
    RESOLVED = "resolved"  # a discrepancy an admin accepted with a note


class ReconRunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


# A case is created with the outcome of its first comparison; later runs (and webhooks that
# arrive late) move it. RESOLVED is left only when the gateway's record changes again.
_C = ReconCaseStatus
RECON_CASE = StateMachine(
    "reconciliation case",
    ReconCaseStatus,
    {
        _C.MATCHED: {_C.PENDING, _C.DISCREPANCY},
        _C.PENDING: {_C.MATCHED, _C.DISCREPANCY},
        _C.DISCREPANCY: {_C.MATCHED, _C.PENDING, _C.RESOLVED},
        _C.RESOLVED: {_C.MATCHED, _C.PENDING, _C.DISCREPANCY},
    },
    _C.PENDING,
)

RECON_RUN = StateMachine(
    "reconciliation run",
    ReconRunStatus,
    {ReconRunStatus.RUNNING: {ReconRunStatus.FINISHED, ReconRunStatus.FAILED}},
    ReconRunStatus.RUNNING,
)

_MACHINES[ReconCaseStatus] = RECON_CASE
_MACHINES[ReconRunStatus] = RECON_RUN
__all__ += ["ReconCaseStatus", "ReconRunStatus", "RECON_CASE", "RECON_RUN"]
