from portal.booking import queries
from portal.catalog import queries as catalog_queries
from portal.dashboard import queries as dashboard_queries
from portal.domain.states import PayoutStatus
from portal.notify import ops
from portal.payouts import reports
from portal.web.admin import bp
from portal.web.htmx import render

DASHBOARD = "admin/_dashboard.html"  # the polled fragment, also included by the home page


@bp.get("/")
def home():
    # The operator's morning: what needs a person today.
    attention = queries.visits_page(needs_attention=True, per_page=10, count=True)
    return render(
        "admin/home.html",
        attention=attention,
        failed_payouts=reports.payouts(status=PayoutStatus.FAILED, limit=10),
        held_payouts=reports.payouts(held=True, limit=10),
        jobs=ops.outbox_counts(),
        dash=dashboard_queries.dashboard(),
        no_gstin=catalog_queries.clinics_missing_gstin(),
    )


@bp.get("/dashboard")
def dashboard():
    """The live figures alone: what the home page polls every 30 seconds (htmx)."""
    return render(DASHBOARD, partial=True, dash=dashboard_queries.dashboard())
