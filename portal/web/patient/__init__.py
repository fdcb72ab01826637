"""Pages for patients: their visits, dependents and wallet."""

from flask import Blueprint

from portal.accounts.models import PATIENT
from portal.web.security import guard_blueprint

bp = Blueprint("patient", __name__, url_prefix="/me")
guard_blueprint(bp, PATIENT)

from portal.web.patient import (  # noqa: E402,F401
    cancellations,
    dependents,
    home,
    reschedule,
    visits,
    wallet,
)
