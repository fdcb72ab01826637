from flask_login import current_user

from portal.booking import lookup as booking_lookup
from portal.booking import prices as booking_prices
from portal.web.patient import bp
from portal.web.render import render


@bp.get("/")
def home():
    unpaid = booking_lookup.list_visits(patient_id=current_user.id,
                                 status=["DRAFT", "PENDING_PAYMENT"], per_page=5).items
    upcoming = booking_lookup.list_visits(patient_id=current_user.id,
                                   status=["CONFIRMED", "PARTIALLY_CANCELLED"], per_page=5).items
    return render("patient/home.html", unpaid=unpaid, upcoming=upcoming,
                  wallet=booking_prices.wallet_balance(current_user.id))
