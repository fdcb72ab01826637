"""Pages for operations and finance."""

from flask import Blueprint

from portal.accounts.models import ADMIN
from portal.web.security import guard_blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
guard_blueprint(bp, ADMIN)

from portal.web.admin import (  # noqa: E402,F401
    approvals,
    audit,
    cancellations,
    catalog,
    coupons,
    exports,
    home,
    jobs,
    operations,
    payouts,
    policy,
    reconcile,
    reports,
    reschedule,
    settlements,
    transactions,
    transactions_export,
    users,
    visits,
    wallet,
)
