"""What the patient hears when a visit's payment link expires: that it expired (and a new
one is coming, or the visit lapsed), the new link, or that no new link could be issued.
Run inline by ``portal.notify.receivers`` in the transaction of the booking capability's
link job, so each notice commits with the change it describes."""

from zoneinfo import ZoneInfo

from portal.booking.models import MasterBooking
from portal.domain.rates import format_inr
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify.center import notify_user
from portal.notify.links import visit_path
from portal.notify.reminders import local_time, policy
from portal.payments.models import Payment


def link_expired(visit_id, payment_id, renewed):
    visit = db.session.get(MasterBooking, visit_id)
    link = visit_path("patient", visit_id=visit.id)
    if renewed:
        notify_user(
            visit.patient_id,
            "payment.link_expired",
            f"Payment link expired: visit {visit.number}",
            "The payment link for your visit has expired. We are sending you a new one.",
            link=link,
            email=False,
            dedupe_key=f"link-expired:{payment_id}",
        )
        return
    notify_user(
        visit.patient_id,
        "payment.link_expired",
        f"Payment link expired: visit {visit.number}",
        "The payment link for your visit has expired and the booking has lapsed. "
        "Please book again or contact the clinic.",
        link=link,
        dedupe_key=f"link-expired:{payment_id}",
    )


def link_lapsed(visit_id, payment_id, reason=None):
    visit = db.session.get(MasterBooking, visit_id)
    notify_user(
        visit.patient_id,
        "payment.link_lapsed",
        f"Visit {visit.number} lapsed",
        "We could not issue a new payment link and the booking has lapsed. "
        "Please book again or contact the clinic.",
        link=visit_path("patient", visit_id=visit.id),
        dedupe_key=f"link-lapsed:{payment_id}",
    )


def link_issued(visit_id, payment_id):
    visit = db.session.get(MasterBooking, visit_id)
    new = db.session.get(Payment, payment_id)
    link = visit_path("patient", visit_id=visit.id)
    items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    when = "; ".join(f"{i.service.name}, {local_time(i)}" for i in items)
    expires = local_time_of(new.expires_at, items)
    notify_user(
        visit.patient_id,
        "payment.link_new",
        f"New payment link: visit {visit.number}",
        f"Pay {format_inr(new.amount)} by {expires} to keep your booking ({when}): {new.link_url}",
        link=new.link_url or link,
        mail_template="payment_link",
        mail_context={
            "payment": new,
            "visit": visit,
            "items": items,
            "when": when,
            "amount": format_inr(new.amount),
            "expires": expires,
        },
        dedupe_key=f"link-new:{new.id}",
    )


def local_time_of(when, items):
    zone = ZoneInfo(items[0].clinic.timezone if items else policy().default_timezone)
    local = when.astimezone(zone)
    return local.strftime("%a %d %b %Y, %I:%M %p ").lstrip("0") + (local.tzname() or "")
