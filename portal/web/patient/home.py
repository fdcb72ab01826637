from flask_login import current_user

from portal.booking import queries
from portal.wallet import queries as wallet_queries
from portal.web.htmx import render
from portal.web.patient import bp
from portal.web.signed_in import WALLET_BALANCE, reads_with_user


@bp.get("/")
@reads_with_user(WALLET_BALANCE)
def home():
    unpaid, upcoming = queries.open_and_upcoming_visits(current_user.id)
    return render(
        "patient/home.html",
        unpaid=unpaid,
        upcoming=upcoming,
        wallet=wallet_queries.shown_balance(current_user.id),
    )
