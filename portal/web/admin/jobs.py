"""Admin: background work that failed or waits — the outbox (the durable record, with
retry), failed deliveries, and RQ's failed job registry when Redis is in use."""

from flask import flash, redirect, url_for
from flask_login import current_user

from portal.notify import ops, queries
from portal.web.admin import bp
from portal.web.htmx import render
from portal.web.paging import cursor_args, page_args

OUTBOX, DELIVERIES = "outbox_", "deliveries_"  # each list's cursors (``outbox_after``)


@bp.get("/jobs")
def jobs():
    rq_jobs, rq_error = ops.rq_failed_jobs()
    return render(
        "admin/jobs/index.html",
        items=queries.outbox_problems_page(**page_args(50, prefix=OUTBOX)),
        counts=ops.outbox_counts(),
        deliveries=queries.failing_deliveries_page(**page_args(50, prefix=DELIVERIES)),
        # Each list's pager keeps the other's place (review finding: paging one put the
        # other back to its first page).
        outbox_pager_args=cursor_args(DELIVERIES),
        deliveries_pager_args=cursor_args(OUTBOX),
        rq_enabled=ops.redis_configured(),
        rq_jobs=rq_jobs,
        rq_error=rq_error,
    )


# What the admin is told of a retry or requeue ({what}: the job), and how.
SAID = {
    ops.Outcome.DONE: ("{what} is done.", "success"),
    ops.Outcome.RUNNING: (
        "{what} is running now; retry it when it has ended, if it fails.",
        "warning",
    ),
    ops.Outcome.HANDED: ("{what} handed to a worker again.", "success"),
    ops.Outcome.WAITING: (
        "{what} is queued: Redis could not be reached, and it will be handed to a worker "
        "when Redis is back.",
        "warning",
    ),
    ops.Outcome.REQUEUED: ("{what} requeued.", "success"),
    ops.Outcome.REDIS_AWAY: ("Redis could not be reached; nothing was requeued.", "error"),
}


def _say(outcome, what, missing):
    message, category = SAID.get(outcome, (missing, "error"))
    flash(message.format(what=what), category)


@bp.post("/jobs/outbox/<int:item_id>/retry")
def retry_job(item_id):
    outcome, item = ops.retry_outbox_item(current_user, item_id)
    what = f"Job #{item.id} ({item.job})" if item is not None else ""
    _say(outcome, what, "That job is not in the outbox.")
    return redirect(url_for("admin.jobs"), 303)


@bp.post("/jobs/rq/<queue_name>/<job_id>/requeue")
def requeue_rq_job(queue_name, job_id):
    outcome = ops.requeue_rq_job(current_user, queue_name, job_id)
    _say(outcome, f"RQ job {job_id} on {queue_name}", "That job is not in RQ's failed registry.")
    return redirect(url_for("admin.jobs"), 303)
