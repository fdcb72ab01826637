"""Settings, read from the environment. The defaults are the embedded mode:
SQLite in ``instance/``, jobs in-process, the sandbox gateway mounted in the app.

Every tunable is in ``TUNABLES`` (name, parser, default, meaning); the README's settings
table lists the same names and ``tests/test_config.py`` keeps the two in step. A value that
does not parse stops the app at start-up with a :class:`ConfigError` naming the variable.

Code reads a tunable with :func:`setting` (the app's value, or the default outside an app)
and the policy in force with :func:`policy`.
"""

import importlib.util
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_app_context

from portal.domain.policy import DEFAULT_POLICY
from portal.domain.tax_ids import clean_tan
from portal.domain.timezone import CLINIC_TIMEZONE, CLINIC_TZ

__all__ = [
    "CLINIC_TIMEZONE",
    "CLINIC_TZ",
    "ConfigError",
    "TUNABLES",
    "from_environment",
    "policy",
    "setting",
]


class ConfigError(RuntimeError):
    """A setting in the environment has a value the portal cannot use."""


# --- parsers: text from the environment -> value; ValueError names what was expected ------


def _int(minimum=0, maximum=None):
    expected = (
        f"expected a whole number >= {minimum}"
        if maximum is None
        else f"expected a whole number from {minimum} to {maximum}"
    )

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(expected) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(expected)
        return value

    return parse


def _number(text):
    """A non-negative number (0 switches the limit off)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number >= 0") from None
    if not value >= 0:  # also refuses nan
        raise ValueError("expected a number >= 0")
    return value


def _positive(text):
    """A number of seconds above 0 (a wait that must end)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number > 0") from None
    if not value > 0:  # also refuses nan
        raise ValueError("expected a number > 0")
    return value


def _burst(text):
    """A token bucket's size: empty (= the rate) or at least 1 (a call takes one token)."""
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected empty or a number >= 1") from None
    if not value >= 1:  # also refuses nan
        raise ValueError("expected empty or a number >= 1 (a call takes one whole token)")
    return value


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _bool(text):
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _words(text):
    """A comma-separated list; blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _dates(text):
    """A comma-separated list of ISO dates (2026-08-15); blanks dropped."""
    try:
        return frozenset(date.fromisoformat(part) for part in _words(text))
    except ValueError:
        raise ValueError("expected ISO dates, comma-separated: 2026-08-15,2026-10-02") from None


def _domains(text):
    from portal.domain.meetlinks import _normalise_domain  # validates each name

    return tuple(_normalise_domain(d) for d in _words(text))


def _channels(text):
    allowed = {"email", "sms", "whatsapp"}
    channels = _words(text)
    unknown = set(channels) - allowed
    if unknown:
        raise ValueError(f"unknown channel(s) {sorted(unknown)}; choose from {sorted(allowed)}")
    return channels


def _rate_limit(text):
    from limits import parse_many  # Flask-Limiter's own notation: "10 per minute"

    parse_many(text)
    return text


def _choice(*allowed):
    def parse(text):
        value = text.strip()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def _text(text):
    return text


def _import_path(text):
    """``package.module:Class``: its module must exist (``find_spec`` runs its packages'
    ``__init__``, not the module; the class is imported when first used, by the worker
    that sends, so a misspelt class name is found then)."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", text or ""):
        raise ValueError("write it as package.module:Class")
    module = text.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"no module named {module}")
    return text


@dataclass(frozen=True)
class Tunable:
    name: str
    parse: Callable[[str], Any]
    default: str  # as it would be written in the environment
    meaning: str

    def read(self, environ):
        text = environ.get(self.name)
        text = self.default if text is None else text
        try:
            return self.parse(text)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.name}={text!r} is not usable: {exc}") from None

    @property
    def default_value(self):
        return self.parse(self.default)


TUNABLES = {
    t.name: t
    for t in (
        # booking
        Tunable("BOOKING_HOLD_MINUTES", _int(1), "15", "how long a draft visit holds its slots"),
        Tunable(
            "BOOKING_ORDER_MINUTES",
            _int(1),
            "30",
            "how long a checkout's order (and a reschedule fee's order) keeps the slots",
        ),
        Tunable("SLOT_MIN_LEAD_MINUTES", _int(0), "60", "notice a new slot needs"),
        Tunable(
            "SLOT_STEP_MINUTES",
            _int(1),
            "30",
            "slots start every this many minutes (or the service's duration when shorter)",
        ),
        Tunable(
            "MEET_LINK_DOMAINS",
            _domains,
            "",
            "extra meet-link domains, comma-separated (zoom.us, meet.google.com and "
            "teams.microsoft.com are always allowed)",
        ),
        # refunds
        Tunable(
            "REFUND_MAX_ATTEMPTS",
            _int(1),
            "3",
            "gateway attempts per refund, and refunds per chain after refund.failed",
        ),
        Tunable(
            "REFUND_RETRY_SECONDS",
            _int(0),
            "30",
            "back-off before a refund's next attempt, × 4 per attempt (30 s, 2 min, 8 min)",
        ),
        Tunable(
            "REFUND_STRAGGLER_MINUTES",
            _int(1),
            "10",
            "a gateway refund still pending after this long is fetched from Razorpay",
        ),
        # payouts
        Tunable(
            "RAZORPAYX_RATE_LIMIT",
            _number,
            "5",
            "RazorpayX requests per second, shared by all processes through Redis (0 = no limit)",
        ),
        Tunable(
            "RAZORPAYX_RATE_BURST",
            _burst,
            "",
            "RazorpayX burst (token bucket size, at least 1); empty = the rate, at least 1",
        ),
        Tunable(
            "PAYOUT_RETRY_BACKOFF_SECONDS",
            _number,
            "300",
            "wait before a failed payout's automatic retry, × 4 per attempt",
        ),
        Tunable(
            "PAYOUT_RESEND_BACKOFF_SECONDS",
            _number,
            "30",
            "wait before re-asking RazorpayX after no answer, × 2 per request (max 1 h)",
        ),
        # background jobs
        Tunable(
            "JOBS_WORKER",
            _choice("simple", "fork"),
            "simple",
            "how a worker runs jobs: in its own process, or a forked child per job",
        ),
        Tunable(
            "JOBS_DISPATCH_LEASE",
            _int(60),
            "600",
            "seconds an item handed to Redis is left to its worker before it is handed over again",
        ),
        Tunable("JOBS_PER_RQ_JOB", _int(1), "20", "outbox items one RQ job runs"),
        # accounts and sign-in
        Tunable("PASSWORD_RESET_MAX_AGE", _int(60), "3600", "seconds a password-reset link lives"),
        Tunable("INVITE_MAX_AGE", _int(60), str(7 * 24 * 3600), "seconds an invitation lives"),
        Tunable(
            "LOGIN_RATE_LIMIT",
            _rate_limit,
            "10 per minute",
            "sign-in attempts per address (Flask-Limiter notation)",
        ),
        Tunable(
            "LOGIN_LOCKOUT_THRESHOLD",
            _int(1),
            "5",
            "failed sign-ins in a row that lock an account (from any address)",
        ),
        Tunable(
            "LOGIN_LOCKOUT_SECONDS",
            _int(1),
            "60",
            "first lockout; each further failure after it doubles it",
        ),
        Tunable("LOGIN_LOCKOUT_MAX_SECONDS", _int(1), "3600", "longest lockout"),
        Tunable(
            "COUPON_RATE_LIMIT",
            _rate_limit,
            "10 per hour",
            "coupon codes a patient may try (Flask-Limiter notation)",
        ),
        Tunable(
            "DATA_EXPORT_RATE_LIMIT",
            _rate_limit,
            "5 per hour",
            "downloads of their own data a patient may make (Flask-Limiter notation)",
        ),
        Tunable(
            "PASSWORD_RESET_RATE_LIMIT",
            _rate_limit,
            "5 per hour",
            "reset-link (and registration) requests per address (Flask-Limiter notation)",
        ),
        Tunable(
            "PASSWORD_RESET_MAILS_PER_ACCOUNT",
            _int(1),
            "3",
            "account mails (reset links, 'you already have an account') per account per hour",
        ),
        # request bodies
        Tunable(
            "MAX_CONTENT_LENGTH",
            _int(1024),
            str(1024 * 1024),
            "largest request body in bytes, chunked bodies included (413 above it)",
        ),
        # mail and notifications
        Tunable(
            "MAIL_SERVER",
            _text,
            "",
            "SMTP host; empty = mail is written to the console and the mail_messages table",
        ),
        Tunable("MAIL_PORT", _int(1), "25", "SMTP port"),
        Tunable("MAIL_USERNAME", _text, "", "SMTP user (empty = no login)"),
        Tunable("MAIL_PASSWORD", _text, "", "SMTP password"),
        Tunable("MAIL_USE_TLS", _bool, "false", "STARTTLS before sending"),
        Tunable("MAIL_FROM", _text, "Clinic Portal <no-reply@clinic.example>", "sender address"),
        Tunable("MAIL_TIMEOUT", _number, "15", "SMTP connect/read timeout in seconds"),
        Tunable("MAIL_SUBJECT_PREFIX", _text, "", "text put before every mail subject"),
        Tunable(
            "NOTIFY_REMINDER_CHANNELS",
            _channels,
            "email,sms",
            "channels a reminder goes out on besides in-app (email, sms, whatsapp)",
        ),
        Tunable(
            "NOTIFY_SMS_SENDER",
            _import_path,
            "portal.notify.channels:LoggingSender",
            "the class that sends SMS (module:Class, a TextSender; the default only logs)",
        ),
        Tunable(
            "NOTIFY_WHATSAPP_SENDER",
            _import_path,
            "portal.notify.channels:LoggingSender",
            "the class that sends WhatsApp messages (module:Class; the default only logs)",
        ),
        # process model and speed (docs/performance.md, docs/deploy.md)
        Tunable(
            "DB_POOL_PRE_PING",
            _bool,
            "false",
            "test each pooled database connection with a round trip before every request",
        ),
        Tunable(
            "DB_POOL_RECYCLE",
            _int(0),
            "1800",
            "seconds after which a pooled database connection is replaced (0 = never)",
        ),
        Tunable(
            "DB_PREPARED_STATEMENTS",
            _bool,
            "true",
            "let psycopg prepare a statement run 5 times on a connection (off behind a "
            "pooler that cannot keep them: PgBouncer in transaction mode before 1.21)",
        ),
        Tunable(
            "EMBEDDED_LOCK_TIMEOUT",
            _positive,
            "30",
            "embedded mode (SQLite): seconds a use case waits for the process lock before "
            "the request gets the 503 busy page (a job is tried again later)",
        ),
        Tunable(
            "TRUSTED_PROXIES",
            _int(0),
            "0",
            "load balancers/proxies in front whose X-Forwarded-For/-Proto/-Host are believed",
        ),
        Tunable(
            "SANDBOX_DATABASE_URL",
            _text,
            "",
            "the sandbox gateway's own state database (empty = instance/sandbox.sqlite3)",
        ),
        # exports and reports
        Tunable(
            "CLINIC_TAN",
            clean_tan,
            "",
            "the clinic's TAN (deductor of its providers' TDS), shown on their TDS page for "
            "Form 26AS (empty = the line is left out)",
        ),
        Tunable(
            "EXPORT_BACKGROUND_ROWS",
            _int(0),
            "5000",
            "a CSV export with more rows than this is written by a background job",
        ),
        Tunable(
            "EXPORT_DIR",
            _text,
            "",
            "where background exports are written (empty = instance/exports; shared by all hosts)",
        ),
        Tunable(
            "EXPORT_KEEP_DAYS",
            _int(1),
            "7",
            "days a finished background export file is kept before it is deleted",
        ),
        # settlements
        Tunable(
            "SETTLEMENT_WORKING_DAYS",
            _int(0, 30),  # a walk back of a month at most: a typo is refused at start-up
            "2",
            "working days after its day (IST) Razorpay settles a capture by (T+2); "
            "from the day after, unsettled, it is overdue",
        ),
        Tunable(
            "SETTLEMENT_HOLIDAYS",
            _dates,
            "",
            "bank holidays Razorpay does not settle on (ISO dates, comma-separated), "
            "besides Saturdays and Sundays",
        ),
        Tunable(
            "SETTLEMENT_LOOKBACK_DAYS",
            _int(1),
            "7",
            "days of Razorpay settlements each fetch reads (already stored ones are skipped)",
        ),
        # reconciliation
        Tunable(
            "RECON_PENDING_GRACE_SECONDS",
            _int(0),
            "3600",
            "a gateway record final this long while ours is not is a discrepancy (else pending)",
        ),
        Tunable(
            "RECON_CATCH_UP_DAYS",
            _int(0),
            "7",
            "missed days before yesterday the daily reconciliation still runs (0 = none)",
        ),
    )
}


def _tunable_values(environ):
    values = {name: t.read(environ) for name, t in TUNABLES.items()}
    for name in ("MAIL_SERVER", "MAIL_USERNAME", "MAIL_PASSWORD"):
        values[name] = values[name] or None
    return values


def setting(name):
    """A tunable's value: the app's config inside an app, else its default."""
    if has_app_context() and name in current_app.config:
        return current_app.config[name]
    return TUNABLES[name].default_value


def public_url_for(endpoint, **values):
    """An absolute address of ``endpoint`` on the site's ``PUBLIC_URL`` (no request needed:
    mail links; the gateway's callbacks, ``portal.web.urls``)."""
    public = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        public.netloc, script_name=public.path or "/", url_scheme=public.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def policy():
    """The policy in force: the policy version in force (``portal.policies.store``, which
    the app installs as ``extensions["policy_source"]``), else ``app.config["POLICY"]``
    (POLICY.md's defaults), and the defaults outside an app."""
    if has_app_context():
        source = current_app.extensions.get("policy_source")
        if source is not None:
            return source()
        return current_app.config.get("POLICY") or DEFAULT_POLICY
    return DEFAULT_POLICY


def _flag(environ, name, default):
    text = environ.get(name)
    if text is None:
        return default
    try:
        return _bool(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text!r} is not usable: {exc}") from None


def _engine_options(env, database_url):
    if database_url.startswith("sqlite"):
        return {}
    options = {
        "pool_pre_ping": TUNABLES["DB_POOL_PRE_PING"].read(env),
        "pool_recycle": TUNABLES["DB_POOL_RECYCLE"].read(env) or -1,
        # A database error's message (logged with a 500) without the statement's values:
        # they hold e-mails, phone numbers and password hashes.
        "hide_parameters": True,
    }
    if not TUNABLES["DB_PREPARED_STATEMENTS"].read(env):
        options["connect_args"] = {"prepare_threshold": None}  # psycopg: never prepare
    return options


def from_environment(instance_path, environ=None):
    """Build the config mapping. Anything secret comes only from the environment;
    the embedded mode invents throwaway values so a fresh clone runs."""
    env = os.environ if environ is None else environ
    embedded = not env.get("DATABASE_URL")
    database_url = env.get("DATABASE_URL") or (
        "sqlite:///" + os.path.join(instance_path, "portal.sqlite3")
    )
    redis_url = env.get("REDIS_URL") or None
    secret_key = env.get("SECRET_KEY")
    if not secret_key:
        if not embedded:
            raise ConfigError("SECRET_KEY must be set outside the embedded mode")
        secret_key = _instance_secret(instance_path)
    if not embedded:
        _require_gateway_settings(env)
    public_url = env.get("PUBLIC_URL", "http://127.0.0.1:5000")
    secure_cookies = _flag(env, "SESSION_COOKIE_SECURE", not embedded)
    return {
        "SECRET_KEY": secret_key,
        "EMBEDDED": embedded,
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(database_url),
        # A pre-ping is one more round trip per request; without it a connection the
        # database closed fails one request and SQLAlchemy then replaces the whole pool.
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(env, database_url),
        # A read replica for the reports' pages and the exports (portal.replica); unset,
        # they read the primary.
        "REPORTS_DATABASE_URL": env.get("REPORTS_DATABASE_URL") or None,
        "REDIS_URL": redis_url,
        # Jobs run in-process when there is no Redis (the embedded mode and most tests).
        "JOBS_INLINE": redis_url is None,
        "RQ_CONNECTION": redis_url or "redis://127.0.0.1:6379/0",
        "RQ_QUEUES": ["default", "payments", "payouts", "notify"],
        "RQ_ASYNC": True,
        # The hand-over of committed work to RQ runs in the request, after its commit: a
        # Redis that hangs must not hold it for redis-py's 5 s either (bounded like the
        # limiter's client below; the sweep hands the items over once Redis answers). The
        # workers' blocking dequeue and the scheduler have clients of their own
        # (portal.worker).
        "RQ_HANDOVER_OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        "PUBLIC_URL": public_url,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        # "Keep me signed in" (issue #15): same-site like the session, 30 days, not a year.
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": 30 * 24 * 3600,
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        # Redis away: count in each process's memory until it is back (the decorated limits,
        # per process), and never fail a request for the limiter's sake; the per-account
        # lockout is in the database and still guards the passwords (docs/security.md).
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # A limit of several windows ("1 per minute;5 per hour") counts every one of them
        # on each request, so the page can say the longest spent wait (``web.limits``):
        # stopped at the first spent, the shortest, "a minute" was said of an hour's wait.
        "RATELIMIT_FAIL_ON_FIRST_BREACH": False,
        # A Redis that drops packets must not hold a sign-in for the OS's two minutes (the
        # limiter asks again every few requests whether it is back), as the calendar
        # versions' client is bounded too.
        "RATELIMIT_STORAGE_OPTIONS": (
            {"socket_timeout": 1, "socket_connect_timeout": 1} if redis_url else {}
        ),
        "POLICY": DEFAULT_POLICY,
        **_tunable_values(env),
        # Razorpay: the embedded default points the official SDK at the sandbox mounted in-app.
        "RAZORPAY_KEY_ID": env.get("RAZORPAY_KEY_ID", "rzp_test_sandbox" if embedded else ""),
        # Embedded secrets are generated per install (instance/), never a published constant:
        # anyone who knows the webhook secret can sign a capture, the key secret a return.
        "RAZORPAY_KEY_SECRET": env.get("RAZORPAY_KEY_SECRET")
        or (_instance_secret(instance_path, "razorpay_key_secret") if embedded else ""),
        "RAZORPAY_WEBHOOK_SECRET": env.get("RAZORPAY_WEBHOOK_SECRET")
        or (_instance_secret(instance_path, "razorpay_webhook_secret") if embedded else ""),
        "RAZORPAY_BASE_URL": env.get("RAZORPAY_BASE_URL")
        or (public_url + "/sandbox" if embedded else "https://api.razorpay.com"),
        "RAZORPAYX_ACCOUNT_NUMBER": env.get("RAZORPAYX_ACCOUNT_NUMBER", "2323230000000000"),
        "RAZORPAYX_WEBHOOK_SECRET": env.get("RAZORPAYX_WEBHOOK_SECRET")
        or (_instance_secret(instance_path, "razorpayx_webhook_secret") if embedded else ""),
        "SANDBOX_ENABLED": _flag(env, "SANDBOX_ENABLED", embedded),
        # No PUBLIC_URL given in the embedded mode: `flask serve --port N` moves it (and the
        # mounted sandbox's address) to the server actually running (issue #16).
        "PUBLIC_URL_FOLLOWS_SERVER": embedded and not env.get("PUBLIC_URL"),
        "PERIODIC_INLINE": _flag(env, "PERIODIC_INLINE", embedded),
    }


# Outside the embedded mode nothing is invented: without these a portal would start, say it
# is ready, then refuse every webhook (an empty secret verifies nothing), fail every
# checkout and mail links to 127.0.0.1. The RazorpayX account is the sandbox's sample by
# default, so it is asked for only when the gateway is Razorpay itself (no
# RAZORPAY_BASE_URL).
GATEWAY_SETTINGS = (
    "PUBLIC_URL",  # mail links and the gateway's callbacks: never the default 127.0.0.1
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "RAZORPAYX_WEBHOOK_SECRET",
)


def _require_gateway_settings(env):
    missing = [name for name in GATEWAY_SETTINGS if not env.get(name)]
    if not env.get("RAZORPAY_BASE_URL") and not env.get("RAZORPAYX_ACCOUNT_NUMBER"):
        missing.append("RAZORPAYX_ACCOUNT_NUMBER")
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set outside the embedded mode")


def _normalise_db_url(url):
    # psycopg 3 is the driver; accept the usual postgres:// spellings.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _instance_secret(instance_path, name="secret_key"):
    """A per-checkout secret kept in instance/, so it survives restarts in embedded mode
    (sessions; the mounted sandbox and the portal share the Razorpay ones)."""
    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, name)
    if not os.path.exists(path):
        # Written aside, then linked into place: the link fails if another process starting
        # at the same moment got there first (one secret is kept), and the name never
        # points at a file not yet written (a reader between create and write saw it empty).
        partial = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(partial)
    with open(path) as fh:
        secret = fh.read().strip()
    if not secret:
        raise ConfigError(f"{path} is empty: delete it to get a new secret")
    return secret
