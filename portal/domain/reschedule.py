"""Reschedule rules (POLICY.md "Reschedule").

* Allowed when the notice h > the policy's cut-off (``reschedule_min_notice``, 24 h:
  "Reschedule not allowed within 24 hours of appointment", the hours following the
  policy); between the cut-off and the last tier's notice (a cut-off set below it) the
  last tier's rate is charged; an admin may override (``admin_override=True``) as long as the
  appointment has not started. An overridden late reschedule is charged the highest
  tier (the 24 h < h <= 48 h rate) — decision: the override lifts the refusal, not the fee;
  an admin who also wants to waive the fee does so with a wallet adjustment.
* Penalty = F × tier rate: 0 % if h > 72 h; 10 % if 48 h < h <= 72 h; 20 % if 24 h < h <= 48 h;
  a team appointment adds ``team_reschedule_extra_bps`` (5 points) to *every* tier,
  including the free one (decision: the literal reading of "+5 points for a team
  appointment"; moving several providers always costs something).
* Fee = penalty + platform fee (5 % of the penalty) + GST (18 % of penalty + platform fee;
  POLICY.md says "on both", whatever the GST mode for services), each rounded half-up.
* The penalty, less the provider's commission, goes to the provider.
* A fee under ₹1 (``pricing.MIN_ONLINE_PAYMENT``, Razorpay's smallest order) is not paid
  online (``RescheduleQuote.payable_online``): from the wallet or at the desk — decision,
  as the visit's checkout sends nothing under ₹1 to Razorpay; rounding it up would charge
  more than the fee.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from portal.domain.text import N_, Text, in_hours

from .policy import DEFAULT_POLICY, Policy
from .pricing import MIN_ONLINE_PAYMENT
from .rates import apply_bps

# Names the policy's cut-off: "Reschedule not allowed within 24 hours of appointment" by
# default (POLICY.md's words), never a typed-in figure.
MSG_TOO_LATE_HOURS = N_("Reschedule not allowed within %(hours)s hours of appointment")
MSG_STARTED = N_("Appointment has already started")

__all__ = ["RescheduleQuote", "reschedule_quote", "reschedule_penalty_bps", "MSG_TOO_LATE_HOURS"]


@dataclass(frozen=True)
class RescheduleQuote:
    allowed: bool
    message: str
    penalty_bps: int
    penalty: int
    platform_fee: int
    gst: int
    total: int  # penalty + platform_fee + gst: what the patient pays before the move
    commission: int  # platform's cut of the penalty
    provider_share: int  # penalty − commission, credited to the provider(s)
    overridden: bool = False

    @property
    def payable_online(self) -> bool:
        """Whether the fee can be paid through Razorpay: none, or at least its smallest
        order (``MIN_ONLINE_PAYMENT``)."""
        return self.total == 0 or self.total >= MIN_ONLINE_PAYMENT


def reschedule_penalty_bps(
    hours_until_start: timedelta, is_team: bool = False, policy: Policy = DEFAULT_POLICY
) -> int | None:
    """The tier rate for this notice, or ``None`` when no tier applies (h <= 24 h)."""
    for tier in policy.reschedule_tiers:
        if hours_until_start > tier.more_than:
            return tier.penalty_bps + (policy.team_reschedule_extra_bps if is_team else 0)
    return None


def reschedule_quote(
    fee: int,
    hours_until_start: timedelta,
    is_team: bool = False,
    policy: Policy = DEFAULT_POLICY,
    *,
    admin_override: bool = False,
    commission_bps: int | None = None,
) -> RescheduleQuote:
    """Whether the booking may move and what it costs. ``fee`` is the item's F."""
    if not isinstance(hours_until_start, timedelta):
        raise TypeError("hours_until_start must be a timedelta")
    if not isinstance(fee, int) or isinstance(fee, bool) or fee < 0:
        raise ValueError("fee must be non-negative int paise")
    bps = reschedule_penalty_bps(hours_until_start, is_team, policy)
    overridden = False
    too_late = hours_until_start <= policy.reschedule_min_notice
    if too_late and not admin_override:
        hours = in_hours(policy.reschedule_min_notice)
        return RescheduleQuote(False, Text(MSG_TOO_LATE_HOURS, hours=hours), 0, 0, 0, 0, 0, 0, 0)
    if bps is None:
        if hours_until_start <= timedelta(0):
            return RescheduleQuote(False, MSG_STARTED, 0, 0, 0, 0, 0, 0, 0)
        # Past the last tier: the cut-off lies below it, or an administrator's override.
        last = policy.reschedule_tiers[-1]
        bps = last.penalty_bps + (policy.team_reschedule_extra_bps if is_team else 0)
        overridden = too_late
    penalty = apply_bps(fee, bps)
    platform_fee = apply_bps(penalty, policy.platform_fee_bps)
    gst = apply_bps(penalty + platform_fee, policy.gst_bps)
    rate = policy.commission_bps if commission_bps is None else commission_bps
    commission = apply_bps(penalty, rate)
    return RescheduleQuote(
        allowed=True,
        message="Reschedule allowed" + (" (administrator override)" if overridden else ""),
        penalty_bps=bps,
        penalty=penalty,
        platform_fee=platform_fee,
        gst=gst,
        total=penalty + platform_fee + gst,
        commission=commission,
        provider_share=penalty - commission,
        overridden=overridden,
    )
