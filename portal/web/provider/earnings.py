"""The provider's earnings and payouts dashboard: payable balance, earnings per item and per
week (a server-rendered SVG bar chart), penalties, TDS this financial year, payout history."""

from flask_login import current_user

from portal.catalog.providers import provider_for_user
from portal.domain.rates import INDIA_TZ
from portal.payouts import queries, reports
from portal.web.htmx import render
from portal.web.paging import cursor_args, page_args
from portal.web.provider import bp

STATEMENT = "statement_"  # the statement's cursors on the page (``statement_after``)


@bp.get("/earnings")
def earnings():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    context = reports.dashboard(provider)
    # The payout history pages by cursor (the dashboard shows the latest).
    context["payouts"] = queries.payouts_page(provider_id=provider.id, **page_args(50))
    context["tds_notes"] = reports.payout_tds_notes(context["payouts"].items)
    # Every movement of the payable with the balance after it (issue #16).
    context["statement"] = reports.payable_statement_page(
        provider.id, **page_args(20, prefix=STATEMENT)
    )
    # Each list's pager keeps the other's place (review finding: paging one put the other
    # back to its first page).
    context["statement_pager_args"] = cursor_args()
    context["payouts_pager_args"] = cursor_args(STATEMENT)
    return render("provider/earnings/index.html", provider=provider, india=INDIA_TZ, **context)
