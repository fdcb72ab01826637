"""What a cancellation would refund, item by item, before anything changes: the policy
tier and why in words, where the money would go, and reschedule fees given back. Read
only."""

from dataclasses import dataclass

from flask_babel import gettext

from portal.accounts.models import PATIENT
from portal.booking.errors import NotFound
from portal.booking.models import IndividualBooking, MasterBooking
from portal.config import policy as policy_in_force
from portal.db import utcnow
from portal.domain import cancellation as rules
from portal.domain.rates import format_inr, percent_text
from portal.domain.states import BookingStatus
from portal.domain.text import in_hours
from portal.extensions import db
from portal.policies import store as policy_store
from portal.refunds.common import (
    ADMIN_MODES,
    MSG_ALREADY,
    MSG_MODE,
    MSG_NOT_CONFIRMED,
    MSG_STARTED,
    CancellationError,
    hours,
    item_for_admin_or_provider,
    require_admin,
    role,
)
from portal.refunds.money import Split, refund_split, reschedule_fees_refundable

# The words for the refund each way of cancelling gives live here, from the policy's own
# figures: the patient's ``tier_text`` (translated) and the admin's cancel modes
# (``admin_modes``, English as admin pages are), so the two cannot tell a rule differently.


def admin_modes(policy, until_start=None):
    """How an admin cancels (whose cancellation it is decides the tier and the penalty),
    each saying what it gives under ``policy``, the booking's: never a typed-in figure.
    With ``until_start`` (the booking's time left) the patient option names the tier that
    applies now, as the preview does (it named the late tier whatever the notice)."""
    late = rules.describe_tier(policy.admin_late_cancellation)
    cut_off = in_hours(policy.patient_cancellation_cut_off)
    patient = f"For the patient (policy tier; {late} within {cut_off} h)"
    if until_start is not None:
        tier = rules.admin_patient_tier(until_start, policy)
        if tier is policy.admin_late_cancellation:
            patient = f"For the patient ({late}: within {cut_off} h of the start)"
        else:
            given, notice = rules.describe_tier(tier), in_hours(tier.notice)
            patient = f"For the patient ({given}: more than {notice} h before the start)"
    penalty = policy.provider_cancellation_penalty
    penalty_text = f"{format_inr(penalty)} penalty on the provider" if penalty else "no penalty"
    clinic = percent_text(policy.clinic_cancellation_refund_bps)
    provider = percent_text(policy.provider_cancellation_refund_bps)
    return [
        ("patient", patient),
        ("clinic", f"For the clinic ({clinic}% refund, no penalty)"),
        ("provider", f"For the provider ({provider}% refund, {penalty_text})"),
    ]


def tier_text(rule, policy=None):
    """Why this amount, in words, from the policy's numbers (never literals)."""
    policy = policy or policy_in_force()
    tier = rules.describe_tier
    full, partial = (policy.patient_cancellation_tiers + (None, None))[:2]
    texts = {
        # gettext with named values: the same English, in the reader's language on a page.
        "patient_full": gettext(
            "%(hours)s hours or more before the start: %(tier)s refund",
            hours=in_hours(full.notice),
            tier=tier(full),
        )
        if full
        else gettext("Full refund"),
        "patient_partial": gettext(
            "Between %(low)s and %(high)s hours before the start: %(tier)s",
            low=in_hours(partial.notice),
            high=in_hours(full.notice),
            tier=tier(partial),
        )
        if partial and full
        else gettext("Partial refund"),
        "admin_late": gettext(
            "Cancelled by the clinic for you within %(hours)s hours: %(tier)s",
            hours=in_hours(policy.patient_cancellation_cut_off),
            tier=tier(policy.admin_late_cancellation),
        ),
        "provider": gettext(
            "Cancelled by the provider: %(pct)s%% refund",
            pct=percent_text(policy.provider_cancellation_refund_bps),
        ),
        "clinic": gettext(
            "Cancelled by the clinic: %(pct)s%% refund",
            pct=percent_text(policy.clinic_cancellation_refund_bps),
        ),
        "override": gettext("Refund amount set by an administrator"),
        "override_approved": gettext("Refund amount set by an administrator (approved)"),
        "override_needs_approval": gettext(
            "Calculated refund now; the rest awaits a second administrator's approval"
        ),
    }
    if rule == "admin_patient_tier":
        return gettext("As if cancelled online by the patient")
    return texts.get(rule, "")


@dataclass(frozen=True)
class ItemPreview:
    item: IndividualBooking
    allowed: bool
    message: str
    refund: int
    calculated: int
    refundable: int
    to_wallet: int
    to_gateway: int
    penalty: int
    rule: str
    rule_text: str
    needs_second_admin: bool = False
    fee_refund: int = 0  # reschedule fees given back as well (provider / clinic)


@dataclass(frozen=True)
class Preview:
    items: list
    prefer_wallet: bool

    @property
    def selected_allowed(self):
        return [p for p in self.items if p.allowed]

    @property
    def total_refund(self):
        return sum(p.refund for p in self.items if p.allowed)

    @property
    def to_wallet(self):
        return sum(p.to_wallet for p in self.items if p.allowed)

    @property
    def to_gateway(self):
        return sum(p.to_gateway for p in self.items if p.allowed)

    @property
    def refused(self):
        return [p for p in self.items if not p.allowed]


def state_refusal(item):
    if item.status == BookingStatus.CANCELLED:
        return MSG_ALREADY
    if item.status in (BookingStatus.STARTED, BookingStatus.COMPLETED):
        return MSG_STARTED
    if item.status != BookingStatus.CONFIRMED:
        return MSG_NOT_CONFIRMED
    return None


def _evaluate(item, kind, now, *, override=None, override_reason=None, prefer_wallet=False):
    refusal = state_refusal(item)
    if refusal:
        return ItemPreview(item, False, refusal, 0, 0, 0, 0, 0, 0, "state", "")
    item_policy = policy_store.for_booking(item)
    result = rules.refund_for_cancellation(
        kind,
        hours(item, now),
        item.paid_amount,
        item.refunded_amount,
        item.is_team,
        item_policy,
        override,
        override_reason=override_reason,
    )
    refund_now = (
        result.refund if result.allowed else (result.calculated if result.needs_second_admin else 0)
    )
    split = (
        refund_split(item, refund_now, prefer_wallet)
        if (result.allowed or result.needs_second_admin)
        else Split(0, 0)
    )
    allowed = result.allowed or result.needs_second_admin
    message = result.message
    if result.needs_second_admin:
        message = (
            f"{format_inr(result.calculated)} now; {format_inr(override)} needs a "
            f"second administrator's approval"
        )
    return ItemPreview(
        item,
        allowed,
        message,
        refund_now,
        result.calculated,
        result.refundable,
        split.to_wallet,
        split.to_gateway,
        result.provider_penalty,
        result.rule,
        tier_text(result.rule, item_policy),
        result.needs_second_admin,
        reschedule_fees_refundable(item, kind) if allowed else 0,
    )


def preview_provider(item, now=None):
    """What a provider's cancellation of ``item`` would do now: the patient's refund (the
    policy's provider-cancellation share of what was paid), the penalty, the reschedule
    fees given back (``ItemPreview``). The provider's page states these, not a literal."""
    return _evaluate(item, "provider", now or utcnow())


def patient_visit(patient, visit_id):
    visit = db.session.get(MasterBooking, visit_id) if visit_id is not None else None
    if visit is None or role(patient) != PATIENT or visit.patient_id != patient.id:
        raise NotFound("visit")
    return visit


def cancellable_items(visit):
    """Items the page offers (confirmed ones), in start order."""
    return [i for i in visit.items if i.status == BookingStatus.CONFIRMED]


def preview_cancellation(actor, visit_id, item_ids=None, prefer_wallet=False, now=None):
    """What cancelling these items (default: every confirmed item) would refund, item by
    item, under the patient's tier — read only."""
    visit = patient_visit(actor, visit_id)
    now = now or utcnow()
    chosen = set(int(i) for i in item_ids) if item_ids is not None else None
    items = [
        i
        for i in visit.items
        if chosen is None
        and i.status == BookingStatus.CONFIRMED
        or chosen is not None
        and i.id in chosen
    ]
    if chosen is not None and len(items) != len(chosen):
        raise NotFound("booking")
    return Preview(
        [_evaluate(i, "patient", now, prefer_wallet=prefer_wallet) for i in items], prefer_wallet
    )


def preview_admin(
    admin,
    item_id,
    mode="patient",
    override=None,
    override_reason=None,
    prefer_wallet=False,
    now=None,
):
    require_admin(admin)
    item = item_for_admin_or_provider(item_id)
    kind = ADMIN_MODES.get(mode)
    if kind is None:
        raise CancellationError(MSG_MODE, field="mode")
    return _evaluate(
        item,
        kind,
        now or utcnow(),
        override=override,
        override_reason=override_reason,
        prefer_wallet=prefer_wallet,
    )
