"""Dashboard data in bulk: ``days`` of clinic days for ``providers`` providers, inserted with
Core ``INSERT``s in chunks (no ORM objects, no services): confirmed bookings each in a visit
of its own with a captured payment and its timeline, some failed attempts, cancelled
bookings refunded (wallet at once, gateway within hours), weekly payouts (some touched by
an administrator). Deterministic for a seed; ``seed_dashboard`` returns what it wrote as
Python lists so a test can compute the expected figures independently.

Used by ``tests/load/bench_dashboard.py`` (a year for 50 providers on PostgreSQL) and by
``tests/dashboard`` (a few weeks for a few providers)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.booking.models import IndividualBooking, MasterBooking, booking_providers
from portal.catalog.models import Provider
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.payments.models import Payment, PaymentAttempt
from portal.payouts.models import FundAccount, Payout
from portal.refunds.models import Refund
from tests.booking.factories import build_world

FEE, PLATFORM, GST = 50_000, 2_500, 450
TOTAL = FEE + PLATFORM + GST
CHUNK = 5_000


@dataclass
class Seeded:
    bookings: list = field(default_factory=list)  # confirmed_at
    payments: list = field(default_factory=list)  # (paid_at, amount)
    failed_attempts: list = field(default_factory=list)  # at
    refunds: list = field(default_factory=list)  # (created_at, processed_at, amount, to_wallet)
    payouts: list = field(default_factory=list)  # (processed_at, net, manual)


def _insert(table, rows):
    for i in range(0, len(rows), CHUNK):
        db.session.execute(sa.insert(table), rows[i : i + CHUNK])


def _next_id(model):
    return (db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1


def seed_dashboard(now, *, providers=50, days=365, per_day=6, seed=1):
    """Write the data (inside the caller's app context) and commit; returns :class:`Seeded`."""
    rng = random.Random(seed)
    world = build_world(tag=f" {seed}")
    db.session.flush()
    start_user = _next_id(User)
    users = [
        {
            "id": start_user + n,
            "email": f"dash-provider{seed}-{n}@example.com",
            "email_key": f"dash-provider{seed}-{n}@example.com",
            "name": f"Dr Dash {n}",
            "role": "provider",
            "phone": None,
        }
        for n in range(providers)
    ]
    _insert(User.__table__, users)
    start_provider = _next_id(Provider)
    provider_rows = [
        {"id": start_provider + n, "user_id": u["id"], "display_name": u["name"]}
        for n, u in enumerate(users)
    ]
    _insert(Provider.__table__, provider_rows)
    start_fund = _next_id(FundAccount)
    _insert(
        FundAccount.__table__,
        [
            {
                "id": start_fund + n,
                "provider_id": p["id"],
                "kind": "bank_account",
                "holder_name": "Dr Dash",
                "status": "VALIDATED",
            }
            for n, p in enumerate(provider_rows)
        ],
    )
    out = Seeded()
    visits, items, links, payments, attempts, refunds, payouts, audit = ([] for _ in range(8))
    visit_id, item_id, payment_id = (
        _next_id(MasterBooking),
        _next_id(IndividualBooking),
        _next_id(Payment),
    )
    today = now.astimezone(CLINIC_TZ).date()
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        opening = datetime.combine(day, time(9), tzinfo=CLINIC_TZ).astimezone(UTC)
        for p in provider_rows:
            for k in range(per_day):
                confirmed = opening + timedelta(minutes=rng.randrange(0, 9 * 60))
                if confirmed > now:
                    continue
                start = confirmed + timedelta(days=rng.randrange(2, 10))
                cancelled = rng.random() < 0.08
                visits.append(
                    {
                        "id": visit_id,
                        "number": f"D{visit_id:08d}",
                        "patient_id": world.patients[k % len(world.patients)],
                        "created_by_id": world.patients[k % len(world.patients)],
                        "status": "CANCELLED" if cancelled else "CONFIRMED",
                        "confirmed_at": confirmed,
                        "created_at": confirmed - timedelta(minutes=5),
                    }
                )
                items.append(
                    {
                        "id": item_id,
                        "master_id": visit_id,
                        "service_id": world.consult,
                        "clinic_id": world.clinic,
                        "start_at": start,
                        "end_at": start + timedelta(minutes=30),
                        "status": "CANCELLED" if cancelled else "CONFIRMED",
                        "fee": FEE,
                        "platform_fee": PLATFORM,
                        "gst": GST,
                        "total": TOTAL,
                        "paid_amount": TOTAL,
                        "gateway_paid": TOTAL,
                        "refunded_amount": TOTAL if cancelled else 0,
                        "confirmed_at": confirmed,
                        "created_at": confirmed - timedelta(minutes=5),
                    }
                )
                links.append({"booking_id": item_id, "provider_id": p["id"]})
                out.bookings.append(confirmed)
                payments.append(
                    {
                        "id": payment_id,
                        "master_id": visit_id,
                        "kind": "ORDER",
                        "amount": TOTAL,
                        "captured_amount": TOTAL,
                        "status": "SUCCESSFUL",
                        "razorpay_order_id": f"order_d{payment_id}",
                        "razorpay_payment_id": f"pay_d{payment_id}",
                        "created_at": confirmed - timedelta(minutes=5),
                        "paid_at": confirmed,
                    }
                )
                out.payments.append((confirmed, TOTAL))
                attempts.append(
                    {
                        "payment_id": payment_id,
                        "at": confirmed,
                        "event": "payment.captured",
                        "status": "SUCCESSFUL",
                    }
                )
                if rng.random() < 0.05:
                    failed_at = confirmed - timedelta(minutes=2)
                    attempts.append(
                        {
                            "payment_id": payment_id,
                            "at": failed_at,
                            "event": "payment.failed",
                            "status": "FAILED",
                        }
                    )
                    out.failed_attempts.append(failed_at)
                if cancelled:
                    made = confirmed + timedelta(hours=rng.randrange(1, 40))
                    wallet = rng.random() < 0.3
                    done = made + (
                        timedelta(seconds=1) if wallet else timedelta(minutes=rng.randrange(5, 600))
                    )
                    if done <= now:
                        refunds.append(
                            {
                                "booking_id": item_id,
                                "visit_id": visit_id,
                                "patient_id": world.patients[k % len(world.patients)],
                                "amount": TOTAL,
                                "destination": "WALLET" if wallet else "GATEWAY",
                                "payment_id": payment_id,
                                "razorpay_payment_id": None if wallet else f"pay_d{payment_id}",
                                "idempotency_key": f"dash-refund-{item_id}",
                                "status": "PROCESSED",
                                "created_at": made,
                                "updated_at": done,
                                "processed_at": done,
                            }
                        )
                        out.refunds.append((made, done, TOTAL, wallet))
                visit_id += 1
                item_id += 1
                payment_id += 1
        if day.weekday() == 0:  # Monday: last week's payouts
            for n, p in enumerate(provider_rows):
                processed = opening + timedelta(hours=1, minutes=n)
                if processed > now:
                    continue
                gross = FEE * per_day * 5
                manual = rng.random() < 0.04
                key = f"dash-{seed}-{p['id']}-{day.isoformat()}"
                payouts.append(
                    {
                        "provider_id": p["id"],
                        "fund_account_id": start_fund + n,
                        "kind": "CYCLE",
                        "financial_year": "2026-27",
                        "gross": gross,
                        "tds": 0,
                        "net": gross,
                        "tds_rate_bps": 1_000,
                        "tds_threshold": 5_000_000,
                        "mode": "IMPS",
                        "idempotency_key": key[-36:],
                        "status": "PROCESSED",
                        "attempts": 1,
                        "created_at": processed - timedelta(hours=1),
                        "updated_at": processed,
                        "processed_at": processed,
                    }
                )
                out.payouts.append((processed, gross, manual))
    _insert(MasterBooking.__table__, visits)
    _insert(IndividualBooking.__table__, items)
    _insert(booking_providers, links)
    _insert(Payment.__table__, payments)
    _insert(PaymentAttempt.__table__, attempts)
    _insert(Refund.__table__, refunds)
    start_payout = _next_id(Payout)
    for n, row in enumerate(payouts):
        row["id"] = start_payout + n
    _insert(Payout.__table__, payouts)
    for row, (_, _, manual) in zip(payouts, out.payouts):
        if manual:
            audit.append(
                {
                    "at": row["processed_at"] - timedelta(minutes=30),
                    "actor_id": world.admin,
                    "action": "payout.admin_retry",
                    "object_type": "payout",
                    "object_id": str(row["id"]),
                }
            )
    _insert(AuditEntry.__table__, audit)
    _resync_sequences(
        ("users", "providers", "fund_accounts", "visits", "bookings", "payments", "payouts")
    )
    db.session.commit()
    return out


def _resync_sequences(tables):
    """PostgreSQL: rows inserted with explicit ids leave the id sequences behind."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        db.session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )
