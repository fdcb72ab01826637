"""Comparing one record on both sides: plain functions and small records, no database.

A gateway record and ours are first reduced to a ``Side`` (reference, amount in paise,
status in one vocabulary per kind, whether that status is final, unix seconds), page by
page, so a run over 100,000 records keeps slim tuples, never the gateway's JSON. Then
``compare`` gives the outcome: MATCHED, PENDING (a side not final yet) or DISCREPANCY with
its reason. The order of the checks decides the reason when several differ: duplicate,
missing on a side, status, amount, time (a status difference explains an amount one, e.g.
a refund that failed).

Times: a refund's or payout's time is the same moment on both sides (the gateway's
``created_at`` is our request). A payment's is not: Razorpay's payment entity carries only
``created_at``, when the customer gave the payment details, before the bank authorised
it (OTP, UPI collect approved on the phone, netbanking login: minutes; a late
authorisation: days); ours is its capture (``paid_at``). So a payment's times agree when
ours lies from its creation to ``CAPTURE_WINDOW`` after it, the tolerance either side
(``time_off``; docs/reconciliation.md, "Which times are compared")."""

from __future__ import annotations

from dataclasses import dataclass

from portal.domain.ids import is_digits, parse_id
from portal.domain.states import RECON_CASE, ReconCaseStatus

MATCHED, PENDING, DISCREPANCY, RESOLVED = (
    ReconCaseStatus.MATCHED,
    ReconCaseStatus.PENDING,
    ReconCaseStatus.DISCREPANCY,
    ReconCaseStatus.RESOLVED,
)

# Reasons (the values of models.Reason; repeated here so this module needs no database).
STATUS_DIFFERS = "status_differs"
AMOUNT_DIFFERS = "amount_differs"
MISSING_OURS = "missing_ours"
MISSING_GATEWAY = "missing_gateway"
TIME_DIFFERS = "time_differs"
DUPLICATE = "duplicate"
ACCEPTED = "accepted"  # the resolution of a case an admin accepted (it may hold postings)

# How long after its creation Razorpay may capture a payment (and we learn of it): it
# polls the bank for a late authorisation for 3 days from the payment's creation day, so
# up to 4 days, auto-captures it then, and retries its webhook for 24 hours
# (razorpay.com/docs/payments/payments/late-authorisation; older pages said 5 days). An
# authorised payment not captured by then is refunded to the customer, never captured.
CAPTURE_WINDOW = 5 * 86400


def capture_lag(kind):
    """Seconds after the gateway's time of a ``kind`` record ours may lie and still agree
    (``Side.lag``): a payment's gateway time is its creation and ours its capture, which
    follows it by up to ``CAPTURE_WINDOW``; a refund's or payout's is our request's moment."""
    return CAPTURE_WINDOW if kind == "payment" else 0


def gateway_time_label(kind):
    """What the gateway's time of a ``kind`` record is, as a case page names it: "Created"
    where it is the record's creation, which ours follows (``capture_lag``), else "Time"
    (the same moment as ours)."""
    return "Created" if capture_lag(kind) else "Time"


# The gateway's statuses in one vocabulary per kind: (status, final).
_GATEWAY = {
    "payment": {
        "created": ("pending", False),
        "authorized": ("pending", False),
        "captured": ("captured", True),
        "refunded": ("captured", True),  # refunded later, captured all the same
        "failed": ("failed", True),
    },
    "refund": {
        "pending": ("pending", False),
        "processed": ("processed", True),
        "failed": ("failed", True),
    },
    "payout": {
        "queued": ("pending", False),
        "pending": ("pending", False),
        "scheduled": ("pending", False),
        "processing": ("pending", False),
        "processed": ("processed", True),
        "reversed": ("reversed", True),
        "failed": ("failed", True),
        "cancelled": ("failed", True),
        "rejected": ("failed", True),
    },
}
_NAMES = {name: name for vocabulary in _GATEWAY.values() for name in vocabulary}
# What each of the gateway's names means (the same in every kind that has it).
_MEANS = {name: known[0] for vocabulary in _GATEWAY.values() for name, known in vocabulary.items()}
# Ours, by the row's status (the portal's enums).
_OURS = {
    "payment": {
        "PENDING": ("pending", False),
        "SUCCESSFUL": ("captured", True),
        "FAILED": ("failed", True),
        "EXPIRED": ("expired", True),
    },
    "refund": {
        "PENDING": ("pending", False),
        "PROCESSED": ("processed", True),
        "FAILED": ("failed", True),
    },
    "payout": {
        "SENDING": ("pending", False),
        "QUEUED": ("pending", False),
        "PROCESSING": ("pending", False),
        "PROCESSED": ("processed", True),
        "FAILED": ("failed", True),
        "REVERSED": ("reversed", True),
    },
}
_OUR_NAMES = {name: name for vocabulary in _OURS.values() for name in vocabulary}


class Garbage(ValueError):
    """A gateway answer that is not the record it should be."""


@dataclass(frozen=True, slots=True)
class Side:
    reference: str
    amount: int | None
    status: str
    final: bool
    at: int  # unix seconds (ours: a payout's or refund's latest request to the gateway)
    raw_status: str = ""
    # ours only: which row, and the visit it belongs to
    our_type: str | None = None
    our_id: int | None = None
    visit_id: int | None = None
    # the gateway's only: the order a payment was made for (to find ours without its id)
    order_id: str | None = None
    # the gateway's only, a refund's: the payment it gives back and our row its notes name
    # (``portal_refund``), to find ours without its id as the webhooks do
    payment_id: str | None = None
    named_id: int | None = None
    # ours only: a payout's or refund's first request when it was asked more than once
    # under one idempotency key (the gateway made it at one of them: ``time_off``)
    since: int | None = None
    # the gateway's only: seconds after ``at`` ours may lie and still agree (a payment's
    # ``at`` is its creation, ours its capture: ``CAPTURE_WINDOW``; ``time_off``)
    lag: int = 0

    def key(self):
        """What a stored case is compared with to know whether this side changed (short
        text, so a run reads no JSON for 100,000 cases)."""
        return f"{self.amount}|{self.raw_status or self.status}|{self.at}|{self.our_id or ''}"

    def _means_otherwise(self):
        return bool(self.raw_status) and _MEANS.get(self.raw_status, self.status) != self.status

    def as_dict(self):
        return {
            "reference": self.reference,
            "amount": self.amount,
            "status": self.raw_status or self.status,
            "at": self.at,
            **({"order_id": self.order_id} if self.order_id else {}),
            **({"since": self.since} if self.since is not None else {}),
            # The status as the matcher read it when the raw one says otherwise (a payment
            # refunded before any capture: "refunded" shown, no money came in).
            **({"means": self.status} if self._means_otherwise() else {}),
            **({"our_type": self.our_type, "our_id": self.our_id} if self.our_type else {}),
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    status: ReconCaseStatus
    reason: str | None = None
    detail: dict | None = None


# Shared: a run over 100,000 records makes mostly these two.
_MATCHED = Outcome(MATCHED)
_PENDING = Outcome(PENDING)


def _int(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        if is_digits(value):
            return int(value)
        raise Garbage(f"{what} is not an integer: {value!r}"[:200])
    return value


def gateway_side(kind, record) -> Side:
    """A gateway list item as a ``Side``; ``Garbage`` when it is not one."""
    if not isinstance(record, dict):
        raise Garbage(f"a {kind} list item is not an object: {record!r}"[:200])
    ref = record.get("id")
    if not isinstance(ref, str) or not ref or len(ref) > 64:
        raise Garbage(f"a {kind} list item has no usable id: {ref!r}"[:200])
    raw = record.get("status")
    known = _GATEWAY[kind].get(raw)
    if known is None:
        raise Garbage(f"{kind} {ref} has an unknown status {raw!r}"[:200])
    if kind == "payment" and raw == "refunded" and record.get("captured") is False:
        known = _GATEWAY[kind]["failed"]  # given back uncaptured: no money ever came in
    raw = _NAMES[raw]  # one shared string, not one per record
    order_id = record.get("order_id") if kind == "payment" else None
    payment_id, named_id = _refund_names(record) if kind == "refund" else (None, None)
    return Side(
        reference=ref,
        amount=_int(record.get("amount"), f"{kind} {ref}'s amount"),
        status=known[0],
        final=known[1],
        at=_int(record.get("created_at"), f"{kind} {ref}'s created_at"),
        raw_status=raw,
        order_id=order_id if isinstance(order_id, str) else None,
        payment_id=payment_id,
        named_id=named_id,
        lag=capture_lag(kind),
    )


def _refund_names(record):
    """(the payment a gateway refund gives back, our refund its notes name) or Nones: our
    refunds carry ``{"portal_refund": id}`` (``refunds.execute``)."""
    payment_id, notes = record.get("payment_id"), record.get("notes")
    named = parse_id(notes.get("portal_refund")) if isinstance(notes, dict) else None
    return (payment_id if isinstance(payment_id, str) else None), named


def our_side(
    kind, reference, amount, status, at, *, our_type, our_id, visit_id=None, since=None
) -> Side:
    known = _OURS[kind].get(str(status), (str(status).lower(), True))
    return Side(
        reference=reference,
        amount=amount,
        status=known[0],
        final=known[1],
        at=int(at),
        raw_status=_OUR_NAMES.get(status, str(status)),
        our_type=our_type,
        our_id=our_id,
        visit_id=visit_id,
        since=int(since) if since is not None and int(since) != int(at) else None,
    )


def moves_money(side: Side | None) -> bool:
    """A gateway record worth a case when we have none: money moved or is moving. A failed
    or abandoned payment attempt moved nothing (ours records it on the timeline only)."""
    return side is not None and side.status not in ("failed", "pending")


def compare(
    ours: Side | None,
    theirs: Side | None,
    *,
    now: int,
    tolerance: int = 60,
    grace: int = 3600,
    duplicate: bool = False,
) -> Outcome:
    """The outcome for one reference. ``grace``: seconds a gateway record may be final while
    ours is not (its webhook on the way) before that is a discrepancy."""
    if duplicate:
        return Outcome(DISCREPANCY, DUPLICATE)
    if theirs is None:
        return Outcome(DISCREPANCY, MISSING_GATEWAY)
    if ours is None:
        if not theirs.final or now - theirs.at < grace:
            return _PENDING
        return Outcome(DISCREPANCY, MISSING_OURS)
    if ours.status != theirs.status:
        if not theirs.final:
            return _PENDING
        if not ours.final and now - theirs.at < grace:
            return _PENDING
        return Outcome(DISCREPANCY, STATUS_DIFFERS)
    if not ours.final:
        return _PENDING
    if ours.amount != theirs.amount:
        return Outcome(DISCREPANCY, AMOUNT_DIFFERS, {"delta": theirs.amount - ours.amount})
    off = time_off(ours, theirs, tolerance)
    if off:
        return Outcome(DISCREPANCY, TIME_DIFFERS, {"seconds": off})
    return _MATCHED


def time_off(ours: Side, theirs: Side, tolerance: int) -> int:
    """Seconds the gateway's time lies beyond ours and the tolerance allows (negative:
    before it), else 0. Ours is one time, or for a payout or refund asked more than once
    under one key the span of its requests, first to latest: the gateway made it at one
    of them (a 5xx made nothing and the next request made it; a request that went
    unanswered may have made it, and the next one was answered with it). A payment's
    time at the gateway is its creation, which ours (the capture) follows by up to
    ``theirs.lag``: created after our capture, or longer before it, is off."""
    first = ours.at if ours.since is None else min(ours.since, ours.at)
    if theirs.at + theirs.lag < first - tolerance:
        return theirs.at - first
    if theirs.at > ours.at + tolerance:
        return theirs.at - ours.at
    return 0


def what_changed(theirs_before, theirs_now, ours_before, ours_now) -> str:
    """Why a resolved case was rewritten, in words, from the sides' keys (``Side.key``)
    before and now: "the gateway's record changed (amount 60000 → 65000 paise)"."""
    parts = []
    for whose, before, now in (
        ("the gateway's record", theirs_before, theirs_now),
        ("our record", ours_before, ours_now),
    ):
        if before == now:
            continue
        if now is None:
            parts.append(f"{whose} is gone")
        elif before is None:
            parts.append(f"{whose} appeared")
        else:
            parts.append(f"{whose} changed ({_key_changes(before, now)})")
    return "; ".join(parts) or "a side's record changed"


def _key_changes(before, now):
    (a_amount, a_status, a_at, *a_rest), (b_amount, b_status, b_at, *b_rest) = (
        before.split("|"),
        now.split("|"),
    )
    said = []
    if a_amount != b_amount:
        said.append(f"amount {a_amount} → {b_amount} paise")
    if a_status != b_status:
        said.append(f"status {a_status} → {b_status}")
    if a_at != b_at and is_digits(a_at) and is_digits(b_at):
        said.append(f"time {int(b_at) - int(a_at):+d} s")
    if a_rest != b_rest:
        said.append("another row of ours")
    return ", ".join(said) or "as recorded"


@dataclass(slots=True)
class Existing:
    """A stored case, as much of it as deciding a write needs."""

    id: int
    status: str
    reason: str | None
    theirs_key: str | None
    ours_key: str | None
    resolution: str | None = None


def _meant(key):
    """A gateway side's key with its status as what it means: a payment refunded after its
    capture is captured all the same, as ``compare`` reads it."""
    if key is None:
        return None
    amount, status, rest = key.split("|", 2)
    return f"{amount}|{_MEANS.get(status, status)}|{rest}"


def next_status(
    existing: Existing | None, outcome: Outcome, theirs: Side | None, ours: Side | None
):
    """What to write for a reference: None when nothing changes, else the case's new status
    (checked against the case machine). A case an admin resolved (accepted, or synced from
    the gateway) stays as it is while the gateway's record means what it did when the admin
    saw it: a sync makes our time the sync's, which is no news, and neither is the payment
    being refunded later (captured → refunded). The keys keep the statuses as seen (the
    screen shows them; keys stored before keep their meaning). An accepted case is
    rewritten when our side changed too: its suspense posting is the difference from our
    side as it was (review finding: a refund accepted as one we never made, then found to
    be ours and processed, left the refund counted twice in clearing)."""
    target = outcome.status
    if existing is None:
        return target
    theirs_now = theirs.key() if theirs else None
    ours_now = ours.key() if ours else None
    if (
        existing.resolution
        and _meant(existing.theirs_key) == _meant(theirs_now)
        and (existing.resolution != ACCEPTED or existing.ours_key == ours_now)
    ):
        return None
    if (
        existing.status == target
        and existing.reason == outcome.reason
        and existing.theirs_key == theirs_now
        and existing.ours_key == ours_now
    ):
        return None
    return RECON_CASE.transition(existing.status, target, allow_same=True)
