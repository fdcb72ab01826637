"""Jinja filters and globals shared by every page."""
from portal.domain.rates import format_inr
from portal.web.forms.money import bps_to_text


def init_app(app):
    from portal.config import policy
    app.jinja_env.filters["inr"] = format_inr
    # 1250 -> "12.5": rates are basis points; pages state them from the policy in force.
    app.jinja_env.filters["percent_bps"] = bps_to_text
    app.jinja_env.globals["policy"] = policy
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
