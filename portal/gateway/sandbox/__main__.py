"""Serve the sandbox on its own port: ``python -m portal.gateway.sandbox``.

Settings come from the environment: RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET,
RAZORPAY_WEBHOOK_SECRET, RAZORPAYX_WEBHOOK_SECRET, RAZORPAYX_ACCOUNT_NUMBER,
SANDBOX_WEBHOOK_URL, SANDBOX_X_WEBHOOK_URL, SANDBOX_FAULTS (JSON), SANDBOX_HOST,
SANDBOX_PORT (default 5001), SANDBOX_CALLBACK_ORIGINS (comma-separated origins the checkout
may return to; default: those of the webhook URLs), SANDBOX_DATABASE_URL (SQLite or
PostgreSQL: the state shared by every process serving it; default: this process's memory),
SANDBOX_WEBHOOK_SENDERS (webhooks sent at once by each process, as Razorpay sends them in
parallel; default 8).
The control API needs the key (HTTP basic auth with RAZORPAY_KEY_ID / RAZORPAY_KEY_SECRET).

Under several processes, with a database::

    SANDBOX_DATABASE_URL=sqlite:///instance/sandbox.sqlite3 \
      gunicorn -w 4 -b 127.0.0.1:5001 'portal.gateway.sandbox.__main__:app_from_environment()'
"""

import os

from werkzeug.serving import run_simple

from portal.gateway.sandbox.app import DEFAULTS, create_sandbox_app


def app_from_environment():
    env = os.environ.get
    config = {
        "KEY_ID": env("RAZORPAY_KEY_ID", DEFAULTS["KEY_ID"]),
        "KEY_SECRET": env("RAZORPAY_KEY_SECRET", DEFAULTS["KEY_SECRET"]),
        "WEBHOOK_SECRET": env("RAZORPAY_WEBHOOK_SECRET", DEFAULTS["WEBHOOK_SECRET"]),
        "X_WEBHOOK_SECRET": env("RAZORPAYX_WEBHOOK_SECRET", DEFAULTS["X_WEBHOOK_SECRET"]),
        "X_ACCOUNT_NUMBER": env("RAZORPAYX_ACCOUNT_NUMBER", DEFAULTS["X_ACCOUNT_NUMBER"]),
        "WEBHOOK_URL": env("SANDBOX_WEBHOOK_URL"),
        "X_WEBHOOK_URL": env("SANDBOX_X_WEBHOOK_URL"),
        "FAULTS": env("SANDBOX_FAULTS"),
        "DATABASE_URL": env("SANDBOX_DATABASE_URL") or None,
        "WEBHOOK_SENDERS": int(env("SANDBOX_WEBHOOK_SENDERS", "8")),
    }
    origins = [o.strip() for o in env("SANDBOX_CALLBACK_ORIGINS", "").split(",") if o.strip()]
    if origins:
        config["CALLBACK_ORIGINS"] = tuple(origins)
    return create_sandbox_app(config)


def main():
    env = os.environ.get
    app = app_from_environment()
    run_simple(
        env("SANDBOX_HOST", "127.0.0.1"), int(env("SANDBOX_PORT", "5001")), app, threaded=True
    )


if __name__ == "__main__":
    main()
