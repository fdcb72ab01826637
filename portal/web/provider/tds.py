"""A doctor's or a lab's TDS by quarter (``/provider/earnings/tds``), linked from the
earnings page's TDS card: Q1–Q4 of a financial year they had payouts in (the current one
by default), their PAN masked, the clinic's TAN, and the same as a CSV. The figures are the
admin's TDS report's query with the provider filter (``portal.reports.tds.for_provider``).

Whose figures: always the signed-in provider's own profile; no parameter names another
(a ``provider_id`` in the request is never read)."""

from flask import request
from flask_login import current_user

from portal import replica
from portal.catalog.providers import provider_for_user
from portal.config import setting
from portal.db import utcnow
from portal.domain.rates import financial_year
from portal.domain.tax_ids import mask_pan
from portal.exports import build
from portal.reports import tds
from portal.web.exporting import stream_csv
from portal.web.htmx import render
from portal.web.provider import bp

TEMPLATE = "provider/earnings/tds.html"


def _year(provider):
    """(years offered, the year shown, a notice or None) for the request's ``fy``."""
    current = financial_year(utcnow())
    years = tds.provider_years(provider.id, current)
    fy, notice = tds.provider_year(request.args.get("fy"), years, current)
    return years, fy, notice


def _page(provider, years, fy, notice, status=200):
    return render(
        TEMPLATE,
        status=status,
        provider=provider,
        years=years,
        fy=fy,
        notice=notice,
        pan=mask_pan(provider.pan),
        tan=setting("CLINIC_TAN"),
        data=tds.provider_report(provider, fy),
    )


@bp.get("/earnings/tds")
def tds_quarters():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    return _page(provider, *_year(provider))


@bp.get("/earnings/tds.csv")
def tds_quarters_csv():
    """The page's figures as a CSV (a few rows: streamed at once, never a background
    export, which is the admins'). A year that is not one of theirs gets the page with
    its notice (422), not a file of another year. Without a profile there is no file:
    404 with the page that says why (re-read finding: a 200 HTML page at a ``.csv``)."""
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html", status=404)
    years, fy, notice = _year(provider)
    if notice is not None:
        return _page(provider, years, fy, notice, status=422)
    with replica.reads():  # as every CSV export (docs/reports.md)
        spec = build("tds_provider", {"fy": fy, "provider_id": str(provider.id)})
    return stream_csv(spec)
