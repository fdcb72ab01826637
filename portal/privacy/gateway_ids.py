"""The Razorpay ids of a patient's payments (visit payments and their attempts,
reschedule fees), for taking their contact details out of the stored webhooks at closure
(``gateway.scrub``)."""

import sqlalchemy as sa

from portal.booking.models import FeeCapture, MasterBooking, Reschedule
from portal.extensions import db
from portal.payments.models import Payment, PaymentAttempt


def of_patient(patient_id):
    """``{"payment_ids", "order_ids", "link_ids"}`` as sets (four statements)."""
    theirs = sa.select(MasterBooking.id).where(MasterBooking.patient_id == patient_id)
    payment_ids, order_ids, link_ids = set(), set(), set()
    for pid, oid, lid in db.session.execute(
        sa.select(
            Payment.razorpay_payment_id, Payment.razorpay_order_id, Payment.razorpay_link_id
        ).where(Payment.master_id.in_(theirs))
    ):
        payment_ids.add(pid)
        order_ids.add(oid)
        link_ids.add(lid)
    payment_ids.update(
        db.session.scalars(
            sa.select(PaymentAttempt.razorpay_payment_id)
            .join(Payment, Payment.id == PaymentAttempt.payment_id)
            .where(Payment.master_id.in_(theirs))
        )
    )
    for pid, oid in db.session.execute(
        sa.select(Reschedule.razorpay_payment_id, Reschedule.razorpay_order_id).where(
            Reschedule.visit_id.in_(theirs)
        )
    ):
        payment_ids.add(pid)
        order_ids.add(oid)
    payment_ids.update(
        db.session.scalars(
            sa.select(FeeCapture.razorpay_payment_id)
            .join(Reschedule, Reschedule.id == FeeCapture.reschedule_id)
            .where(Reschedule.visit_id.in_(theirs))
        )
    )
    return {
        "payment_ids": payment_ids - {None},
        "order_ids": order_ids - {None},
        "link_ids": link_ids - {None},
    }
