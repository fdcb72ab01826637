"""Refund rules as plain functions (no request, no database): a refund's parts, and what
a failed refund allows an administrator."""

from types import SimpleNamespace

from portal.refunds.common import MSG_CLOSED_ACCOUNT, MSG_NOT_FAILED
from portal.refunds.failed import RETRY, SETTLE, TO_WALLET, actions
from portal.refunds.models import GATEWAY, WALLET
from portal.refunds.money import Split, split_of
from portal.refunds.previews import admin_modes, tier_text


def _row(amount, destination):
    return SimpleNamespace(amount=amount, destination=destination)


def test_a_refunds_parts_are_summed_by_where_each_row_went():
    rows = [_row(30_000, WALLET), _row(45_050, GATEWAY), _row(1, WALLET), _row(9_999, GATEWAY)]
    split = split_of(rows)
    assert split == Split(to_wallet=30_001, to_gateway=55_049)
    assert split.total == 85_050


def test_no_rows_are_no_parts():
    assert split_of([]) == Split(0, 0)
    assert split_of([]).total == 0


def test_one_destination_leaves_the_other_part_zero():
    assert split_of([_row(12_345, GATEWAY)]) == Split(0, 12_345)
    assert split_of([_row(500, WALLET)]) == Split(500, 0)


# --- what a refund allows an administrator (refunds.failed.actions) ------------------------


def _refund(
    status="FAILED", superseded=False, destination=GATEWAY, closed=False, refunded_outside=None
):
    patient = SimpleNamespace(is_closed=closed)
    return SimpleNamespace(
        status=status,
        superseded=superseded,
        destination=destination,
        patient=patient,
        payment_id=7,
        refunded_outside=refunded_outside,
    )


def test_a_failed_gateway_refund_can_be_retried_or_sent_to_the_wallet():
    can = actions(_refund())
    assert (can.retry, can.to_wallet, can.no_wallet) == (True, True, "")
    assert can.refusal(RETRY) is None and can.refusal(TO_WALLET) is None


def test_a_closed_accounts_failed_refund_can_be_retried_not_sent_to_the_wallet():
    can = actions(_refund(closed=True))
    assert (can.retry, can.to_wallet) == (True, False)
    assert can.no_wallet == "Account closed: no wallet"
    assert can.refusal(RETRY) is None
    assert can.refusal(TO_WALLET) == MSG_CLOSED_ACCOUNT


def test_settling_is_offered_once_razorpay_said_a_dashboard_refund_took_the_room():
    """Send to wallet refused for a dashboard refund keeps what Razorpay said
    (``refunded_outside``): the list offers Settle in its place (refunds.outside)."""
    assert not actions(_refund()).settle
    can = actions(_refund(refunded_outside=10_000))
    assert (can.retry, can.to_wallet, can.settle) == (True, True, True)
    assert can.refusal(SETTLE) is None
    assert actions(_refund(refunded_outside=10_000, closed=True)).settle
    assert not actions(_refund(refunded_outside=10_000, superseded=True)).settle
    assert actions(_refund(refunded_outside=10_000, superseded=True)).refusal(SETTLE) == (
        MSG_NOT_FAILED
    )


def test_anything_but_a_failed_gateway_refund_not_replaced_allows_nothing():
    for refund in (
        _refund(status="PROCESSED"),
        _refund(status="PENDING"),
        _refund(superseded=True),
        _refund(destination=WALLET),
    ):
        can = actions(refund)
        assert (can.retry, can.to_wallet, can.no_wallet) == (False, False, "")
        assert can.refusal(RETRY) == MSG_NOT_FAILED
        assert can.refusal(TO_WALLET) == MSG_NOT_FAILED


# --- the words of the refund each way of cancelling gives (refunds.previews) ---------------


def _policy():
    from datetime import timedelta

    from portal.domain.policy import DEFAULT_POLICY, RefundTier
    from portal.domain.rates import rupees

    first, _second = DEFAULT_POLICY.patient_cancellation_tiers
    return DEFAULT_POLICY.with_changes(
        # The cut-off is the last tier's notice: 12 h.
        patient_cancellation_tiers=(first, RefundTier(timedelta(hours=12), False, 7_500)),
        admin_late_cancellation=RefundTier(timedelta(0), True, 4_050, rupees(300)),
        provider_cancellation_refund_bps=9_025,
        provider_cancellation_penalty=rupees(300),
        clinic_cancellation_refund_bps=9_550,
    )


def test_the_admins_cancel_modes_state_the_policys_figures():
    assert admin_modes(_policy()) == [
        ("patient", "For the patient (policy tier; 40.5% − ₹300 within 12 h)"),
        ("clinic", "For the clinic (95.5% refund, no penalty)"),
        ("provider", "For the provider (90.25% refund, ₹300 penalty on the provider)"),
    ]


def test_the_admins_modes_and_the_patients_rule_texts_say_the_same_figures():
    policy = _policy()
    modes = dict(admin_modes(policy))
    assert "95.5%" in modes["clinic"] and "95.5%" in tier_text("clinic", policy)
    assert "90.25%" in modes["provider"] and "90.25%" in tier_text("provider", policy)
    late = tier_text("admin_late", policy)
    assert "40.5% − ₹300" in modes["patient"] and "40.5% − ₹300" in late
    assert "within 12 h" in modes["patient"] and "within 12 hours" in late


def test_the_patient_mode_names_the_tier_that_applies_to_this_booking():
    """Review finding: the patient option said "50% − ₹250 within 24 h" while the preview
    below it (rightly) gave 75% − ₹100: the label names the tier this booking gets now."""
    from datetime import timedelta

    from portal.domain.cancellation import admin_patient_tier
    from portal.domain.policy import DEFAULT_POLICY as P

    first, second = P.patient_cancellation_tiers
    far, near, late = (
        first.notice + timedelta(hours=1),
        second.notice + timedelta(hours=1),
        timedelta(hours=1),
    )
    assert admin_patient_tier(far, P) == first
    assert admin_patient_tier(near, P) == second
    assert admin_patient_tier(late, P) == P.admin_late_cancellation
    label = dict(admin_modes(P, until_start=near))["patient"]
    assert "75% − ₹100" in label and "50% − ₹250" not in label, label
    label = dict(admin_modes(P, until_start=late))["patient"]
    assert "50% − ₹250" in label and "within 24 h" in label, label
    assert "100%" in dict(admin_modes(P, until_start=far))["patient"]
