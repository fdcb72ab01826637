import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.states import (
    APPROVAL,
    BOOKING,
    BOOKING_LATE_PAYMENT,
    PAYMENT,
    PAYOUT,
    POLICY_VERSION,
    REFUND,
    RESCHEDULE,
    VISIT,
    InvalidTransition,
    can_transition,
    derive_master_status,
    transition,
)
from portal.domain.states import (
    ApprovalStatus as A,
)
from portal.domain.states import (
    BookingStatus as B,
)
from portal.domain.states import (
    MasterStatus as M,
)
from portal.domain.states import (
    PaymentStatus as P,
)
from portal.domain.states import (
    PayoutStatus as O,
)
from portal.domain.states import (
    PolicyStatus as Y,
)
from portal.domain.states import (
    RefundStatus as R,
)
from portal.domain.states import (
    RescheduleStatus as S,
)
from portal.domain.states import (
    VisitStatus as V,
)

ALLOWED = {
    BOOKING: {
        (B.SCHEDULED, B.CONFIRMED),
        (B.CONFIRMED, B.STARTED),
        (B.STARTED, B.COMPLETED),
        (B.SCHEDULED, B.EXPIRED),
        (B.SCHEDULED, B.CANCELLED),
        (B.CONFIRMED, B.CANCELLED),
    },
    PAYMENT: {(P.PENDING, P.SUCCESSFUL), (P.PENDING, P.FAILED), (P.PENDING, P.EXPIRED)},
    REFUND: {(R.PENDING, R.PROCESSED), (R.PENDING, R.FAILED), (R.FAILED, R.PENDING)},
    PAYOUT: {
        (O.QUEUED, O.PROCESSING),
        (O.PROCESSING, O.PROCESSED),
        (O.PROCESSING, O.FAILED),
        (O.PROCESSING, O.REVERSED),
        (O.PROCESSED, O.REVERSED),
        (O.QUEUED, O.PROCESSED),
        (O.QUEUED, O.FAILED),
        (O.QUEUED, O.REVERSED),
        (O.FAILED, O.QUEUED),
    },
    VISIT: {
        (V.DRAFT, V.PENDING_PAYMENT),
        (V.PENDING_PAYMENT, V.DRAFT),
        (V.DRAFT, V.CONFIRMED),
        (V.DRAFT, V.EXPIRED),
        (V.PENDING_PAYMENT, V.CONFIRMED),
        (V.PENDING_PAYMENT, V.EXPIRED),
        (V.CONFIRMED, V.PARTIALLY_CANCELLED),
        (V.CONFIRMED, V.CANCELLED),
        (V.CONFIRMED, V.COMPLETED),
        (V.PARTIALLY_CANCELLED, V.CANCELLED),
        (V.PARTIALLY_CANCELLED, V.COMPLETED),
        (V.EXPIRED, V.CONFIRMED),
    },
    RESCHEDULE: {
        (S.PENDING_PAYMENT, S.DONE),
        (S.PENDING_PAYMENT, S.FAILED),
        (S.PENDING_PAYMENT, S.EXPIRED),
    },
    APPROVAL: {(A.PENDING, A.APPROVED), (A.PENDING, A.REJECTED)},
    POLICY_VERSION: {(Y.PENDING, Y.APPROVED), (Y.PENDING, Y.REJECTED), (Y.APPROVED, Y.WITHDRAWN)},
}


@pytest.mark.parametrize("machine", list(ALLOWED), ids=lambda m: m.name)
def test_exact_transition_tables(machine):
    for a in machine.states:
        for b in machine.states:
            if (a, b) in ALLOWED[machine]:
                assert transition(a, b) == b
                assert machine.transition(a.value, b.value) == b
                assert can_transition(a, b)
            else:
                assert not can_transition(a, b)
                with pytest.raises(InvalidTransition):
                    transition(a, b)


def test_specific_refusals():
    with pytest.raises(InvalidTransition, match="STARTED to CANCELLED"):
        transition(B.STARTED, B.CANCELLED)
    with pytest.raises(InvalidTransition):
        transition(B.EXPIRED, B.CONFIRMED)
    with pytest.raises(InvalidTransition):
        transition(B.COMPLETED, B.CANCELLED)
    with pytest.raises(InvalidTransition):
        transition(P.FAILED, P.SUCCESSFUL)
    with pytest.raises(InvalidTransition):
        transition(O.REVERSED, O.PROCESSED)
    with pytest.raises(InvalidTransition):
        BOOKING.transition("BOGUS", "CONFIRMED")
    with pytest.raises(InvalidTransition):
        BOOKING.transition("SCHEDULED", "BOGUS")


def test_allow_same_for_repeated_events():
    assert transition(P.SUCCESSFUL, P.SUCCESSFUL, allow_same=True) == P.SUCCESSFUL
    with pytest.raises(InvalidTransition):
        transition(P.SUCCESSFUL, P.SUCCESSFUL)


def test_plain_strings_need_a_machine():
    with pytest.raises(TypeError):
        transition("PENDING", "FAILED")
    assert transition("PENDING", "FAILED", PAYMENT) == "FAILED"
    assert B.CONFIRMED == "CONFIRMED"


def test_final_states():
    assert BOOKING.is_final(B.COMPLETED) and BOOKING.is_final(B.EXPIRED)
    assert not PAYOUT.is_final(O.PROCESSED)
    assert PAYOUT.is_final(O.REVERSED)


@pytest.mark.parametrize(
    "items,master",
    [
        ([B.CANCELLED], M.CANCELLED),
        ([B.CANCELLED, B.CANCELLED], M.CANCELLED),
        ([B.EXPIRED, B.EXPIRED], M.EXPIRED),
        ([B.EXPIRED, B.CANCELLED], M.CANCELLED),
        ([B.CONFIRMED, B.CANCELLED], M.PARTIALLY_CANCELLED),
        ([B.SCHEDULED, B.CANCELLED], M.PARTIALLY_CANCELLED),
        ([B.STARTED, B.EXPIRED], M.PARTIALLY_CANCELLED),
        ([B.COMPLETED, B.COMPLETED], M.COMPLETED),
        ([B.COMPLETED, B.CANCELLED], M.COMPLETED),
        ([B.COMPLETED, B.EXPIRED, B.CANCELLED], M.COMPLETED),
        ([B.SCHEDULED, B.SCHEDULED], M.PENDING),
        ([B.SCHEDULED, B.CONFIRMED], M.PENDING),
        ([B.CONFIRMED, B.CONFIRMED], M.CONFIRMED),
        ([B.CONFIRMED, B.STARTED], M.CONFIRMED),
        ([B.COMPLETED, B.CONFIRMED], M.CONFIRMED),
        (["CONFIRMED", "COMPLETED"], M.CONFIRMED),
    ],
)
def test_master_status(items, master):
    assert derive_master_status(items) == master


def test_master_status_needs_items():
    with pytest.raises(ValueError):
        derive_master_status([])


@given(st.lists(st.sampled_from(list(B)), min_size=1, max_size=6))
def test_master_status_properties(items):
    status = derive_master_status(items)
    if all(i == B.CANCELLED for i in items):
        assert status == M.CANCELLED
    live = {B.SCHEDULED, B.CONFIRMED, B.STARTED}
    if any(i in live for i in items) and any(i in (B.CANCELLED, B.EXPIRED) for i in items):
        assert status == M.PARTIALLY_CANCELLED
    if status == M.COMPLETED:
        assert B.COMPLETED in items and not any(i in live for i in items)
    assert derive_master_status(list(reversed(items))) == status


def test_late_payment_is_the_one_way_back_from_expired():
    assert BOOKING_LATE_PAYMENT.targets(B.EXPIRED) == {B.CONFIRMED}
    for state in B:
        if state != B.EXPIRED:
            assert BOOKING_LATE_PAYMENT.is_final(state)
    assert not BOOKING.can(B.EXPIRED, B.CONFIRMED)


def test_move_assigns_only_allowed_targets():
    class Row:
        status = "PENDING_PAYMENT"

    row = Row()
    assert RESCHEDULE.move(row, S.DONE) == S.DONE and row.status == S.DONE
    with pytest.raises(InvalidTransition):
        RESCHEDULE.move(row, S.EXPIRED)
    assert row.status == S.DONE
    visit = Row()
    visit.status = V.CONFIRMED
    assert VISIT.move(visit, V.CONFIRMED, allow_same=True) == V.CONFIRMED
