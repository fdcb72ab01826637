"""Jinja filters and globals shared by every page: registered here, once.

Status enums are globals, so templates compare ``item.status == BookingStatus.CONFIRMED``
and never a raw string; ``post_button`` (components/buttons.html) and ``file_link``
(components/file_link.html) are globals so that every template and every htmx block can
call them without importing them."""

from collections import OrderedDict
from threading import Lock

from flask import current_app, request
from flask.globals import _cv_app  # where Flask-WTF keeps the request's token
from flask.templating import Environment as FlaskEnvironment
from flask_babel import get_translations
from flask_wtf.csrf import generate_csrf
from jinja2 import nodes, pass_context, pass_eval_context
from jinja2.ext import Extension
from markupsafe import Markup

from portal.audit.queries import change_text, facts_text
from portal.domain import schedule, states
from portal.domain.rates import format_inr, percent_text
from portal.domain.tax_ids import mask_pan
from portal.domain.text import in_hours
from portal.i18n import LANGUAGES, babel_context, current_language
from portal.payouts.fund_accounts import failure as fund_account_failure
from portal.payouts.status import NextStep, next_step
from portal.refunds.previews import state_refusal
from portal.web import filters, nav, urls

STATUS_ENUMS = (
    "BookingStatus",
    "VisitStatus",
    "PaymentStatus",
    "RefundStatus",
    "PayoutStatus",
    "RescheduleStatus",
    "FundAccountStatus",
    "AdjustmentStatus",
    "ReconCaseStatus",
    "ReconRunStatus",
)


def post_button(*args, **kwargs):
    """The ``post_button`` macro, loaded on first use (the template is cached)."""
    module = current_app.jinja_env.get_template("components/buttons.html").module
    return module.post_button(*args, **kwargs)


def file_link(*args, **kwargs):
    """The ``file_link`` macro (a CSV or export download link), loaded as ``post_button``."""
    module = current_app.jinja_env.get_template("components/file_link.html").module
    return module.file_link(*args, **kwargs)


def _translations():
    """Flask-Babel's translations for the locale in force, kept on its request context
    until that locale changes (``force_locale`` and ``refresh`` replace the locale
    object). Flask-Babel's own template callables look the domain, locale and cache up
    for every ``_()``: 20–30 µs each, a tenth of a list page's time."""
    ctx = babel_context()
    if ctx is not None:
        cached = getattr(ctx, "portal_translations", None)
        if cached is not None and cached[0] is getattr(ctx, "babel_locale", None):
            return cached[1]
    translations = get_translations()
    ctx = babel_context()
    if ctx is not None:  # get_translations() set babel_locale through get_locale()
        ctx.portal_translations = (getattr(ctx, "babel_locale", None), translations)
    return translations


# Jinja's "newstyle" gettext (jinja2.ext), each in one call. Jinja wraps a gettext
# callable in a function that calls it through ``Context.call`` again, and aliases ``_``
# to a third that resolves ``gettext`` and calls that: three calls and two argument
# inspections for every ``_()`` on a page (a page makes 20–60). The result is the same:
# marked safe under autoescape, then always formatted with the variables (so "%%" is "%"
# whether or not there are any; a string with no "%" formats to itself). Positional-only,
# as Jinja's own are in effect: a template may name a variable "string" or "num".


@pass_context
def _gettext(context, string, /, **variables):
    rv = _translations().ugettext(string)
    if context.eval_ctx.autoescape:
        rv = Markup(rv)
    return rv % variables if "%" in rv else rv


@pass_context
def _ngettext(context, singular, plural, num, /, **variables):
    variables.setdefault("num", num)
    rv = _translations().ungettext(singular, plural, num)
    if context.eval_ctx.autoescape:
        rv = Markup(rv)
    return rv % variables if "%" in rv else rv


def csrf_token():
    """Flask-WTF's ``csrf_token()``, from where it keeps the request's token once made:
    its own function reads two settings and the ``g`` proxy on every call (a page calls
    it three times: htmx's header, the sign-out form, the language switch). The token is
    signed once a request, as Flask-WTF does: kept per session, its bytes would stay the
    same on every compressed page, which BREACH-style probing needs (docs/security.md)."""
    app_ctx = _cv_app.get(None)
    token = getattr(app_ctx.g, "csrf_token", None) if app_ctx is not None else None
    return token if token is not None else generate_csrf()


class FragmentCache(Extension):
    """``{% cache "name", key… %}…{% endcache %}``: a piece of a page that is the same for
    every reader with the same keys, rendered once per process and language (the key adds
    the language, the URL root and whether the output is escaped markup).

    Two kinds of piece: one whose keys say nothing of a reader, holding translated text and
    the portal's own URLs, never a name, a count, a CSRF token, a flash or a static file's
    URL (its fingerprint follows the file): the top bar's links cost a page about 40
    ``url_for`` and ``_()`` calls a request. And one whose key is the row it shows, a
    frozen value holding everything the piece prints (``{% cache "visit row", v %}``): a
    list's row, rendered again only when the row changes (55 µs a row of the visits list).
    A SQLAlchemy ``Row`` compares by its values in order: two statements' rows need
    pieces of different names. An ORM object is refused (it compares by identity).

    The pieces are kept in a bounded LRU (the least recently shown goes first: the top
    bar's are shown on every page). Nothing is kept while templates reload (debug)."""

    tags = {"cache"}
    MAX_FRAGMENTS = 4096  # the top bar's: names × roles × languages × URL roots; the rest rows

    def __init__(self, environment):
        super().__init__(environment)
        environment.extend(portal_fragments=OrderedDict(), portal_fragments_lock=Lock())

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        keys = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            keys.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_fragment", [nodes.List(keys)])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    @pass_eval_context
    def _fragment(self, eval_ctx, keys, caller):
        env = self.environment
        if env.auto_reload:
            return caller()
        if any(hasattr(k, "_sa_instance_state") for k in keys):
            # An ORM object compares by identity: never found again, and its changes unseen.
            raise TypeError(
                "{% cache %} keys are values (a row, a frozen dataclass), not ORM objects"
            )
        # Escaped markup and plain text of one piece are two fragments.
        key = (*keys, eval_ctx.autoescape, current_language(), request.script_root)
        kept, lock = env.portal_fragments, env.portal_fragments_lock
        with lock:
            piece = kept.get(key)
            if piece is not None:
                kept.move_to_end(key)
                return piece
        piece = caller()
        with lock:
            kept[key] = piece
            if len(kept) > self.MAX_FRAGMENTS:
                kept.popitem(last=False)
        return piece


class Environment(FlaskEnvironment):
    """Flask's Jinja environment, each template's globals one dict.

    Jinja gives a template its globals as a ``ChainMap`` over the environment's, walked
    name by name on every render (copied into the context, its keys listed) and on every
    ``{% from … import %}`` (the names compared with the imported template's); a dict does
    the same in C. The environment's globals are all set while the app is made, before
    any template loads (Jinja asks for that with either map)."""

    def make_globals(self, d):
        return {**self.globals, **(d or {})}


def init_app(app):
    from portal.config import policy

    env = app.jinja_env
    env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    env.globals.update(_=_gettext, gettext=_gettext, ngettext=_ngettext)
    env.add_extension(FragmentCache)
    env.globals["csrf_token"] = csrf_token
    # Flask-WTF also hands every template its own csrf_token through a context processor,
    # which shadows the global above (a context's names come before globals).
    processors = app.template_context_processors[None]
    processors[:] = [p for p in processors if getattr(p, "__module__", "") != "flask_wtf.csrf"]
    env.filters["inr"] = format_inr
    # An audit entry's Before/After as people read it: money facts in ₹, Hindi as written.
    env.filters["audit_facts"] = facts_text
    # Any JSON value written so (the jobs page's payloads: ``tojson`` wrote a Hindi name as
    # \uXXXX escapes); it is text, so the page escapes it for HTML like any other.
    env.filters["json_text"] = change_text
    # A message made elsewhere (a flash, a service's error) in the reader's language.
    env.filters["t"] = filters.translate
    # 1250 -> "12.5": rates are basis points; pages state them from the policy in force.
    env.filters["percent_bps"] = percent_text
    env.filters["hours"] = in_hours  # a policy's duration: "24", "1.5"
    env.filters["mask_pan"] = mask_pan  # "ABCPK••••L": a PAN as lists and the provider show it
    env.filters["clinic_time"] = filters.clinic_time
    env.filters["clinic_time_short"] = filters.clinic_time_short
    env.filters["day_names"] = filters.day_names
    env.filters["mark_current"] = nav.mark_current
    env.filters["status_badge"] = filters.status_badge
    env.filters["status_label"] = filters.status_label
    env.filters["payment_kind"] = filters.payment_kind
    env.filters["payment_method"] = filters.payment_method
    env.filters["badge"] = filters.badge
    env.filters["attempts_badge"] = filters.attempts_badge
    env.filters["late_booking_notice"] = filters.late_booking_notice  # a slot: policy in force
    env.filters["late_item_notice"] = filters.late_item_notice  # a held item: its own version
    env.filters["unix_clinic_time"] = filters.unix_clinic_time
    env.globals["policy"] = policy
    # What a page offers follows the rules that will judge the click (one place each).
    env.globals["may_cancel"] = lambda item: state_refusal(item) is None
    env.globals["may_retry_payment"] = lambda attempts: schedule.may_retry_payment(
        attempts, policy()
    )
    # What follows for a payout: "retry 2 pending", or on hold until an admin releases it.
    env.globals["payout_next_step"] = next_step
    env.globals["NextStep"] = NextStep
    # What is wrong with an account that failed validation, and what to do (said once).
    env.globals["fund_account_failure"] = fund_account_failure
    env.globals["post_button"] = post_button
    env.globals["file_link"] = file_link
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["this_page"] = urls.this_page
    env.globals["current_language"] = current_language
    for name in STATUS_ENUMS:
        env.globals[name] = getattr(states, name)
    env.trim_blocks = True
    env.lstrip_blocks = True
