"""The patient's data download: one JSON document of their own data, read through the
capabilities' read modules (accounts, booking, refunds, ledger, wallet, notify queries).

Dates are IST (Asia/Kolkata, ISO 8601 with +05:30), amounts rupees as strings from the
integer paise ("1234.50", never a float). Internal ids are left out except where they are
the reference the patient sees or needs to quote (visit and invoice numbers, payment
receipt and gateway references)."""

from portal.accounts import queries as account_queries
from portal.accounts.models import User
from portal.booking import credit_notes
from portal.booking import queries as booking_queries
from portal.booking.models import PAY_GATEWAY
from portal.db import db, utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.ledger import queries as ledger_queries
from portal.notify import queries as notify_queries
from portal.refunds import queries as refund_queries
from portal.wallet import lines as wallet_lines
from portal.wallet import queries as wallet_queries

FORMAT = "clinic-portal-personal-data/1"
_PAGE = 500


def rupees(paise):
    """Integer paise as a rupee string: 123450 → "1234.50", -5 → "-0.05"."""
    if paise is None:
        return None
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(int(paise)), 100)
    return f"{sign}{whole}.{part:02d}"


def ist(moment):
    return moment.astimezone(CLINIC_TZ).isoformat() if moment is not None else None


def _all(read, *args):
    """Every row of a keyset-paged read, page by page."""
    rows, after = [], None
    while True:
        page = read(*args, after=after, per_page=_PAGE)
        rows.extend(page.items)
        if not page.has_next:
            return rows
        after = page.next_cursor


def _visit(visit, notes, fee_descriptions):
    # A credit note names what the document it reverses names, as that was issued: the
    # line's description, or the reschedule fee's (``fee_descriptions``, by reschedule).
    described = {item.id: item.invoice_description for item in visit.items}
    return {
        "number": visit.number,
        "status": str(visit.status),
        "for": visit.dependent.name if visit.dependent_id else "you",
        "created_at": ist(visit.created_at),
        "confirmed_at": ist(visit.confirmed_at),
        "invoice_number": visit.invoice_no,
        "invoiced_to": visit.billed_to_name,
        "coupon": visit.coupon.code if visit.coupon else None,  # as the visit page names it
        "discount": rupees(visit.discount),
        "paid_from_wallet": rupees(visit.wallet_applied),
        "appointments": [
            {
                "service": item.service.name,
                "providers": [p.display_name for p in item.providers],
                "clinic": item.clinic.name,
                "starts_at": ist(item.start_at),
                "ends_at": ist(item.end_at),
                "status": str(item.status),
                "total": rupees(item.total),
                "gst": rupees(item.gst),
                "paid": rupees(item.paid_amount),
                "refunded": rupees(item.refunded_amount),
            }
            for item in visit.items
        ],
        # The GST credit notes against its invoice, as its receipt lists them (a reschedule
        # fee's too: its row under reschedule_fees names the same note).
        "credit_notes": [
            {
                "number": note.number,
                "issued_at": ist(note.issued_at),
                "service": fee_descriptions.get(note.reschedule_id)
                if note.reschedule_id
                else described.get(note.booking_id),
                "gstin": note.clinic_gstin,
                "taxable_value": rupees(note.taxable_value),
                "exempt_value": rupees(note.exempt_value),
                "gst": rupees(note.gst),
            }
            for note in notes
        ],
    }


def _payment(visit, payment):
    return {
        "visit": visit.number,
        "kind": str(payment.kind),
        "amount": rupees(payment.amount),
        "captured": rupees(payment.captured_amount),
        "status": str(payment.status),
        "method": payment.method,
        "receipt": payment.receipt_no,
        "gateway_payment": payment.razorpay_payment_id,
        "created_at": ist(payment.created_at),
        "paid_at": ist(payment.paid_at),
    }


def _refund(refund):
    return {
        "visit": refund.visit.number,
        "service": refund.booking.service.name,
        "amount": rupees(refund.amount),
        "to": str(refund.destination),
        "status": str(refund.status),
        "gateway_refund": refund.razorpay_refund_id,
        "created_at": ist(refund.created_at),
    }


def _wallet_line(line):
    """A movement as the wallet page shows it: its name (in English, as the rest of this
    document; the stored kind beside it), the clinic's public reason for an adjustment and
    a bank pay-out's UTR (``wallet.lines``: no other memo, an internal note never)."""
    return {
        "at": ist(line.at),
        "kind": line.kind,
        "what": wallet_lines.label(line.kind),
        "reason": wallet_lines.public_reason(line),
        "bank_reference_utr": wallet_lines.utr(line),
        "change": rupees(line.change),
        "balance_after": rupees(line.balance),
    }


def _fees(user_id, fees):
    """The reschedule fees the patient paid (``fees``, the visit page's rows: document
    number and the invoice it is against, the description it was issued with, how paid,
    the desk's receipt or the gateway's payment id, the fee's refund), and the fee payments
    Razorpay captured that paid no fee (their money went to the wallet), in the order they
    were paid."""
    paid = [
        (
            fee.paid_at,
            {
                "visit": fee.visit_number,
                "service": fee.description,  # as its tax document says it
                "document_number": fee.document_no,
                "against_invoice": fee.invoice_no,
                "moved_from": ist(fee.old_start),
                "moved_to": ist(fee.new_start),
                "amount": rupees(fee.total),
                "gst": rupees(fee.gst),
                "paid_with": fee.pay_with,
                "receipt": fee.receipt_no,
                "gateway_payment": fee.razorpay_payment_id,
                "paid_at": ist(fee.paid_at),
                "status": "PAID",
                "refund": str(fee.refund_status) if fee.refund_status else None,
                "credit_note": fee.credit_note_no,
            },
        )
        for fee in fees
    ]
    not_applied = [
        (
            capture.captured_at,
            {
                "visit": capture.visit_number,
                "service": capture.service_name,
                "document_number": None,
                "against_invoice": None,
                "moved_from": ist(capture.old_start),
                "moved_to": ist(capture.new_start),
                "amount": rupees(capture.amount),
                "gst": None,
                "paid_with": PAY_GATEWAY,
                "receipt": None,
                "gateway_payment": capture.razorpay_payment_id,
                "paid_at": ist(capture.captured_at),
                "status": "NOT_APPLIED",  # in the wallet instead (the wallet's movements)
                "refund": None,
                "credit_note": None,
            },
        )
        for capture in refund_queries.fees_not_applied_of_patient(user_id)
    ]
    return [row for _at, row in sorted(paid + not_applied, key=lambda pair: pair[0])]


def personal_data(user_id):
    """The document (a dict, ready for ``json.dumps``) of the patient ``user_id``: their
    profile, dependents, visits with appointments, payments, reschedule fees, refunds,
    wallet and what was sent to them; nothing of anyone else."""
    user = db.session.get(User, user_id)
    visits = booking_queries.patient_record(user_id)
    notes = {}
    for note in credit_notes.of_patient(user_id):
        notes.setdefault(note.visit_id, []).append(note)
    wallet = _all(ledger_queries.wallet_history_page, user_id)
    fees = refund_queries.fees_of_patient(user_id)
    fee_descriptions = {fee.id: fee.description for fee in fees}
    return {
        "format": FORMAT,
        "generated_at": ist(utcnow()),
        "time_zone": "Asia/Kolkata (IST)",
        "currency": "INR (rupees)",
        "profile": {
            "name": user.name,
            "email": user.email,
            "mobile": user.phone,
            "language": user.language,
            "registered_at": ist(user.created_at),
            "last_sign_in_at": ist(user.last_login_at),
        },
        "dependents": [
            {
                "name": d.name,
                "relationship": d.relationship_,
                "date_of_birth": d.date_of_birth.isoformat() if d.date_of_birth else None,
            }
            for d in account_queries.dependents_of(user_id)
        ],
        "visits": [_visit(v, notes.get(v.id, ()), fee_descriptions) for v in visits],
        "payments": [_payment(v, p) for v in visits for p in v.payments],
        "reschedule_fees": _fees(user_id, fees),
        "refunds": [_refund(r) for r in refund_queries.refunds_of_patient(user_id)],
        "wallet": {
            "balance": rupees(wallet_queries.shown_balance(user_id)),
            "transactions": [_wallet_line(line) for line in reversed(wallet)],
        },
        "notifications": [
            {"kind": n.kind, "title": n.title, "at": ist(n.created_at), "read_at": ist(n.read_at)}
            for n in reversed(_all(notify_queries.notifications_page, user_id))
        ],
        "messages_sent": [
            {
                "kind": row.kind,
                "channel": row.channel,
                "subject": row.subject,  # a mail's; never its body (a reset link)
                "status": str(row.status),
                "queued_at": ist(row.created_at),
                "sent_at": ist(row.sent_at),
            }
            for row in notify_queries.sent_to(user_id)
        ],
    }
