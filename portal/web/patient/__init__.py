"""Pages for patients: their visits, dependents and wallet."""

from flask import Blueprint

from portal.accounts.models import PATIENT
from portal.web.patient.handoff import book_for_others
from portal.web.security import guard_blueprint

bp = Blueprint("patient", __name__, url_prefix="/me")
bp.before_request(book_for_others)  # ahead of the guard: the find page's links, for others
guard_blueprint(bp, PATIENT)

from portal.web.patient import (  # noqa: E402,F401
    account,
    cancellations,
    dependents,
    home,
    reschedule,
    visits,
    wallet,
)
