"""Settings for ``make prod``: write ``instance/prod.env`` once (fresh secrets; the
database, Redis and ports from the environment or the defaults below) and create the
PostgreSQL database when it is missing. An existing prod.env is kept as it is.

    PROD_DATABASE_URL  postgresql://postgres@127.0.0.1:5432/clinic_portal
    PROD_REDIS_URL     redis://127.0.0.1:6379/0
    PROD_WEB_PORT      8000        PROD_SANDBOX_PORT  5001
"""

import os
import secrets
import sys

import sqlalchemy as sa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_FILE = os.path.join(ROOT, "instance", "prod.env")


def settings():
    env = os.environ.get
    web = f"http://127.0.0.1:{env('PROD_WEB_PORT', '8000')}"
    sandbox_port = env("PROD_SANDBOX_PORT", "5001")
    return {
        "DATABASE_URL": env(
            "PROD_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/clinic_portal"
        ),
        "REDIS_URL": env("PROD_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SECRET_KEY": secrets.token_hex(32),
        "PUBLIC_URL": web,
        "WEB_BIND": web.removeprefix("http://"),
        # Plain HTTP on loopback; behind a TLS load balancer leave the default (secure).
        "SESSION_COOKIE_SECURE": "0",
        # The Razorpay-compatible sandbox as its own tier (several processes, one state).
        "RAZORPAY_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "RAZORPAY_KEY_ID": "rzp_test_" + secrets.token_hex(6),
        "RAZORPAY_KEY_SECRET": secrets.token_urlsafe(24),
        "RAZORPAY_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "RAZORPAYX_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "SANDBOX_BIND": f"127.0.0.1:{sandbox_port}",
        "SANDBOX_WEBHOOK_URL": web + "/webhooks/razorpay",
        "SANDBOX_X_WEBHOOK_URL": web + "/webhooks/razorpayx",
        "SANDBOX_DATABASE_URL": "sqlite:///"
        + os.path.join(ROOT, "instance", "sandbox-prod.sqlite3"),
    }


def read(path):
    values = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    return values


def ensure_database(url):
    target = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            )
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
                print(f"created the database {target.database}")
    finally:
        admin.dispose()


def main():
    if not os.path.exists(ENV_FILE):
        os.makedirs(os.path.dirname(ENV_FILE), exist_ok=True)
        values = settings()
        with open(os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write("# make prod's settings (tools/prod_env.py); edit freely, kept across runs\n")
            fh.writelines(f"{k}={v}\n" for k, v in values.items())
        print(f"wrote {ENV_FILE}")
    values = read(ENV_FILE)
    try:
        ensure_database(values["DATABASE_URL"])
    except sa.exc.OperationalError as exc:
        sys.exit(f"PostgreSQL is not reachable at {values['DATABASE_URL']}: {exc.orig}")


if __name__ == "__main__":
    main()
