from flask_login import current_user

from portal.booking import prices as booking_prices
from portal.booking import queries
from portal.web.htmx import render
from portal.web.patient import bp


@bp.get("/")
def home():
    unpaid, upcoming = queries.open_and_upcoming_visits(current_user.id)
    return render(
        "patient/home.html",
        unpaid=unpaid,
        upcoming=upcoming,
        wallet=booking_prices.wallet_balance(current_user.id),
    )
