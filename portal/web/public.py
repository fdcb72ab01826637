"""Pages anyone may see: the home page and finding a doctor.

``/find`` filters providers by city, clinic, specialization, service, text and a start
date, and lists each one's next free slots per service and clinic. The filter form asks
for the ``results`` block over htmx as it changes (the URL follows, so a result page can
be shared or reloaded); without htmx it is an ordinary GET form."""

from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, request, url_for
from flask_babel import get_locale
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from portal.catalog import cache as catalog_cache
from portal.catalog import calendar
from portal.catalog import queries as catalog_queries
from portal.catalog.models import DEFAULT_TIMEZONE, Clinic, Provider, Service
from portal.catalog.slots import find_offers, next_free_slots, search_providers, slot_cutoff
from portal.config import policy
from portal.db import utcnow
from portal.domain.pricing import price_item
from portal.domain.slots import LIST_SPAN_DAYS, last_bookable_day, listed_day
from portal.extensions import db
from portal.web import replay
from portal.web.filters import day_names
from portal.web.htmx import fragment, fragment_block, render

bp = Blueprint("public", __name__)

PER_PAGE = 10
DAYS = LIST_SPAN_DAYS  # how many days the page looks for free slots in
SLOTS_PER_OFFER = 4
BOOK_URL = "/me/book"  # the patient blueprint holds the slot (sign-in first)


def _filter_options():
    """Active clinics, cities, specializations and services for the filter form (plain
    rows, cached per process with the catalog)."""
    return catalog_queries.filter_options()


@bp.get("/")
def index():
    return render("public/index.html", **_filter_options())


def _int_arg(name):
    value = request.args.get(name, type=int)
    return value if value and value > 0 else None


def _filters(today):
    """The filters from the query string, ignoring anything malformed."""
    try:
        day = date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        day = today
    day = listed_day(day, today)
    return {
        "city": request.args.get("city", "").strip()[:80],
        "clinic_id": _int_arg("clinic"),
        "specialization_id": _int_arg("specialization"),
        "service_id": _int_arg("service"),
        "text": request.args.get("q", "").strip()[:100],
        "date": day,
    }


def book_url(provider, offer, start):
    return (
        BOOK_URL
        + "?"
        + urlencode(
            {
                "provider": provider.id,
                "service": offer.service.id,
                "clinic": offer.clinic.id,
                "start": start.isoformat(),
            }
        )
    )


def price(service_row):
    """The fee breakup shown on a card (F, platform fee, GST, total) under the policy in
    force."""
    return price_item(service_row.fee_paise, service_row.taxable, policy())


def slot_label(start, clinic):
    local = start.astimezone(ZoneInfo(clinic.timezone))
    return day_names(local.strftime("%a %d %b, %H:%M").replace(" 0", " "))


def local_day(start, clinic):
    return start.astimezone(ZoneInfo(clinic.timezone)).date()


@bp.get("/find")
def find_doctor():
    now = utcnow()
    today = now.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    f = _filters(today)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    kept_under, results = _results_html(f, today, now, page)
    if fragment_block("results") is not None:
        return replay.offer(fragment(results), kept_under, results)
    return render(
        "public/find.html", results=Markup(results), f=f, today=today, **_filter_options()
    )


def _results_html(f, today, now, page):
    """(the key it is kept under, the results block). The htmx answer and the whole page
    share it: it is kept per process until a calendar it shows, the catalog, the policy in
    force or the day changes, or a time on it expires."""
    found = calendar.probe(("find", *_answer_key(), today, tuple(f.items()), page))
    if found.value is not None:
        return found.key, found.value
    catalog_cache.prime_with_policy()  # one statement: the catalog and policy stamps
    ids = catalog_queries.provider_ids(*_search_args(f))
    page = min(page, _page_count(ids))
    shown = ids[(page - 1) * PER_PAGE : page * PER_PAGE]

    def block():
        # Until the day the search starts from moves (its key holds today, and an
        # answer replayed before Flask is found by the address alone).
        results, valid_until = _results_block(f, today, now, page)
        return results, _until_midnight(valid_until, now, DEFAULT_TIMEZONE)

    return found.key, calendar.keep(found, shown, block)


def _search_args(f):
    return f["city"] or None, f["clinic_id"], f["specialization_id"], f["service_id"], f["text"]


def _page_count(found):
    return max((len(found) + PER_PAGE - 1) // PER_PAGE, 1)


def _answer_key():
    """What a kept answer's text depends on besides the calendars, the catalog and the
    policy (``calendar.probe`` checks those): the language and the site's root (links)."""
    return str(get_locale() or "en"), request.script_root


def _results_block(f, today, now, page):
    """The results block rendered, and until when its free times hold (see
    calendar.keep)."""
    providers = search_providers(*_search_args(f), attach=False)  # only printed
    pages = _page_count(providers)
    page = min(page, pages)
    shown = providers[(page - 1) * PER_PAGE : page * PER_PAGE]
    offers = find_offers(
        shown,
        from_date=f["date"],
        days=DAYS,
        limit=SLOTS_PER_OFFER,
        city=f["city"] or None,
        clinic_id=f["clinic_id"],
        service_id=f["service_id"],
        now=now,
    )
    args = {
        k: v
        for k, v in {
            "city": f["city"],
            "clinic": f["clinic_id"],
            "specialization": f["specialization_id"],
            "service": f["service_id"],
            "q": f["text"],
            "date": f["date"].isoformat() if f["date"] != today else None,
        }.items()
        if v
    }
    block = render_block(
        "public/find.html",
        "results",
        providers=shown,
        total=len(providers),
        offers=offers,
        f=f,
        page=page,
        pages=pages,
        args=args,
        days=DAYS,
        book_url=book_url,
        price=price,
        slot_label=slot_label,
        times_url=times_url,
        local_day=local_day,
    )
    firsts = [o.slots[0] for found in offers.values() for o in found if o.slots]
    return block, slot_cutoff(firsts)


def times_url(provider, service, clinic, day):
    """Every free time of one day for a provider's service at a clinic."""
    return url_for(
        "public.day_times",
        provider=provider.id,
        service=service.id,
        clinic=clinic.id,
        date=day.isoformat(),
    )


def _offer_or_404():
    """The provider, service and clinic named by the query string, all active and offered
    together, or 404."""
    provider = db.session.get(Provider, _int_arg("provider") or 0)
    service = db.session.get(Service, _int_arg("service") or 0)
    clinic = db.session.get(Clinic, _int_arg("clinic") or 0)
    if not catalog_queries.offered(provider, service, clinic):
        abort(404)
    return provider, service, clinic


@bp.get("/find/times")
def day_times():
    """Every free time of a chosen day (issue #16: the search showed only the first 4),
    with the previous and next day a click away."""
    if fragment_block("times") is None:
        return render("public/times.html", **_times(*_offer_or_404(), utcnow())[0])
    # The htmx answer is kept like /find's (see find_doctor); the asked day as given, so
    # the answer is kept until the clinic's midnight (its "today" moves then).
    ids = (_int_arg("provider") or 0, _int_arg("service") or 0, _int_arg("clinic") or 0)
    found = calendar.probe(("times", *_answer_key(), request.args.get("date", ""), ids))
    if found.value is not None:
        return replay.offer(fragment(found.value), found.key, found.value)
    catalog_cache.prime_with_policy()
    timezone = catalog_queries.offer_timezone(*ids)
    if timezone is None:
        abort(404)
    now = utcnow()

    def block():
        context, valid_until = _times(*_offer_or_404(), now)
        html = render_block("public/times.html", "times", **context)
        return html, _until_midnight(valid_until, now, timezone)

    times = calendar.keep(found, ids[:1], block)
    return replay.offer(fragment(times), found.key, times)


def _until_midnight(valid_until, now, timezone):
    """Until when a kept answer holds: its times' ``valid_until`` (None: none expires),
    and at the latest the next midnight in ``timezone``, when its "today" moves."""
    zone = ZoneInfo(timezone)
    midnight = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), zone)
    return midnight if valid_until is None else min(valid_until, midnight)


def _times_day(now, timezone):
    """(today, the asked day kept within today … the last bookable day) in the clinic's
    zone: a one-day list, so every day a search shows (its "every free time on …" link)
    can be opened."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    try:
        day = date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        day = today
    return today, listed_day(day, today, span=1)


def _times(provider, service, clinic, now):
    """The times page's context, and until when its free times hold."""
    today, day = _times_day(now, clinic.timezone)
    last = last_bookable_day(today)
    starts = next_free_slots(provider, service, clinic, from_date=day, days=1, limit=0, now=now)
    offer = SimpleNamespace(service=service, clinic=clinic)
    context = dict(
        block=fragment_block("times"),
        provider=provider,
        service=service,
        clinic=clinic,
        day=day,
        starts=starts,
        breakup=price(service),
        slots=[(start, book_url(provider, offer, start)) for start in starts],
        previous_url=times_url(provider, service, clinic, day - timedelta(days=1))
        if day > today
        else None,
        next_url=times_url(provider, service, clinic, day + timedelta(days=1))
        if day < last
        else None,
        time_label=lambda start: start.astimezone(ZoneInfo(clinic.timezone)).strftime("%H:%M"),
    )
    return context, slot_cutoff(starts[:1])
