import sys, time, sqlalchemy as sa
from tests.load.bench_appointments import build_app, DEFAULT_URL
app = build_app(DEFAULT_URL)
from portal.extensions import db
from portal.booking import desk
from portal.booking.desk import VisitFilter, VISIT_ORDER
from portal.pagination import _ordered
from portal.catalog.models import Provider
from datetime import date
with app.app_context():
    prov = db.session.scalar(sa.select(Provider.id).order_by(Provider.id))
    cases = {
        "none": VisitFilter(),
        "provider": VisitFilter(provider_id=prov),
        "failed": VisitFilter(payment_status="FAILED"),
        "pending": VisitFilter(payment_status="PENDING"),
        "confirmed": VisitFilter(status="CONFIRMED"),
        "attention": VisitFilter(needs_attention=True),
        "lab": VisitFilter(service_kind="LAB_TEST"),
    }
    which = sys.argv[1:] or list(cases)
    for name in which:
        q = desk.filtered(cases[name])
        q = _ordered(q, VISIT_ORDER, True).limit(21)
        sql = q.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + str(sql))).scalars().all()
        print("=====", name)
        print("\n".join(plan[:25]))
        cq = desk.filtered(cases[name]).with_only_columns(desk.MasterBooking.id).limit(1001).subquery()
        sql = sa.select(sa.func.count()).select_from(cq).compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(sa.text("EXPLAIN (ANALYZE) " + str(sql))).scalars().all()
        print("-- count:", plan[-1])
