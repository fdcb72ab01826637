"""Jinja filters and globals shared by every page."""
from portal.domain.rates import format_inr


def init_app(app):
    app.jinja_env.filters["inr"] = format_inr
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
