"""A CSV file is as private as every portal page: a background export's download and the
streamed file alike say ``Cache-Control: no-store`` (and ``Pragma: no-cache``), so no copy
of it stays in a browser or proxy cache (re-read finding: the background export's said
``no-cache, max-age=0``, which lets a cache store it)."""

from portal.audit.service import record
from portal.db import unit_of_work
from portal.exports.models import Export
from portal.extensions import db


def _entries(app, admin, n):
    with app.app_context():
        with unit_of_work():
            for i in range(n):
                record(admin.id, "test.thing", "thing", i)
        db.session.remove()


def test_a_background_exports_download_is_not_kept_in_any_cache(
    app, client, make_user, login, tmp_path
):
    app.config["EXPORT_BACKGROUND_ROWS"] = 2
    app.config["EXPORT_DIR"] = str(tmp_path)
    try:
        admin = make_user("admin")
        _entries(app, admin, 5)
        login(admin)
        asked = client.get("/admin/reports/audit?action=test.thing&format=csv&date_to=2099-12-31")
        assert asked.status_code == 303  # 5 rows > 2: the background export
        with app.app_context():
            export_id = db.session.query(Export).one().id
        download = client.get(f"/admin/exports/{export_id}/download")
        download.close()
        assert download.status_code == 200
        # The streamed CSV says no-store, as every portal page does (web.security): a
        # file of every patient's payments must not stay in a browser or proxy cache.
        assert "no-store" in download.headers["Cache-Control"], download.headers["Cache-Control"]
        assert download.headers["Pragma"] == "no-cache"
    finally:
        app.config["EXPORT_BACKGROUND_ROWS"] = 5000
        app.config["EXPORT_DIR"] = ""


def test_a_streamed_csv_is_not_kept_in_any_cache(app, client, make_user, login):
    admin = make_user("admin")
    _entries(app, admin, 2)
    login(admin)
    answer = client.get("/admin/reports/audit?action=test.thing&format=csv&date_to=2099-12-31")
    answer.close()
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Pragma"] == "no-cache"
