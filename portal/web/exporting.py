"""A CSV download for a page: ``csv_download(name, params)`` answers with the file streamed
at once when it is small, or starts a background export and sends the admin to its
progress page (docs/reports.md). ``params`` are the screen's filter values (strings)."""

from flask import Response, flash, redirect, stream_with_context, url_for
from flask_login import current_user

from portal import replica
from portal.exports import build
from portal.exports import service as exports


def kept_private(response):
    """A file of patients' money or personal data: no copy may stay in a browser or proxy
    cache, as for every portal page (``web.security``). Said here, not left to that hook:
    a file response sets its own caching (``send_file`` sends ``no-cache``, which lets a
    cache store the file and only asks it to check before reuse)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def stream_csv(spec):
    """The file, encoded as it is written: nothing is held but the current chunk. Its rows
    come from the reporting replica when there is one (``portal.replica``)."""

    def chunks():
        with replica.reads():
            for chunk in spec.iter_csv():
                yield chunk.encode("utf-8")

    response = Response(stream_with_context(chunks()), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.download_name(spec)}"'
    )
    response.headers["X-Accel-Buffering"] = "no"  # let a proxy pass chunks on as they come
    return kept_private(response)


def csv_download(name, params):
    """Stream now, or (more than ``EXPORT_BACKGROUND_ROWS`` rows) run in the background.
    Raises ``ExportError`` for filters the export cannot honour."""
    with replica.reads():
        spec = build(name, params)
        total = spec.count()
    if total > exports.background_threshold():
        export = exports.start(current_user, name, params, spec=spec, rows_total=total)
        flash(f"{total} rows: the export runs in the background; download it here when done.")
        return redirect(url_for("admin.export_detail", export_id=export.id), 303)
    return stream_csv(spec)
