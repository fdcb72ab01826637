"""Settings, read from the environment. The defaults are the embedded mode:
SQLite in ``instance/``, jobs in-process, the sandbox gateway mounted in the app."""
import os
import secrets


def _bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment(instance_path):
    """Build the config mapping. Anything secret comes only from the environment;
    the embedded mode invents throwaway values so a fresh clone runs."""
    embedded = not os.environ.get("DATABASE_URL")
    database_url = os.environ.get("DATABASE_URL") or (
        "sqlite:///" + os.path.join(instance_path, "portal.sqlite3")
    )
    redis_url = os.environ.get("REDIS_URL") or None
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        if not embedded:
            raise RuntimeError("SECRET_KEY must be set outside the embedded mode")
        secret_key = _instance_secret(instance_path)
    public_url = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")
    return {
        "SECRET_KEY": secret_key,
        "EMBEDDED": embedded,
        "SQLALCHEMY_DATABASE_URI": _normalise_db_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        # Jobs run in-process when there is no Redis (the embedded mode and most tests).
        "JOBS_INLINE": redis_url is None,
        "RQ_CONNECTION": redis_url or "redis://127.0.0.1:6379/0",
        "RQ_QUEUES": ["default", "payments", "payouts", "notify"],
        "RQ_ASYNC": True,
        "PUBLIC_URL": public_url,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", not embedded),
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", not embedded),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "PASSWORD_RESET_MAX_AGE": int(os.environ.get("PASSWORD_RESET_MAX_AGE", "3600")),
        "INVITE_MAX_AGE": int(os.environ.get("INVITE_MAX_AGE", str(7 * 24 * 3600))),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER") or None,  # None: console + outbox table
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Clinic Portal <no-reply@clinic.example>"),
        # Razorpay: the embedded default points the official SDK at the sandbox mounted in-app.
        "RAZORPAY_KEY_ID": os.environ.get("RAZORPAY_KEY_ID", "rzp_test_sandbox" if embedded else ""),
        "RAZORPAY_KEY_SECRET": os.environ.get("RAZORPAY_KEY_SECRET") or (
            "sandbox_secret" if embedded else ""),
        "RAZORPAY_WEBHOOK_SECRET": os.environ.get("RAZORPAY_WEBHOOK_SECRET") or (
            "sandbox_webhook_secret" if embedded else ""),
        "RAZORPAY_BASE_URL": os.environ.get("RAZORPAY_BASE_URL") or (
            public_url + "/sandbox" if embedded else "https://api.razorpay.com"),
        "RAZORPAYX_ACCOUNT_NUMBER": os.environ.get("RAZORPAYX_ACCOUNT_NUMBER", "2323230000000000"),
        "RAZORPAYX_WEBHOOK_SECRET": os.environ.get("RAZORPAYX_WEBHOOK_SECRET") or (
            "sandbox_webhook_secret" if embedded else ""),
        "SANDBOX_ENABLED": _bool("SANDBOX_ENABLED", embedded),
        "PERIODIC_INLINE": _bool("PERIODIC_INLINE", embedded),
    }


def _normalise_db_url(url):
    # psycopg 3 is the driver; accept the usual postgres:// spellings.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _instance_secret(instance_path):
    """A per-checkout secret kept in instance/, so sessions survive restarts in embedded mode."""
    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write(secrets.token_hex(32))
    with open(path) as fh:
        return fh.read().strip()
