"""Clinic Portal: book, pay for, reschedule and cancel clinic visits; pay providers."""

import importlib
import os

from flask import Flask

from portal import config as config_module
from portal import replica

# Capability modules whose import registers models, jobs, webhook handlers and commands.
CAPABILITIES = (
    "portal.accounts.models",
    "portal.audit.models",
    "portal.outbox",
    "portal.notify.models",
    "portal.notify.mail",
    "portal.notify.channels",
    "portal.notify.reminders",
    "portal.notify.sweeps",
    "portal.notify.tasks",
    "portal.notify.receivers",
    "portal.accounts.service",
    "portal.catalog.models",
    "portal.catalog.providers",  # a provider's profile goes with their account (a receiver)
    "portal.ledger.models",
    "portal.gateway.models",
    "portal.gateway.webhook_processing",
    "portal.wiring",
    "portal.booking.models",
    "portal.booking.deactivation",  # a patient's account kept over their visits (a receiver)
    "portal.booking.calendar_events",
    "portal.payments.models",
    "portal.booking.tasks",
    "portal.booking.links",
    "portal.booking.link_checks",
    "portal.booking.webhooks",
    "portal.payouts.models",
    "portal.payouts.tasks",
    "portal.payouts.tds_records",  # a PAN TDS was deducted under is kept (a receiver)
    "portal.payouts.pan_writes",  # a PAN is written after its payouts being made (a receiver)
    "portal.refunds.models",
    "portal.refunds.tasks",
    "portal.refunds.unapplied",  # a payment for a closed account is refunded (a receiver)
    "portal.booking.reschedule",
    "portal.booking.reschedule_payment",
    "portal.reconcile.models",
    "portal.wallet.models",
    "portal.exports.models",
    "portal.exports.service",
    "portal.booking.credit_notes",
    "portal.reports.audit_log",
    "portal.reports.gst",
    "portal.reports.tds",
    "portal.settlements.models",
    "portal.settlements.tasks",
    "portal.transactions.models",
    "portal.transactions.projectors",
    "portal.reconcile.tasks",
    "portal.reconcile.report",
    "portal.policies.models",
)


def create_app(test_config=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        instance_path=os.path.join(root, "instance"),
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    from portal import templating

    app.jinja_environment = templating.Environment  # before anything reads app.jinja_env
    app.config.from_mapping(config_module.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)
    for name in ("SQLALCHEMY_DATABASE_URI", "REPORTS_DATABASE_URL"):
        if app.config.get(name):
            app.config[name] = config_module._normalise_db_url(app.config[name])
    os.makedirs(app.instance_path, exist_ok=True)

    from portal.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate, rq
    from portal.i18n import N_, compile_catalogues
    from portal.web import signed_out
    from portal.web.language import select_locale

    db.init_app(app)
    replica.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(root, "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    compile_catalogues(os.path.join(app.root_path, "translations"))
    babel.init_app(
        app, locale_selector=select_locale, default_timezone=config_module.CLINIC_TIMEZONE
    )
    limiter.init_app(app)
    rq.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = N_("Please sign in to see that page.")
    login_manager.login_message_category = "info"
    # The sign-in page as a page, also to htmx; back to a page, never to a POST's address.
    login_manager.unauthorized_handler(signed_out.unauthorized)

    for module in CAPABILITIES:
        importlib.import_module(module)

    @login_manager.user_loader
    def load_user(session_id):
        from portal.web import signed_in

        # The session's user version must still be the user's: logout, a password change
        # or reset and deactivation bump it, ending every copy of the cookie (and the
        # remember-me cookie, which holds the same id).
        return signed_in.load_user(session_id)

    from portal import logs
    from portal.web import assets, errors, register_blueprints
    from portal.web.forms import html as form_html
    from portal.web.security import set_security_headers

    logs.init_app(app)
    templating.init_app(app)
    form_html.install()  # WTForms' fields write their attributes without Markup.format
    errors.init_app(app)
    register_blueprints(app)
    app.after_request(set_security_headers)
    assets.init_app(app)  # fingerprinted static files, compressed answers

    from portal import cli, jobs
    from portal.catalog import calendar
    from portal.policies import store as policy_store

    policy_store.init_app(app)
    calendar.init_app(app)
    cli.init_app(app)
    jobs.register_schedule(app)

    if app.config.get("SANDBOX_ENABLED"):
        # The embedded default: the Razorpay-compatible sandbox served by this same app.
        from portal.gateway.sandbox.app import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    from portal.web import replay
    from portal.web.ops import Liveness

    replay.init_app(app)  # kept free-times answers to visitors, before Flask
    app.wsgi_app = Liveness(app.wsgi_app)
    proxies = app.config.get("TRUSTED_PROXIES") or 0
    if proxies:
        # Behind N load balancers/proxies: the client's address (the login limiter's key),
        # scheme and host come from their X-Forwarded-* headers, and only from theirs.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    return app
