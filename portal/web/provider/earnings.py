"""The provider's earnings and payouts dashboard: payable balance, earnings per item and per
week (a server-rendered SVG bar chart), penalties, TDS this financial year, payout history."""
from flask_login import current_user

from portal.catalog.service import provider_for_user
from portal.domain.rates import INDIA_TZ
from portal.payouts import reports
from portal.web.htmx import render
from portal.web.provider import bp


@bp.get("/earnings")
def earnings():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    return render("provider/earnings/index.html", provider=provider, india=INDIA_TZ,
                  **reports.dashboard(provider))
