"""The transactions CSV's summary is its own rows' while a refund is posted mid-export
(PostgreSQL, READ COMMITTED). Re-read finding: the summary was read in a statement of its
own when the export was built, before the rows' statement, so a refund committed between
the two was among the rows and not in the summary above them. It is now added up from the
rows as they are written and follows them, as the GST and TDS files' totals do."""

from datetime import UTC, datetime

import pytest

from portal.exports import spec as export_spec
from portal.extensions import db
from portal.transactions import models as mm
from tests.booking.factories import IST, NOW
from tests.transactions.csv_file import paise, read

pytestmark = pytest.mark.postgres

TODAY = NOW.date()


def _at(hh):
    return datetime.combine(TODAY, datetime.min.time(), IST).replace(hour=hh).astimezone(UTC)


def _row(i, **kw):
    row = {
        "source": "payment",
        "source_id": 9000 + i,
        "type": mm.PAYMENT_ONLINE,
        "status": "SUCCESSFUL",
        "failed": False,
        "bucket": mm.BUCKET_IN,
        "occurred_at": _at(9),
        "amount": 1_000_00,
        "net": 1_000_00,
        "reference": f"pay_RJ{i:04d}",
    }
    row.update(kw)
    return row


@pytest.fixture
def admin(app, clock, make_user, login):
    user = make_user("admin")
    login(user)
    return user


@pytest.fixture
def refund_posted_after_the_export_is_built(app, monkeypatch):
    """A refund committed (by another request) just after the export was built: where its
    summary was read, before its rows."""
    original = export_spec.BUILDERS["transactions"]
    calls = {"n": 0, "at": 1}  # the build after which the refund commits

    def built_then_a_refund_commits(params):
        spec = original(params)
        calls["n"] += 1
        if calls["n"] != calls["at"]:
            return spec
        with db.engine.begin() as other:
            other.execute(
                mm.MoneyMovement.__table__.insert(),
                [
                    _row(
                        99,
                        source="refund",
                        type=mm.REFUND_GATEWAY,
                        status="PROCESSED",
                        bucket=mm.BUCKET_REFUND,
                        amount=400_00,
                        net=400_00,
                        reference="rfnd_RJ99",
                        occurred_at=_at(10),
                        updated_at=_at(10),
                        version=1,
                    )
                ],
            )
        return spec

    monkeypatch.setitem(export_spec.BUILDERS, "transactions", built_then_a_refund_commits)
    return calls


def _seed(app):
    with app.app_context():
        for i in range(3):
            db.session.add(mm.MoneyMovement(**_row(i)))
        db.session.commit()


def test_streamed_transactions_csv_header_summary_agrees_with_its_rows_when_a_refund_lands(
    admin, app, client, refund_posted_after_the_export_is_built
):
    _seed(app)
    text = client.get("/admin/transactions.csv?preset=today").get_data(as_text=True)
    f = read(text)
    types = [r["Type"] for r in f.records()]
    assert mm.REFUND_GATEWAY in types  # the refund landed before the rows were read
    # The file's rows and its summary must be of the same moment.
    assert f.summary["Count"] == str(len(f.rows)), (f.summary["Count"], types)
    refunds = sum(paise(r["Amount"]) for r in f.records() if r["Type"] == mm.REFUND_GATEWAY)
    assert paise(f.summary["Refunds"]) == refunds, f.summary
    assert paise(f.summary["Money in"]) == 3_000_00
    assert paise(f.summary["Net cash received"]) == 3_000_00 - refunds


def test_background_transactions_csv_header_summary_agrees_with_its_rows_when_a_refund_lands(
    admin, app, client, tmp_path, refund_posted_after_the_export_is_built
):
    from portal.exports.models import Export

    _seed(app)
    refund_posted_after_the_export_is_built["at"] = 2  # the job's own build (the page's: 1st)
    app.config["EXPORT_BACKGROUND_ROWS"] = 1
    app.config["EXPORT_DIR"] = str(tmp_path)
    try:
        r = client.get("/admin/transactions.csv?preset=today")
        assert r.status_code == 303
        with app.app_context():
            export = db.session.query(Export).one()
            assert export.status == "DONE", export.error
            export_id = export.id
        download = client.get(f"/admin/exports/{export_id}/download")
        text = download.get_data(as_text=True)
        download.close()
    finally:
        app.config["EXPORT_BACKGROUND_ROWS"] = 5000
        app.config["EXPORT_DIR"] = ""
    f = read(text)
    assert len(f.rows) == 4  # the refund landed before the job read the rows
    assert f.summary["Count"] == str(len(f.rows)), (f.summary["Count"], len(f.rows))
    assert paise(f.summary["Refunds"]) == 400_00
