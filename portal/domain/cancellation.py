"""Cancellation refunds per individual booking (POLICY.md "Cancellation and refunds").

Actors
------
``"patient"``
    Cancels online. h >= 48 h: 100 %; 24 h < h < 48 h: 75 % − ₹100; h <= 24 h: refused
    ("Cancellation not allowed within 24 hours of appointment", naming the hours of the
    policy's last tier, ``Policy.patient_cancellation_cut_off``). Team appointments:
    refused (admin only). (The figures here are the defaults; the rules read the policy.)
``"admin"``
    An administrator cancelling *on behalf of the patient* (the patient asked, e.g. by
    phone, or it is a team appointment the patient cannot cancel online). Decision that
    reconciles the two admin rows of POLICY.md:

    * while the patient could still cancel online (h > 24 h) the admin gets exactly the
      tier the patient would get — going through the desk is neither a penalty nor a
      loophole;
    * from h <= 24 h on (POLICY says "h < 24"; exactly 24 h is the patient's refused
      boundary, so it belongs to the admin's late tier, otherwise nobody could cancel at
      that instant) the late tier applies: 50 % − ₹250; also after the start (no-show
      handling);
    * the row "admin | any time | 100 %, or an override 0…paid with a reason" is the
      override: any amount from 0 to paid − already refunded, with a reason. An override
      at or below the calculated amount applies at once; above it (e.g. a 100 % goodwill
      refund late) it needs a second, different admin (``needs_second_admin``), and
      without that approval the result is refused with "Refund amount cannot exceed
      calculated amount: ₹X".
``"clinic"``
    An administrator cancelling for the clinic's own operational reasons (clinic closed,
    equipment down): 100 %, no provider penalty — the "admin | any time | 100 %" row
    taken literally. Overrides as for ``"admin"``.
``"provider"``
    The provider (or an admin for the provider) cancels before the start: 100 % and a
    ₹250 penalty on the provider's payable. Not possible after the start.

Amounts: the percentage is of the item's *paid amount* (after its coupon share); the
refund is never negative and never exceeds paid − already refunded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from portal.domain.text import N_, Text, in_hours

from .policy import DEFAULT_POLICY, Policy, RefundTier
from .rates import allocate_pro_rata, apply_bps, format_inr, percent_text

ACTORS = ("patient", "admin", "clinic", "provider")

# Names the policy's cut-off (its last tier's hours), as domain.reschedule's refusal does.
MSG_PATIENT_TOO_LATE = N_("Cancellation not allowed within %(hours)s hours of appointment")
MSG_TEAM_ADMIN_ONLY = N_("Team appointments can only be cancelled by an administrator")
MSG_PROVIDER_AFTER_START = N_(
    "Provider cancellation is only possible before the appointment starts"
)
MSG_OVERRIDE_ADMIN_ONLY = N_("Only administrators can override the refund amount")
MSG_OVERRIDE_NOTE = N_("Detailed note required for audit trail")
MSG_NEGATIVE = N_("Refund amount cannot be negative")

__all__ = [
    "gives_back_reschedule_fees",
    "ACTORS",
    "CancellationResult",
    "refund_for_cancellation",
    "RefundSplit",
    "describe_tier",
    "provider_may_cancel",
    "split_refund",
    "MSG_PATIENT_TOO_LATE",
    "MSG_TEAM_ADMIN_ONLY",
]


@dataclass(frozen=True)
class CancellationResult:
    allowed: bool
    message: str
    refund: int  # to refund now (the override if one was given; 0 when refused by the table)
    calculated: int  # what the table gives, capped at the refundable amount
    refundable: int  # paid − already refunded
    provider_penalty: int  # to debit from the provider's payable
    needs_second_admin: bool
    rule: str  # which row applied: patient_full, patient_partial, patient_refused, team_refused,
    #            admin_late, provider, clinic, provider_refused, override_*


def describe_tier(tier: RefundTier) -> str:
    """What a tier refunds, as the pages say it: ``"75% − ₹100"``, ``"100%"``."""
    text = f"{percent_text(tier.refund_bps)}%"
    return text + (f" − {format_inr(tier.deduction)}" if tier.deduction else "")


def admin_patient_tier(until_start: timedelta, policy: Policy = DEFAULT_POLICY) -> RefundTier:
    """The tier an admin's cancellation for the patient gives with ``until_start`` left:
    the patient's own table, else (within the cut-off) the admin's late tier."""
    for tier in policy.patient_cancellation_tiers:
        if tier.matches(until_start):
            return tier
    return policy.admin_late_cancellation


def _tier_amount(paid: int, tier: RefundTier) -> int:
    return apply_bps(paid, tier.refund_bps) - tier.deduction


def _check_money(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be int paise")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


def provider_may_cancel(until_start: timedelta) -> bool:
    """Whether the provider may still cancel a booking starting in ``until_start``: only
    before the start (also whether the schedule's row offers Cancel)."""
    return until_start > timedelta(0)


def refund_for_cancellation(
    actor: str,
    hours_until_start: timedelta,
    paid: int,
    already_refunded: int = 0,
    is_team: bool = False,
    policy: Policy = DEFAULT_POLICY,
    override: int | None = None,
    *,
    override_reason: str | None = None,
    second_admin_approved: bool = False,
) -> CancellationResult:
    """Apply the cancellation table. ``hours_until_start`` is a ``timedelta`` (start − now;
    negative after the start). See the module docstring for the rows and decisions."""
    if actor not in ACTORS:
        raise ValueError(f"actor must be one of {ACTORS}")
    if not isinstance(hours_until_start, timedelta):
        raise TypeError("hours_until_start must be a timedelta")
    _check_money("paid", paid)
    _check_money("already_refunded", already_refunded)
    if already_refunded > paid:
        raise ValueError("already_refunded exceeds paid")
    refundable = paid - already_refunded
    h = hours_until_start

    def refused(message, rule, calculated=0):
        return CancellationResult(False, message, 0, calculated, refundable, 0, False, rule)

    penalty = 0
    if actor == "patient":
        if is_team:
            return refused(MSG_TEAM_ADMIN_ONLY, "team_refused")
        for tier in policy.patient_cancellation_tiers:
            if tier.matches(h):
                raw = _tier_amount(paid, tier)
                full = tier.refund_bps == 10_000 and tier.deduction == 0
                rule = "patient_full" if full else "patient_partial"
                break
        else:
            hours = in_hours(policy.patient_cancellation_cut_off)
            return refused(Text(MSG_PATIENT_TOO_LATE, hours=hours), "patient_refused")
    elif actor == "admin":
        tier = admin_patient_tier(h, policy)
        late = tier is policy.admin_late_cancellation
        raw, rule = _tier_amount(paid, tier), "admin_late" if late else "admin_patient_tier"
    elif actor == "clinic":
        raw, rule = apply_bps(paid, policy.clinic_cancellation_refund_bps), "clinic"
    else:  # provider
        if not provider_may_cancel(h):
            return refused(MSG_PROVIDER_AFTER_START, "provider_refused")
        raw, rule = apply_bps(paid, policy.provider_cancellation_refund_bps), "provider"
        penalty = policy.provider_cancellation_penalty

    calculated = max(0, min(raw, refundable))

    if override is None:
        return CancellationResult(
            True,
            f"Refund {format_inr(calculated)}",
            calculated,
            calculated,
            refundable,
            penalty,
            False,
            rule,
        )

    # --- override -------------------------------------------------------------------------
    if not isinstance(override, int) or isinstance(override, bool):
        raise TypeError("override must be int paise")
    if actor not in ("admin", "clinic"):
        return refused(MSG_OVERRIDE_ADMIN_ONLY, "override_refused", calculated)
    if not override_reason or len(override_reason.strip()) < policy.note_min_length:
        return refused(MSG_OVERRIDE_NOTE, "override_refused", calculated)
    if override < 0:
        return refused(MSG_NEGATIVE, "override_refused", calculated)
    if override > refundable:
        return refused(
            f"Refund amount cannot exceed refundable amount: {format_inr(refundable)}",
            "override_refused",
            calculated,
        )
    if override > calculated:
        if not second_admin_approved:
            return CancellationResult(
                False,
                f"Refund amount cannot exceed calculated amount: {format_inr(calculated)}",
                override,
                calculated,
                refundable,
                penalty,
                True,
                "override_needs_approval",
            )
        return CancellationResult(
            True,
            f"Refund {format_inr(override)} (override approved by a second administrator)",
            override,
            calculated,
            refundable,
            penalty,
            True,
            "override_approved",
        )
    return CancellationResult(
        True,
        f"Refund {format_inr(override)} (override)",
        override,
        calculated,
        refundable,
        penalty,
        False,
        "override",
    )


@dataclass(frozen=True)
class RefundSplit:
    to_wallet: int
    to_gateway: int

    def __iter__(self):  # allows ``to_wallet, to_gateway = split_refund(...)``
        return iter((self.to_wallet, self.to_gateway))


def split_refund(
    refund_amount: int,
    paid_by_wallet: int,
    paid_by_gateway: int,
    already_refunded_wallet: int = 0,
    already_refunded_gateway: int = 0,
    prefer_wallet: bool = False,
) -> RefundSplit:
    """Where a refund goes: ``(to_wallet, to_gateway)``.

    ``already_refunded_wallet`` / ``already_refunded_gateway`` are what earlier refunds of
    this item *sent to* the wallet / back through the gateway.

    Decision: a partial refund comes back from the two funding sources **pro rata** to how
    the item was paid (largest remainder, a tie paisa to the wallet), computed on the
    cumulative refunded total, so several partial refunds send exactly what one refund of
    the same total would. Wallet-paid portions always go to the wallet; the gateway portion
    goes back through Razorpay unless the patient chose the wallet (``prefer_wallet``).
    Never more than paid − refunded through the gateway (Razorpay would refuse it); any
    excess goes to the wallet.
    """
    for name, value in (
        ("refund_amount", refund_amount),
        ("paid_by_wallet", paid_by_wallet),
        ("paid_by_gateway", paid_by_gateway),
        ("already_refunded_wallet", already_refunded_wallet),
        ("already_refunded_gateway", already_refunded_gateway),
    ):
        _check_money(name, value)
    if already_refunded_gateway > paid_by_gateway:
        raise ValueError("more was refunded through the gateway than was paid through it")
    paid = paid_by_wallet + paid_by_gateway
    already = already_refunded_wallet + already_refunded_gateway
    if already + refund_amount > paid:
        raise ValueError("refund exceeds paid − already refunded")
    if prefer_wallet or refund_amount == 0:
        return RefundSplit(refund_amount, 0)
    _, cumulative_gateway = allocate_pro_rata(
        already + refund_amount, [paid_by_wallet, paid_by_gateway]
    )
    to_gateway = cumulative_gateway - already_refunded_gateway
    to_gateway = max(0, min(to_gateway, refund_amount, paid_by_gateway - already_refunded_gateway))
    return RefundSplit(refund_amount - to_gateway, to_gateway)


def gives_back_reschedule_fees(actor_kind: str) -> bool:
    """Does a cancellation by this actor also refund the reschedule fees paid for the item?

    Decision (docs/refunds.md "Reschedule fees"): yes when the clinic's side cancels (the
    provider, or an admin for the clinic): the patient paid to move an appointment the
    clinic then did not keep. No when the patient cancels, online or through an admin
    (``"patient"``, ``"admin"``): the move they paid for happened."""
    return actor_kind in ("provider", "clinic")


MSG_LATE_BOOKING = N_(
    "This time is less than %(hours)s hours away: once paid, it cannot be cancelled or moved"
    " online (the clinic can help)."
)


def late_booking_notice(until_start: timedelta, policy: Policy = DEFAULT_POLICY) -> str | None:
    """What to tell a patient before paying for a slot this close (issue #16), or None when
    it could still be cancelled or moved online once paid."""
    can_cancel = any(t.matches(until_start) for t in policy.patient_cancellation_tiers)
    can_move = until_start > policy.reschedule_min_notice
    if can_cancel or can_move:
        return None
    return Text(MSG_LATE_BOOKING, hours=in_hours(policy.reschedule_min_notice))
