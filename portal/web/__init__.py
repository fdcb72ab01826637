"""The web layer: one blueprint per audience. Views parse, call one service, render."""


def register_blueprints(app):
    from portal.extensions import csrf
    from portal.web import (
        admin,
        auth,
        notifications,
        ops,
        patient,
        provider,
        public,
        webhooks,
    )

    for module in (public, auth, patient, provider, admin, notifications, ops):
        app.register_blueprint(module.bp)
    # Webhooks prove themselves by signature, not by a session's CSRF token.
    csrf.exempt(webhooks.bp)
    app.register_blueprint(webhooks.bp)
