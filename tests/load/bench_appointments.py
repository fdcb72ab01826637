"""Benchmark: the admin appointments list, filtered, over a million appointments.

    .venv/bin/python -m tests.load.bench_appointments                  # 1,000,000, reused if there
    .venv/bin/python -m tests.load.bench_appointments --appointments 100000 --reseed
    .venv/bin/python -m tests.load.bench_appointments --database-url postgresql://postgres@127.0.0.1:5432/cp_ops_bench

PostgreSQL only (the goal is about the production database). The data is bulk-seeded with
``generate_series`` (not timed; a second run reuses it): a year of visits, one appointment
each, 50 providers at 5 clinics, a patient per 20 visits and a child for every other
patient; paid, completed, cancelled, expired, pending (recent) and failed payments; a few
flagged visits, no-shows and reconciliation discrepancies.

Each scenario asks for the page as an admin through the app (``/admin/visits?…`` in the
Flask test client: parsing, the queries, rendering), with the CPU time this process spent
on it (the web worker's share: wall time on a shared machine is mostly waiting for a core),
and separately times the read alone (``booking.desk.appointments_page``). Prints p50 / p95 / max in ms per scenario; the goal is
p95 under 100 ms. No assertions (not collected by pytest)."""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta

import sqlalchemy as sa

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cp_ops_bench"
PASSWORD = "bench-admin-password-1"


def build_app(database_url):
    import portal.booking.models  # noqa: F401
    import portal.notify.models  # noqa: F401
    import portal.payments.models  # noqa: F401
    import portal.reconcile.models  # noqa: F401
    from portal import create_app
    from portal.extensions import db
    from tests.conftest import _test_config, ensure_postgres_database

    ensure_postgres_database(database_url)
    app = create_app(_test_config(database_url, SANDBOX_ENABLED=False))
    with app.app_context():  # kept between runs: the seed is reused
        with db.engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.create_all()
    return app


def _catalog():
    """5 clinics, 3 services, 50 providers (+ an admin); returns their ids."""
    from datetime import time as t

    from portal.accounts.models import User
    from portal.accounts.passwords import hash_password
    from portal.catalog.models import (
        Availability,
        Clinic,
        ClinicHours,
        Provider,
        Service,
        Specialization,
    )
    from portal.extensions import db

    admin = User(
        email="bench.admin@example.com",
        name="Bench Admin",
        role="admin",
        password_hash=hash_password(PASSWORD),
    )
    gp, path = Specialization(name="General Medicine"), Specialization(name="Pathology")
    clinics = []
    for i in range(5):
        c = Clinic(name=f"Clinic {i}", city=["Bengaluru", "Pune", "Delhi", "Chennai", "Kochi"][i])
        c.hours = [ClinicHours(weekday=d, opens=t(9), closes=t(18)) for d in range(5)]
        clinics.append(c)
    services = [
        Service(
            name="Consultation",
            kind="CONSULTATION",
            duration_minutes=30,
            fee_paise=50_000,
            specialization=gp,
        ),
        Service(
            name="Follow-up",
            kind="FOLLOW_UP",
            duration_minutes=30,
            fee_paise=25_000,
            specialization=gp,
        ),
        Service(
            name="Blood test",
            kind="LAB_TEST",
            duration_minutes=30,
            fee_paise=40_000,
            specialization=path,
        ),
    ]
    db.session.add_all([admin, gp, path, *clinics, *services])
    providers = []
    for i in range(50):
        u = User(email=f"bench.doc{i}@example.com", name=f"Dr Bench {i}", role="provider")
        p = Provider(user=u, kind="DOCTOR", display_name=f"Dr Bench {i:02d}")
        p.clinics, p.specializations, p.services = [clinics[i % 5]], [gp, path], services
        p.availability = [
            Availability(clinic=clinics[i % 5], weekday=d, start_time=t(9), end_time=t(18))
            for d in range(5)
        ]
        providers.append(p)
    db.session.add_all(providers)
    db.session.commit()
    return {
        "admin": admin.id,
        "clinic0": clinics[0].id,
        "service0": services[0].id,
        "provider0": providers[0].id,
        "clinics": [c.id for c in clinics],
    }


SEED_SQL = """
-- patients (one per 20 visits) with mobiles +9198xxxxxxxx; a child for every other one
INSERT INTO users (email, email_key, name, phone, role, active, created_at, session_version,
                   failed_logins)
SELECT 'bench.p' || g || '@example.com', 'bench.p' || g || '@example.com',
       'Patient ' || g || ' ' || (ARRAY['Sharma','Rao','Iyer','Khan','Das'])[1 + g % 5],
       '+9198' || lpad(g::text, 8, '0'), 'patient', true, now(), 0, 0
FROM generate_series(1, :patients) g;

CREATE TEMP TABLE bench_patients AS
SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM users WHERE email LIKE 'bench.p%';

INSERT INTO dependents (guardian_id, name, relationship, created_at)
SELECT id, 'Child ' || k || ' ' || (ARRAY['Aarav','Diya','Kabir','Meera'])[1 + k % 4], 'child', now()
FROM bench_patients WHERE k % 2 = 0;

CREATE TEMP TABLE bench_children AS
SELECT p.k, d.id FROM dependents d JOIN bench_patients p ON p.id = d.guardian_id;

-- one visit per g, created over the last 365 days, oldest first
CREATE TEMP TABLE bench_v AS
SELECT g,
       now() - (interval '365 days') * (1 - g::float8 / :n) AS created,
       CASE
         WHEN g % 500 = 3 THEN 'FAILED'
         WHEN g % 100 = 1 THEN 'CANCELLED'
         WHEN g % 100 = 2 THEN 'EXPIRED'
         WHEN g > :n - :n / 180 AND g % 10 = 0 THEN 'PENDING'
         ELSE 'PAID'
       END AS kind,
       (g % :patients) AS pk
FROM generate_series(1, :n) g;

INSERT INTO visits (number, patient_id, dependent_id, created_by_id, channel, status,
                    discount, wallet_applied, attention, created_at, confirmed_at)
SELECT 'V' || lpad(g::text, 7, '0'), p.id,
       CASE WHEN g % 4 = 0 THEN c.id END,
       CASE WHEN g % 3 = 0 THEN :admin ELSE p.id END,
       CASE WHEN g % 3 = 0 THEN 'DESK' ELSE 'ONLINE' END,
       CASE v.kind
         WHEN 'FAILED' THEN 'EXPIRED' WHEN 'CANCELLED' THEN 'CANCELLED'
         WHEN 'EXPIRED' THEN 'EXPIRED' WHEN 'PENDING' THEN 'PENDING_PAYMENT'
         ELSE CASE WHEN v.created + interval '1 day' * (1 + g % 14) < now()
                   THEN 'COMPLETED' ELSE 'CONFIRMED' END
       END,
       0, 0,
       CASE WHEN g % 2000 = 7 THEN 'PAYMENT_FAILED' END,
       v.created,
       CASE WHEN v.kind IN ('PAID', 'CANCELLED') THEN v.created END
FROM bench_v v
JOIN bench_patients p ON p.k = v.pk
LEFT JOIN bench_children c ON c.k = v.pk
ORDER BY g;

CREATE TEMP TABLE bench_ids AS
SELECT id, substr(number, 2)::int AS g, status, created_at FROM visits WHERE number LIKE 'V%';

-- its appointment, 1–14 days after booking, 09:00–17:30 IST
INSERT INTO bookings (master_id, service_id, clinic_id, start_at, end_at, status, fee,
                      platform_fee, gst, total, taxable, fee_taxed, discount_share,
                      paid_amount, wallet_paid, gateway_paid, refunded_amount, created_at)
SELECT b.id, (:services)[1 + b.g % 3], (:clinics)[1 + (b.g % 50) % 5], s.start_at,
       s.start_at + interval '30 minutes',
       CASE b.status WHEN 'PENDING_PAYMENT' THEN 'SCHEDULED' ELSE b.status END,
       f.fee, f.fee / 20, f.fee / 20 * 18 / 100, f.fee + f.fee / 20 + f.fee / 20 * 18 / 100,
       0, false, 0,
       CASE WHEN b.status IN ('CONFIRMED', 'COMPLETED', 'CANCELLED')
            THEN f.fee + f.fee / 20 + f.fee / 20 * 18 / 100 ELSE 0 END,
       0,
       CASE WHEN b.status IN ('CONFIRMED', 'COMPLETED', 'CANCELLED')
            THEN f.fee + f.fee / 20 + f.fee / 20 * 18 / 100 ELSE 0 END,
       CASE WHEN b.status = 'CANCELLED'
            THEN f.fee + f.fee / 20 + f.fee / 20 * 18 / 100 ELSE 0 END,
       b.created_at
FROM bench_ids b,
LATERAL (SELECT date_trunc('day', b.created_at) + interval '1 day' * (1 + b.g % 14)
                + interval '3 hours 30 minutes' + interval '30 minutes' * (b.g % 18)
         AS start_at) s,
LATERAL (SELECT (ARRAY[50000, 25000, 40000])[1 + b.g % 3]::bigint AS fee) f;

INSERT INTO booking_providers (booking_id, provider_id)
SELECT bk.id, (:providers)[1 + b.g % 50]
FROM bookings bk JOIN bench_ids b ON b.id = bk.master_id;

-- its payment: paid (order or desk), pending link, failed after 5 tries, expired
INSERT INTO payments (master_id, kind, amount, status, razorpay_payment_id, receipt_no,
                      expires_at, created_at, paid_at)
SELECT b.id,
       CASE WHEN b.status = 'PENDING_PAYMENT' THEN 'LINK'
            WHEN b.g % 3 = 0 AND b.status <> 'EXPIRED' THEN 'DESK' ELSE 'ORDER' END,
       bk.total,
       CASE WHEN b.status = 'PENDING_PAYMENT' THEN 'PENDING'
            WHEN b.status = 'EXPIRED' AND b.g % 500 = 3 THEN 'FAILED'
            WHEN b.status = 'EXPIRED' THEN 'EXPIRED' ELSE 'SUCCESSFUL' END,
       CASE WHEN b.status IN ('CONFIRMED', 'COMPLETED', 'CANCELLED') AND b.g % 3 <> 0
            THEN 'pay_bench' || b.g END,
       CASE WHEN b.g % 3 = 0 AND b.status <> 'EXPIRED' THEN 'R-' || b.g END,
       b.created_at + interval '1 day', b.created_at,
       CASE WHEN b.status IN ('CONFIRMED', 'COMPLETED', 'CANCELLED') THEN b.created_at END
FROM bench_ids b JOIN bookings bk ON bk.master_id = b.id;

INSERT INTO payment_attempts (payment_id, at, event, status, razorpay_payment_id)
SELECT p.id, p.created_at, 'payment.failed', 'FAILED', 'pay_fail' || p.id || '_' || t
FROM payments p, generate_series(1, 5) t WHERE p.status = 'FAILED';

-- no-shows and reconciliation discrepancies
INSERT INTO attention_flags (booking_id, visit_id, kind, created_at)
SELECT bk.id, b.id, 'NO_SHOW', now() FROM bench_ids b JOIN bookings bk ON bk.master_id = b.id
WHERE b.g % 3000 = 11 AND b.status = 'COMPLETED';

INSERT INTO recon_cases (kind, reference, status, reason, visit_id, first_seen_at, updated_at)
SELECT 'payment', 'pay_bench' || b.g, 'discrepancy', 'amount_differs', b.id, now(), now()
FROM bench_ids b WHERE b.g % 1000 = 5;
"""


def seed(app, n):
    from portal.extensions import db

    with app.app_context():
        ids = _catalog()
        from portal.catalog.models import Provider, Service

        services = db.session.scalars(sa.select(Service.id).order_by(Service.id)).all()
        providers = db.session.scalars(sa.select(Provider.id).order_by(Provider.id)).all()
        params = {
            "n": n,
            "patients": max(n // 20, 10),
            "admin": ids["admin"],
            "services": services,
            "clinics": ids["clinics"],
            "providers": providers,
        }
        for statement in SEED_SQL.split(";\n"):
            text = "\n".join(
                line for line in statement.splitlines() if not line.strip().startswith("--")
            ).strip()
            if text:
                db.session.execute(sa.text(text), params)
        db.session.commit()
    with (
        app.app_context(),
        db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
    ):
        conn.execute(sa.text("VACUUM ANALYZE"))


def existing(app):
    from portal.booking.models import IndividualBooking
    from portal.extensions import db

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(IndividualBooking))


def reset(app):
    from portal.extensions import db

    with app.app_context():
        db.drop_all()
        db.create_all()


def scenarios(app):
    """(name, query string, VisitFilter) for what an operator asks all day."""
    from portal.accounts.models import Dependent, User
    from portal.booking.desk import VisitFilter
    from portal.booking.models import MasterBooking
    from portal.catalog.models import Clinic, Provider
    from portal.db import utcnow
    from portal.domain.timezone import CLINIC_TZ
    from portal.extensions import db

    with app.app_context():
        provider = db.session.scalar(sa.select(Provider.id).order_by(Provider.id))
        clinic = db.session.scalar(sa.select(Clinic.id).order_by(Clinic.id))
        patient = db.session.scalar(
            sa.select(User).where(User.role == "patient").order_by(User.id).offset(123)
        )
        child = db.session.scalar(
            sa.select(Dependent).order_by(Dependent.id).offset(78)
        )  # has visits
        number = db.session.scalar(
            sa.select(MasterBooking.number).order_by(MasterBooking.id).offset(4321)
        )
        today = utcnow().astimezone(CLINIC_TZ).date()
    last_month = today - timedelta(days=40)
    mobile = patient.phone[-10:-5] + " " + patient.phone[-5:]
    return [
        ("no filter", "", VisitFilter()),
        ("status confirmed", "status=CONFIRMED", VisitFilter(status="CONFIRMED")),
        ("payment pending", "payment=PENDING", VisitFilter(payment_status="PENDING")),
        ("payment failed", "payment=FAILED", VisitFilter(payment_status="FAILED")),
        ("provider", f"provider={provider}", VisitFilter(provider_id=provider)),
        (
            "next 7 days",
            "preset=next7",
            VisitFilter(date_from=today, date_to=today + timedelta(days=6)),
        ),
        (
            "a month ago + clinic",
            f"date_from={last_month}&date_to={last_month + timedelta(days=6)}&clinic={clinic}",
            VisitFilter(
                date_from=last_month, date_to=last_month + timedelta(days=6), clinic_id=clinic
            ),
        ),
        ("lab tests", "service_kind=LAB_TEST", VisitFilter(service_kind="LAB_TEST")),
        ("needs attention", "attention=yes", VisitFilter(needs_attention=True)),
        ("search name", f"q={patient.name}", VisitFilter(search=patient.name.lower())),
        ("search mobile", f"q={mobile}", VisitFilter(search=mobile)),
        (
            "search child",
            f"q={child.name.split()[1]}+{child.name.split()[2]}",
            VisitFilter(search=child.name.lower()),
        ),
        ("search visit number", f"q={number}", VisitFilter(search=number.lower())),
    ]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(app, runs):
    from portal.booking import desk
    from portal.extensions import db

    client = app.test_client()
    answer = client.post(
        "/auth/login", data={"email": "bench.admin@example.com", "password": PASSWORD}
    )
    assert answer.status_code in (302, 303), answer.status_code
    print(
        f"{'scenario':28} {'rows':>4} {'page p50':>9} {'p95':>7} {'max':>7} "
        f"{'cpu p50':>8} {'p95':>7} {'read p50':>9} {'p95':>7}"
    )
    worst = 0.0
    for name, query, visit_filter in scenarios(app):
        url = "/admin/visits" + (f"?{query}" if query else "")
        pages, reads, cpus = [], [], []
        rows = 0
        for i in range(runs + 3):
            started, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if i >= 3:
                pages.append(elapsed)
                cpus.append((time.process_time() - cpu) * 1000)
            with app.app_context():
                started = time.perf_counter()
                page = desk.appointments_page(visit_filter, per_page=20)
                if i >= 3:
                    reads.append((time.perf_counter() - started) * 1000)
                rows = len(page.items)
                db.session.remove()
        p95 = percentile(pages, 95)
        worst = max(worst, p95)
        print(
            f"{name:28} {rows:>4} {statistics.median(pages):>9.1f} {p95:>7.1f} "
            f"{max(pages):>7.1f} {statistics.median(cpus):>8.1f} {percentile(cpus, 95):>7.1f} "
            f"{statistics.median(reads):>9.1f} {percentile(reads, 95):>7.1f}"
        )
    print(f"worst page p95: {worst:.1f} ms (goal < 100 ms)")
    print(f"load average meanwhile: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        sys.exit("PostgreSQL only: pass --database-url postgresql://…")
    app = build_app(args.database_url)
    have = existing(app)
    if args.reseed or have != args.appointments:
        reset(app)
        started = time.perf_counter()
        seed(app, args.appointments)
        print(f"seeded {args.appointments:,} appointments in {time.perf_counter() - started:.0f} s")
    else:
        print(f"reusing {have:,} appointments in {args.database_url.rsplit('/', 1)[-1]}")
    run(app, args.runs)


if __name__ == "__main__":
    main()
