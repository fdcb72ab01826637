"""The reschedule fees' document series on PostgreSQL: fees issued at the same moment in
their own transactions take distinct, consecutive numbers (the counter row's upsert waits
for the other's commit), and one rolled back gives its number back to the one waiting."""

import threading
from datetime import datetime

import pytest

from portal.booking import invoices
from portal.booking.models import FeeDocumentCounter
from portal.db import unit_of_work
from portal.extensions import db
from tests.booking.factories import IST
from tests.threads import run_together, wait_for_lock_waiters

pytestmark = pytest.mark.postgres

APRIL = datetime(2026, 4, 1, 9, 0, tzinfo=IST)  # FY 2026-27
N = 8


def test_fees_issued_at_once_take_distinct_consecutive_numbers(pg_app):
    barrier = threading.Barrier(N, timeout=30)

    def issue():
        db.session.rollback()
        barrier.wait()
        with unit_of_work():
            return invoices.next_fee_document_number(APRIL)

    numbers = run_together(pg_app, *[issue] * N)
    assert sorted(numbers) == [f"RF/26-27/{n:06d}" for n in range(1, N + 1)], numbers


def test_a_fee_rolled_back_while_another_waits_leaves_no_gap(pg_app):
    """The first takes 000001 and holds the counter's row; the second waits for it; the
    first rolls back: the second is 000001, and the next 000002."""
    inside = threading.Event()

    def rolled_back():
        try:
            with unit_of_work():
                number = invoices.next_fee_document_number(APRIL)
                inside.set()
                wait_for_lock_waiters(db.engine)
                raise RuntimeError(f"{number}: the fee's charge fails")
        finally:
            inside.set()

    def waits():
        inside.wait(10)
        with unit_of_work():
            return invoices.next_fee_document_number(APRIL)

    failed, number = run_together(pg_app, rolled_back, waits)
    assert isinstance(failed, RuntimeError) and str(failed).startswith("RF/26-27/000001")
    assert number == "RF/26-27/000001"
    with pg_app.app_context():
        with unit_of_work():
            assert invoices.next_fee_document_number(APRIL) == "RF/26-27/000002"
        assert db.session.get(FeeDocumentCounter, "2026-27").last_number == 2
        db.session.remove()
