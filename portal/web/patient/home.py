from flask_login import current_user

from portal.booking import service as booking
from portal.web.htmx import render
from portal.web.patient import bp


@bp.get("/")
def home():
    unpaid = booking.list_visits(patient_id=current_user.id,
                                 status=["DRAFT", "PENDING_PAYMENT"], per_page=5).items
    upcoming = booking.list_visits(patient_id=current_user.id,
                                   status=["CONFIRMED", "PARTIALLY_CANCELLED"], per_page=5).items
    return render("patient/home.html", unpaid=unpaid, upcoming=upcoming,
                  wallet=booking.wallet_balance(current_user.id))
