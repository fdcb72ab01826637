"""A visit a 100 % coupon paid moves no money, so no payment's row carries its invoice;
its confirmation has a row of its own (review finding: the console's GST column left its
GST out, while docs/transactions.md says the column sums the GST invoiced, once)."""

import sqlalchemy as sa

from portal.booking import coupons
from portal.extensions import db
from portal.reports import gst
from portal.transactions import models as mm
from portal.transactions import projection
from portal.transactions.filters import MovementFilter
from portal.transactions.queries import summary
from tests.booking.factories import NOW, at
from tests.querycount import counted_queries
from tests.refunds.helpers import book_and_pay
from tests.transactions.test_console_price_breakup import _paise, _rows

COLUMNS = ("type", "bucket", "amount", "net", "fee", "platform_fee", "gst", "discount", "wallet")


def _free_rows():
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(mm.MoneyMovement).where(mm.MoneyMovement.type == mm.VISIT_UNPAID)
    )
    return {(r.source, r.source_id): tuple(getattr(r, c) for c in COLUMNS) for r in rows}


def test_the_consoles_gst_column_sums_the_gst_invoiced_with_a_free_visit(
    world, users, gateway, clock
):
    """A visit a 100 % coupon paid is invoiced with its GST (decision: GST on the
    undiscounted price, the discount the platform's expense) like any other."""
    patient, admin = users(world.patients[0]), users(world.admin)
    coupons.create_coupon(admin, code="FREE", kind="PERCENT", value=10_000)
    book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    book_and_pay(
        world, patient, gateway, [(world.lab, [world.lab_provider], at(4, 12))], coupon="FREE"
    )
    invoiced = gst.report(gst.parse({"month": "2026-06"})).collected
    assert invoiced == 450 + 300
    rows = _rows({"preset": "today"})
    assert sum(_paise(r["GST"]) or 0 for r in rows) == invoiced, [
        (r["Type"], r["Amount"], r["GST"]) for r in rows
    ]


def test_a_free_visits_row_moves_no_cash_and_a_rebuild_writes_it(
    world, users, gateway, clock, client, login, make_user
):
    patient, admin = users(world.patients[0]), users(world.admin)
    coupons.create_coupon(admin, code="FREE", kind="PERCENT", value=10_000)
    visit = book_and_pay(
        world, patient, gateway, [(world.lab, [world.lab_provider], at(4, 12))], coupon="FREE"
    )
    [(key, row)] = _free_rows().items()
    [item] = visit.items
    # the invoice's breakup, adding up to the amount: nothing
    assert row == (mm.VISIT_UNPAID, None, 0, 0, item.fee, item.platform_fee, 300, item.total, 0)
    today = NOW.date()
    figures = summary(MovementFilter(start=today, end=today))
    assert (figures.count, figures.money_in, figures.not_cash_count) == (1, 0, 1)

    # ``flask transactions rebuild`` writes it too, into an emptied table
    db.session.execute(sa.delete(mm.MoneyMovement))
    db.session.commit()
    projection.rebuild()
    assert _free_rows() == {key: row}

    # the console's page reads such rows in a fixed number of statements
    login(make_user("admin", email="console@example.com"))

    def statements():
        with counted_queries() as seen:
            assert client.get("/admin/transactions?preset=today").status_code == 200
        return len(seen)

    before = statements()
    for hour in (14, 15):
        book_and_pay(
            world, patient, gateway, [(world.lab, [world.lab_provider], at(4, hour))], coupon="FREE"
        )
    assert len(_free_rows()) == 3
    assert statements() == before
