"""Starting a background export, running it, and who may fetch the file.

A large export (more rows than ``EXPORT_BACKGROUND_ROWS``) is written by the job
``exports.run`` to ``EXPORT_DIR`` (default ``instance/exports``): ``<id>.csv.part`` while it
runs, renamed to ``<id>.csv`` when complete. Progress goes to a side file ``<id>.progress``
rather than the row, because the job is one unit of work (its row changes become visible
only at its commit) and, on SQLite, a second connection writing while the job's cursor
reads would wait on the reader's lock. With several hosts the directory must be shared
(the web host serves what a worker wrote)."""

import json
import logging
import os
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal import replica
from portal.audit.service import record
from portal.config import setting
from portal.db import Busy, db, lock_subjects, outside_the_lock, serialized, unit_of_work, utcnow
from portal.domain.states import EXPORT, ExportStatus
from portal.domain.timezone import CLINIC_TZ
from portal.jobs import enqueue, job, periodic

from .models import Export
from .spec import build

log = logging.getLogger("portal.exports")

JOB_NAME = "exports.run"


class ExportDenied(Exception):
    """Someone other than the admin who asked wants the file."""


def export_dir():
    path = setting("EXPORT_DIR") or os.path.join(current_app.instance_path, "exports")
    os.makedirs(path, exist_ok=True)
    return path


def file_path(export_id):
    return os.path.join(export_dir(), f"{int(export_id)}.csv")


def _progress_path(export_id):
    return os.path.join(export_dir(), f"{int(export_id)}.progress")


def background_threshold():
    return int(setting("EXPORT_BACKGROUND_ROWS"))


def download_name(spec, now=None):
    """``transactions-20261206-010000.csv``: stamped in clinic time, as the file's own
    "Generated" line is (it was UTC: a night's export carried the day before)."""
    return f"{spec.name}-{(now or utcnow()).astimezone(CLINIC_TZ):%Y%m%d-%H%M%S}.csv"


def _request_subject(requester_id, name, params):
    """The name of the lock on one admin's request for one export with these filters."""
    return f"export:{int(requester_id)}:{name}:{json.dumps(dict(params), sort_keys=True)}"


def start(actor, name, params, spec=None, rows_total=None):
    """Record a background export for ``actor`` (an administrator) and queue its job
    (after the commit). ``spec``, if given, is ``build(name, params)``.

    The row keeps the spec's resolved filters (``ExportSpec.params``: an empty month
    written out as the month it meant then), not the ones asked: the job, seconds or a
    retry later, builds from them, so the file is the period recorded here and in the
    audit entry even when midnight (a month's or a year's end) falls between the two."""
    if not getattr(actor, "is_admin", False):
        raise ExportDenied("Only administrators can export reports")
    spec = spec or build(name, params)
    params = spec.params if spec.params is not None else dict(params)
    with serialized(), unit_of_work():
        # A download link is a GET (no CSRF token): asking again for the same file while
        # it is still being written gets that export, so a repeated or forged link cannot
        # pile up jobs. At the same moment too (a double click): the same request waits
        # here for the first one's commit, then finds its export (SQLite: serialized).
        lock_subjects([_request_subject(actor.id, name, params)])
        waiting = db.session.scalars(
            sa.select(Export).where(
                Export.requested_by_id == actor.id,
                Export.name == name,
                Export.status == ExportStatus.QUEUED,
            )
        )
        for export in waiting:
            if export.params == dict(params):
                return export
        export = Export(
            name=name,
            params=dict(params),
            title=spec.title,
            filters_text=spec.filters_text,
            download_name=download_name(spec),
            requested_by_id=actor.id,
            rows_total=spec.count() if rows_total is None else rows_total,
        )
        db.session.add(export)
        db.session.flush()
        record(
            actor,
            "export.requested",
            "export",
            export.id,
            after={"name": name, "filters": spec.filters_text, "rows": export.rows_total},
        )
        enqueue(JOB_NAME, export_id=export.id)
    return export


def _write_progress(export_id, rows):
    path = _progress_path(export_id)
    with open(path + ".tmp", "w") as f:
        f.write(str(rows))
    os.replace(path + ".tmp", path)


def progress(export):
    """Rows written so far (the side file while the job runs, the row once done)."""
    if export.status != ExportStatus.QUEUED:
        return export.rows_written
    try:
        with open(_progress_path(export.id)) as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0


def percent(export):
    if export.status == ExportStatus.DONE:
        return 100
    total = max(export.rows_total, 1)
    return min(99, progress(export) * 100 // total)


@contextmanager
def _file_reads():
    """Where the file's rows are read from: the reporting replica when there is one
    (``portal.replica``). PostgreSQL's primary: the job's session, in a savepoint (a
    database error while streaming leaves the job's own transaction usable, so the failure
    can still be recorded on the row); a select export's rows are one statement's, so they
    agree with each other, and its totals are summed from those rows as they are written
    (``ExportSpec.totals``), not read again. SQLite: a read transaction of its own (one
    snapshot, however many statements the export runs), outside the process lock: the job
    has written nothing yet, and every other use case goes on while the file is written
    (it held the lock, and so stopped the portal, for the whole file). Not a savepoint
    there: SQLite's is taken with the write lock (``portal.db.savepoint``), which every
    writer would wait for."""
    if db.engine.dialect.name == "sqlite":
        with outside_the_lock(), replica.snapshot():
            yield
    else:
        with unit_of_work(), replica.reads():
            yield


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


@job(JOB_NAME)
def run_export(export_id):
    """Write the file. A failure is recorded on the row (FAILED, with the error) and not
    retried: the admin asks again. Embedded, the process lock not taken back in time
    (``Busy``) fails the job's attempt instead, which the runner tries again."""
    export = db.session.get(Export, export_id)
    if export is None or export.status != ExportStatus.QUEUED:
        return
    path = file_path(export.id)
    part = path + ".part"
    written = [0]

    def note(rows):
        written[0] = rows
        _write_progress(export.id, rows)

    try:
        with _file_reads():
            spec = build(export.name, export.params)
            with open(part, "w", encoding="utf-8", newline="") as f:
                for chunk in spec.iter_csv(progress=note):
                    f.write(chunk)
        # Embedded, the lock is held again from here. Only this job moves a QUEUED export
        # (one runner thread runs the items), so the row read before is still true.
        os.replace(part, path)
    except Busy:
        _remove(part)  # written, but not recorded: the job's next attempt writes it again
        raise
    except Exception as exc:
        log.exception("export %s failed", export.id)
        _remove(part)
        EXPORT.move(export, ExportStatus.FAILED)
        export.error = f"{type(exc).__name__}: {exc}"[:500]
    else:
        EXPORT.move(export, ExportStatus.DONE)
        export.rows_written = written[0]
    export.finished_at = utcnow()
    try:
        os.remove(_progress_path(export.id))
    except OSError:
        pass


def export_for(actor, export_id):
    """The export ``actor`` asked for; ``ExportDenied`` for anyone else's, None if none."""
    export = db.session.get(Export, export_id)
    if export is None:
        return None
    if export.requested_by_id != actor.id:
        raise ExportDenied("Only the administrator who asked for this export can see it")
    return export


def recent_exports(actor, limit=20):
    return db.session.scalars(
        sa.select(Export)
        .where(Export.requested_by_id == actor.id)
        .order_by(Export.id.desc())
        .limit(limit)
    ).all()


@periodic("exports.sweep", every=3600)
def sweep_old_files(now=None):
    """Delete finished files older than ``EXPORT_KEEP_DAYS`` (the row stays, EXPIRED, as
    the record of who exported what). Returns how many were removed. A file that cannot be
    removed (another user's on a shared ``EXPORT_DIR``) is logged and skipped, its row kept
    DONE: the next sweep tries again, and the files after it are not held up."""
    cutoff = (now or utcnow()) - timedelta(days=int(setting("EXPORT_KEEP_DAYS")))
    removed = 0
    old = db.session.scalars(
        sa.select(Export)
        .where(Export.status == ExportStatus.DONE, Export.finished_at < cutoff)
        .order_by(Export.id)
        .limit(500)
    ).all()
    for export in old:
        path = file_path(export.id)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("export %s: could not remove %s (%s); kept for now", export.id, path, exc)
            continue
        with unit_of_work():
            EXPORT.move(export, ExportStatus.EXPIRED)
        removed += 1
    return removed
