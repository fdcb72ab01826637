"""Every default of POLICY.md as data.

A :class:`Policy` is an immutable value. Services build one from the admin-editable
policy rows / settings (``dataclasses.replace(DEFAULT_POLICY, …)`` or
:meth:`Policy.with_changes`) and pass it into the pure rules; no rule reads a literal.

Money fields are ``int`` paise, rates ``int`` basis points, durations ``timedelta``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass
from datetime import timedelta

from .rates import financial_year, financial_year_bounds, rupees
from .timezone import CLINIC_TIMEZONE

GST_MODE_PLATFORM_ONLY = "platform_only"  # GST on P (+ F when the service is taxable)
GST_MODE_FEE_AND_PLATFORM = "fee_and_platform"  # the seeds' formula: GST on F + P always
GST_MODES = (GST_MODE_PLATFORM_ONLY, GST_MODE_FEE_AND_PLATFORM)
PAYOUT_SCHEDULES = ("INSTANT", "WEEKLY", "MONTHLY")
# POLICY.md: an adjustment's note is "at least 10 characters" ("Detailed note required for
# audit trail"). A rule, not a default: ``note_min_length`` may ask for more, never less,
# or one administrator could take the audit trail's notes away (docs/decisions.md).
NOTE_FLOOR = 10
# Razorpay refuses a payment link whose ``expire_by`` is under 15 minutes ahead (so does the
# sandbox): ``link_min_lifetime`` may ask for more, never less, or the portal would offer
# links the gateway refuses (review r4, docs/decisions.md).
LINK_LIFETIME_FLOOR = timedelta(minutes=15)
# Income-tax Act section 206AA: a payee who has not furnished a PAN is deducted at the
# higher of the rate in force and 20%. ``TdsRule.no_pan_rate_bps`` may ask for more, never
# less (docs/decisions.md, "TDS without a PAN").
NO_PAN_RATE_FLOOR = 2_000

__all__ = [
    "GST_MODES",
    "GST_MODE_PLATFORM_ONLY",
    "GST_MODE_FEE_AND_PLATFORM",
    "LINK_LIFETIME_FLOOR",
    "NOTE_FLOOR",
    "NO_PAN_RATE_FLOOR",
    "PAYOUT_SCHEDULES",
    "RefundTier",
    "RescheduleTier",
    "TdsRule",
    "Policy",
    "DEFAULT_POLICY",
]


@dataclass(frozen=True)
class RefundTier:
    """One row of a cancellation table: applies when the notice (time until start) is
    more than ``notice`` (or equal to it when ``inclusive``). The refund is
    ``refund_bps`` of the item's paid amount minus ``deduction`` paise (never below 0)."""

    notice: timedelta
    inclusive: bool
    refund_bps: int
    deduction: int = 0

    def matches(self, until_start: timedelta) -> bool:
        return until_start > self.notice or (self.inclusive and until_start == self.notice)


@dataclass(frozen=True)
class RescheduleTier:
    """Applies when the notice is strictly more than ``more_than``; penalty ``penalty_bps`` of F."""

    more_than: timedelta
    penalty_bps: int


@dataclass(frozen=True)
class TdsRule:
    """TDS settings in force from financial year ``from_fy`` (e.g. "2025-26") on.
    ``no_pan_rate_bps``: section 206AA's rate for a payee without a PAN on file (the
    higher of it and ``rate_bps`` applies; a version stored before it existed reads 20%)."""

    from_fy: str
    rate_bps: int
    threshold: int  # paise; TDS applies once the FY's gross payouts *exceed* it
    section: str
    no_pan_rate_bps: int = NO_PAN_RATE_FLOOR


def _rule_start(rule: TdsRule) -> _dt.date:
    return financial_year_bounds(rule.from_fy)[0]


def _h(hours: int) -> timedelta:
    return timedelta(hours=hours)


@dataclass(frozen=True)
class Policy:
    # --- prices -------------------------------------------------------------------------
    platform_fee_bps: int = 500
    gst_bps: int = 1800
    gst_mode: str = GST_MODE_PLATFORM_ONLY
    commission_bps: int = 500  # provider default; each provider row may carry its own

    # --- cancellation (patient table, first match wins; no match = refused) --------------
    patient_cancellation_tiers: tuple[RefundTier, ...] = (
        RefundTier(notice=_h(48), inclusive=True, refund_bps=10_000, deduction=0),
        RefundTier(notice=_h(24), inclusive=False, refund_bps=7_500, deduction=rupees(100)),
    )
    # admin on behalf of the patient when the patient may no longer cancel (h <= 24)
    admin_late_cancellation: RefundTier = RefundTier(
        notice=timedelta(0), inclusive=True, refund_bps=5_000, deduction=rupees(250)
    )
    provider_cancellation_refund_bps: int = 10_000
    provider_cancellation_penalty: int = rupees(250)
    clinic_cancellation_refund_bps: int = 10_000  # admin cancels for operational reasons

    # --- reschedule ---------------------------------------------------------------------
    reschedule_min_notice: timedelta = _h(24)  # allowed only when h > this
    reschedule_tiers: tuple[RescheduleTier, ...] = (
        RescheduleTier(more_than=_h(72), penalty_bps=0),
        RescheduleTier(more_than=_h(48), penalty_bps=1_000),
        RescheduleTier(more_than=_h(24), penalty_bps=2_000),
    )
    team_reschedule_extra_bps: int = 500

    # --- payouts and TDS ----------------------------------------------------------------
    payout_minimum: int = rupees(500)
    # The seeds said ₹40,000; POLICY.md (the resolution) holds ₹50,000 since FY 2025-26.
    tds_rules: tuple[TdsRule, ...] = (
        TdsRule(from_fy="2025-26", rate_bps=1_000, threshold=rupees(50_000), section="194J"),
    )
    imps_limit: int = rupees(5_00_000)  # IMPS up to and including ₹5 lakh, NEFT above
    payout_max_attempts: int = 3
    default_payout_schedule: str = "WEEKLY"  # a new provider's cycle: INSTANT, WEEKLY, MONTHLY

    # --- wallet and manual adjustments ----------------------------------------------------
    adjustment_approval_threshold: int = rupees(10_000)  # |amount| > this needs a 2nd admin
    note_min_length: int = NOTE_FLOOR  # never below it (a stored version is read up to it)

    # --- payments -------------------------------------------------------------------------
    payment_failures_for_intervention: int = 3
    payment_max_attempts: int = 5  # patient may retry while fewer than this many exist
    link_max_lifetime: timedelta = _h(24)
    link_before_start: timedelta = _h(2)
    link_min_lifetime: timedelta = LINK_LIFETIME_FLOOR  # never below it (Razorpay's)
    attention_window: timedelta = _h(24)  # confirmed start this close with payment pending

    # --- notifications, completion, reconciliation ---------------------------------------
    reminder_offsets: tuple[timedelta, ...] = (_h(24), _h(1), timedelta(minutes=15))
    no_show_grace: timedelta = _h(2)
    reconciliation_tolerance: timedelta = timedelta(seconds=60)
    reconciliation_run_time: _dt.time = _dt.time(2, 0)  # clinic local time, previous day

    # --- online services ------------------------------------------------------------------
    meet_link_domains: tuple[str, ...] = ("zoom.us", "meet.google.com", "teams.microsoft.com")
    extra_meet_link_domains: tuple[str, ...] = ()  # admin-configured

    # --- clinic defaults ----------------------------------------------------------------
    default_timezone: str = CLINIC_TIMEZONE
    default_business_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Mon–Fri (date.weekday())
    default_opening: _dt.time = _dt.time(9, 0)
    default_closing: _dt.time = _dt.time(18, 0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_bps") or f.name in _MONEY_FIELDS or f.name in _COUNT_FIELDS:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{f.name} must be a non-negative int, got {value!r}")
        if self.note_min_length < NOTE_FLOOR:
            raise ValueError(f"note_min_length must be at least {NOTE_FLOOR} (POLICY.md)")
        if self.link_min_lifetime < LINK_LIFETIME_FLOOR:
            raise ValueError("link_min_lifetime must be at least 15 minutes (Razorpay)")
        if self.default_payout_schedule not in PAYOUT_SCHEDULES:
            raise ValueError(f"default_payout_schedule must be one of {PAYOUT_SCHEDULES}")
        if self.gst_mode not in GST_MODES:
            raise ValueError(f"gst_mode must be one of {GST_MODES}")
        if not self.tds_rules:
            raise ValueError("at least one TDS rule is needed")
        for rule in self.tds_rules:
            financial_year_bounds(rule.from_fy)  # validates the label
            if rule.no_pan_rate_bps < NO_PAN_RATE_FLOOR:
                raise ValueError("a TDS rule's rate without a PAN must be at least 20% (206AA)")
        # Newest first: the policy form edits the first rule, the one from the latest year
        # (``policy_data.settle_tds_rules``).
        newest_first = tuple(sorted(self.tds_rules, key=_rule_start, reverse=True))
        object.__setattr__(self, "tds_rules", newest_first)
        for offset in self.reminder_offsets:
            if offset <= timedelta(0):
                raise ValueError("reminder offsets must be positive")
        tiers = [t.more_than for t in self.reschedule_tiers]
        if tiers != sorted(tiers, reverse=True):
            raise ValueError("reschedule tiers must be ordered from the longest notice down")

    # --- derived helpers ------------------------------------------------------------------
    @property
    def allowed_meet_domains(self) -> tuple[str, ...]:
        return tuple(self.meet_link_domains) + tuple(self.extra_meet_link_domains)

    @property
    def patient_cancellation_cut_off(self) -> timedelta:
        """Within this notice a patient can no longer cancel online (the last, shortest
        tier's notice); an administrator's late tier applies from there on."""
        return min((t.notice for t in self.patient_cancellation_tiers), default=timedelta(0))

    def tds_rule_for(self, fy_or_date) -> TdsRule:
        """The TDS rule in force for a financial year label ("2026-27") or a date: the
        latest rule starting at or before that year; before the first rule, the first. (An
        edit never makes a rule from a later year the first for a year that had its own:
        ``policy_data.settle_tds_rules``.)"""
        label = fy_or_date if isinstance(fy_or_date, str) else financial_year(fy_or_date)
        start, _ = financial_year_bounds(label)
        for rule in self.tds_rules:  # newest first
            if _rule_start(rule) <= start:
                return rule
        return self.tds_rules[-1]

    def with_changes(self, **changes) -> Policy:
        """A copy with some values replaced (validated again)."""
        return dataclasses.replace(self, **changes)


_MONEY_FIELDS = frozenset(
    {
        "provider_cancellation_penalty",
        "payout_minimum",
        "imps_limit",
        "adjustment_approval_threshold",
    }
)
_COUNT_FIELDS = frozenset(
    {
        "payout_max_attempts",
        "note_min_length",
        "payment_failures_for_intervention",
        "payment_max_attempts",
    }
)

DEFAULT_POLICY = Policy()
