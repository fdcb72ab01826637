"""Ledger postings of the booking capability (docs/ledger.md; docs/booking.md).

The booking capability's own account: ``wallet_reserved`` (liability), wallet money set
aside at checkout for a visit not confirmed yet, so the same rupee cannot pay twice. The
ledger's chart lists it (``portal.ledger.accounts.FIXED``); it is imported from there."""

from portal import events
from portal.booking.errors import BookingError
from portal.domain.states import BookingStatus
from portal.i18n import N_
from portal.ledger import accounts as chart
from portal.ledger.service import InsufficientBalance, credit, debit, post

WALLET_RESERVED = chart.WALLET_RESERVED

MSG_WALLET_LOW = N_("Insufficient wallet balance")
# A visit's confirmation: its invoice (the GST report's invoice rows, and the transactions
# console's row of a visit no payment paid) reads it.
VISIT_CONFIRMED = "visit_confirmed"


def reserve_wallet(visit, payment):
    """Move the wallet part of a checkout into ``wallet_reserved`` (balance-checked under
    a row lock: two checkouts can never spend the same balance)."""
    wallet = chart.patient_wallet(visit.patient_id)
    try:
        return post(
            "wallet_reserve",
            [debit(wallet, payment.amount), credit(WALLET_RESERVED, payment.amount)],
            reference=("payment", payment.id),
            idempotency_key=f"wallet_reserve:{payment.id}",
            require_non_negative=[wallet],
        )
    except InsufficientBalance:
        raise BookingError(MSG_WALLET_LOW, field="wallet") from None


def release_wallet(visit, payment):
    """Give a reservation back to the wallet (hold expired, checkout abandoned)."""
    wallet = chart.patient_wallet(visit.patient_id)
    return post(
        "wallet_release",
        [debit(WALLET_RESERVED, payment.amount), credit(wallet, payment.amount)],
        reference=("payment", payment.id),
        idempotency_key=f"wallet_release:{payment.id}",
    )


def re_reserve_wallet(visit, payment):
    """Take a released reservation again (a late gateway payment revives the visit; a
    visit is revived at most once, it never expires after its confirmation)."""
    wallet = chart.patient_wallet(visit.patient_id)
    return post(
        "wallet_reserve",
        [debit(wallet, payment.amount), credit(WALLET_RESERVED, payment.amount)],
        reference=("payment", payment.id),
        idempotency_key=f"wallet_rereserve:{payment.id}",
        require_non_negative=[wallet],
    )


def post_confirmation(visit, *, gateway_amount, wallet_amount, money_account):
    """The visit is paid: money in (gateway clearing / cash desk / reserved wallet) and the
    coupon (platform-borne) against care fees F, platform revenue P and GST G. Posted once
    per visit whatever repeats (the key)."""
    items = [i for i in visit.items if i.status == BookingStatus.CONFIRMED]
    fee = sum(i.fee for i in items)
    platform = sum(i.platform_fee for i in items)
    gst = sum(i.gst for i in items)
    discount = sum(i.discount_share for i in items)
    lines = [
        debit(money_account, gateway_amount),
        debit(WALLET_RESERVED, wallet_amount),
        debit(chart.DISCOUNTS, discount),
        credit(chart.UNEARNED_FEES, fee),
        credit(chart.PLATFORM_REVENUE, platform),
        credit(chart.GST_PAYABLE, gst),
    ]
    return post(
        VISIT_CONFIRMED,
        lines,
        reference=("visit", visit.id),
        idempotency_key=f"visit_confirm:{visit.id}",
        memo=f"visit {visit.number} confirmed",
    )


def credit_unapplied_payment(visit, payment, amount, reason):
    """Money captured that confirms nothing (late, slot gone, or the wrong amount): it is
    the patient's, so it goes to their wallet, and an admin is alerted."""
    wallet = chart.patient_wallet(visit.patient_id)
    return post(
        "unapplied_payment",
        [debit(chart.GATEWAY_CLEARING, amount), credit(wallet, amount)],
        reference=("payment", payment.id),
        idempotency_key=f"unapplied:{payment.id}",
        memo=reason,
    )


CLOSED_ACCOUNT_CAPTURE = "closed_account_capture"


def refund_closed_account_capture(
    visit, *, booking_id, razorpay_payment_id, amount, reference, payment_id=None,
    reschedule_id=None,
):  # fmt: skip
    """Money captured after the visit's patient closed the account: owed back at once
    (``gateway_clearing`` → ``refunds_payable``, once per Razorpay payment id), never to
    the wallet; the refunds capability makes the gateway refund of it
    (``events.paid_for_closed_account`` → ``refunds.unapplied``)."""
    post(
        CLOSED_ACCOUNT_CAPTURE,
        [debit(chart.GATEWAY_CLEARING, amount), credit(chart.REFUNDS_PAYABLE, amount)],
        reference=reference,
        idempotency_key=f"{CLOSED_ACCOUNT_CAPTURE}:{razorpay_payment_id}",
        memo="captured after the account was closed: refunded to its source",
    )
    events.paid_for_closed_account.send(
        "booking",
        visit_id=visit.id,
        patient_id=visit.patient_id,
        booking_id=booking_id,
        payment_id=payment_id,
        reschedule_id=reschedule_id,
        razorpay_payment_id=razorpay_payment_id,
        amount=amount,
    )
