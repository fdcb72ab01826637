"""What the patient hears when a visit's payment link expires: that it expired (and a new
one is coming, or the visit lapsed), the new link, or that no new link could be issued.
Run inline by ``portal.notify.receivers`` in the transaction of the booking capability's
link job, so each notice commits with the change it describes."""

from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from portal.booking.models import MasterBooking
from portal.domain.rates import format_inr
from portal.domain.states import BookingStatus
from portal.extensions import db
from portal.notify.center import notify_user
from portal.notify.links import visit_path
from portal.notify.reminders import local_time, policy
from portal.notify.wording import speaking_to, spoken_time
from portal.payments.models import Payment


def link_expired(visit_id, payment_id, renewed):
    visit = db.session.get(MasterBooking, visit_id)
    link = visit_path("patient", visit_id=visit.id)
    with speaking_to(visit.patient_id):
        title = _("Payment link expired: visit %(number)s", number=visit.number)
        if renewed:
            body = _("The payment link for your visit has expired. We are sending you a new one.")
        else:
            body = _(
                "The payment link for your visit has expired and the booking has lapsed. "
                "Please book again or contact the clinic."
            )
    if renewed:
        notify_user(
            visit.patient_id,
            "payment.link_expired",
            title,
            body,
            link=link,
            email=False,
            dedupe_key=f"link-expired:{payment_id}",
        )
        return
    notify_user(
        visit.patient_id,
        "payment.link_expired",
        title,
        body,
        link=link,
        dedupe_key=f"link-expired:{payment_id}",
    )


def link_lapsed(visit_id, payment_id, reason=None):
    visit = db.session.get(MasterBooking, visit_id)
    with speaking_to(visit.patient_id):
        title = _("Visit %(number)s lapsed", number=visit.number)
        body = _(
            "We could not issue a new payment link and the booking has lapsed. "
            "Please book again or contact the clinic."
        )
    notify_user(
        visit.patient_id,
        "payment.link_lapsed",
        title,
        body,
        link=visit_path("patient", visit_id=visit.id),
        dedupe_key=f"link-lapsed:{payment_id}",
    )


def link_issued(visit_id, payment_id):
    visit = db.session.get(MasterBooking, visit_id)
    new = db.session.get(Payment, payment_id)
    link = visit_path("patient", visit_id=visit.id)
    items = [i for i in visit.items if i.status == BookingStatus.SCHEDULED]
    with speaking_to(visit.patient_id):
        when = "; ".join(f"{i.service.name}, {local_time(i)}" for i in items)
        expires = local_time_of(new.expires_at, items)
        title = _("New payment link: visit %(number)s", number=visit.number)
        body = _(
            "Pay %(amount)s by %(expires)s to keep your booking (%(when)s): %(url)s",
            amount=format_inr(new.amount), expires=expires, when=when, url=new.link_url,
        )  # fmt: skip
    notify_user(
        visit.patient_id,
        "payment.link_new",
        title,
        body,
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
    return spoken_time(when.astimezone(zone))
