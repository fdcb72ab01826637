"""Background exports: the admin's own list, a progress page (htmx polls it) and the
download, for the admin who asked only."""

from flask import abort, flash, redirect, send_file, url_for
from flask_login import current_user

from portal.domain.states import ExportStatus
from portal.exports import service as exports
from portal.web.admin import bp
from portal.web.exporting import kept_private
from portal.web.htmx import render


def _mine_or_abort(export_id):
    try:
        export = exports.export_for(current_user, export_id)
    except exports.ExportDenied:
        abort(403)
    if export is None:
        abort(404)
    return export


@bp.get("/exports")
def exports_list():
    return render(
        "admin/exports/index.html",
        rows=exports.recent_exports(current_user),
        ExportStatus=ExportStatus,
        percent=exports.percent,
    )


@bp.get("/exports/<int:export_id>")
def export_detail(export_id):
    export = _mine_or_abort(export_id)
    return render(
        "admin/exports/detail.html",
        block="export_status",
        e=export,
        ExportStatus=ExportStatus,
        done=exports.progress(export),
        percent=exports.percent(export),
    )


@bp.get("/exports/<int:export_id>/download")
def export_download(export_id):
    export = _mine_or_abort(export_id)
    if export.status == ExportStatus.DONE:
        try:
            # no-store, as the streamed file (it was no-cache: a cache could keep it)
            return kept_private(
                send_file(
                    exports.file_path(export.id),
                    mimetype="text/csv",
                    as_attachment=True,
                    download_name=export.download_name,
                )
            )
        except FileNotFoundError:
            pass
    # Not written yet, failed, or deleted: its page says which.
    flash("That file is not available; its export page says why.", "warning")
    return redirect(url_for("admin.export_detail", export_id=export.id), 303)
