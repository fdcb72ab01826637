from portal.booking import service as booking
from portal.notify import ops
from portal.payouts import reports
from portal.web.admin import bp
from portal.web.htmx import render


@bp.get("/")
def home():
    # The operator's morning: what needs a person today.
    attention = booking.list_visits(needs_attention=True, per_page=10)
    return render("admin/home.html", attention=attention,
                  failed_payouts=reports.payouts(status="FAILED", limit=10),
                  held_payouts=reports.payouts(held=True, limit=10),
                  jobs=ops.outbox_counts())
