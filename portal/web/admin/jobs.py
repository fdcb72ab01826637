"""Admin: background work that failed or waits — the outbox (the durable record, with
retry), failed deliveries, and RQ's failed job registry when Redis is in use."""

from flask import flash, redirect, url_for
from flask_login import current_user

from portal.notify import ops, queries
from portal.web.admin import bp
from portal.web.htmx import render
from portal.web.paging import page_args


@bp.get("/jobs")
def jobs():
    rq_jobs, rq_error = ops.rq_failed_jobs()
    return render(
        "admin/jobs/index.html",
        items=queries.outbox_problems_page(**page_args(50, prefix="outbox_")),
        counts=ops.outbox_counts(),
        deliveries=queries.failing_deliveries_page(**page_args(50, prefix="deliveries_")),
        rq_enabled=ops.redis_configured(),
        rq_jobs=rq_jobs,
        rq_error=rq_error,
    )


@bp.post("/jobs/outbox/<int:item_id>/retry")
def retry_job(item_id):
    item = ops.retry_outbox_item(current_user, item_id)
    if item is None:
        flash("That job is not in the outbox.", "error")
    elif item.done_at is not None:
        flash(f"Job #{item.id} is done.", "success")
    else:
        flash(f"Job #{item.id} ({item.job}) handed to a worker again.", "success")
    return redirect(url_for("admin.jobs"), 303)


@bp.post("/jobs/rq/<queue_name>/<job_id>/requeue")
def requeue_rq_job(queue_name, job_id):
    if ops.requeue_rq_job(current_user, queue_name, job_id):
        flash(f"RQ job {job_id} requeued on {queue_name}.", "success")
    else:
        flash("That job is not in RQ's failed registry.", "error")
    return redirect(url_for("admin.jobs"), 303)
