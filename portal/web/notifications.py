"""The in-app notification centre, for every signed-in role (being built)."""
from flask import Blueprint
from flask_login import login_required

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.before_request
@login_required
def _signed_in():
    return None
