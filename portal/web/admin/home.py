from portal.booking import lookup as booking_lookup
from portal.notify import ops
from portal.payouts import reports
from portal.web.admin import bp
from portal.web.render import render


@bp.get("/")
def home():
    # The operator's morning: what needs a person today.
    attention = booking_lookup.list_visits(needs_attention=True, per_page=10)
    return render("admin/home.html", attention=attention,
                  failed_payouts=reports.payouts(status="FAILED", limit=10),
                  held_payouts=reports.payouts(held=True, limit=10),
                  jobs=ops.outbox_counts())
