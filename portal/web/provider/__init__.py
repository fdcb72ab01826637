"""Pages for doctors and labs: schedule, availability, earnings, payouts."""

from flask import Blueprint

from portal.accounts.models import PROVIDER
from portal.web.security import guard_blueprint

bp = Blueprint("provider", __name__, url_prefix="/provider")
guard_blueprint(bp, PROVIDER)

from portal.web.provider import (  # noqa: E402,F401
    availability,
    bank,
    cancellations,
    earnings,
    home,
    schedule,
    tds,
)
