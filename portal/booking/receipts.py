"""The tax invoice of a paid visit: one line per item paid for, the discount, what the
wallet and the gateway paid, and the payments that count (not money kept in the wallet
after a late or mismatched capture); and that invoice's breakup on the one payment that
paid it (the transactions console's price breakup)."""

from dataclasses import dataclass, field

from portal.booking.credit_notes import for_visit as credit_notes_for
from portal.booking.errors import BookingError
from portal.booking.invoices import gst_bps
from portal.domain.states import PaymentStatus
from portal.i18n import N_
from portal.payments import records
from portal.payments.models import WALLET

# The patient's receipt link on an unpaid visit: flashed on the visit's page, where a
# Hindi reader had it in English (tests/i18n/test_every_page_hi.py).
MSG_NOT_PAID_YET = N_("This visit has not been paid yet")


@dataclass(frozen=True)
class ReceiptLine:
    item_id: int
    description: str
    starts_at: object
    clinic_name: str
    clinic_gstin: str | None
    care_amount: int  # F: exempt health care unless the service is taxable
    care_taxed: bool
    platform_fee: int  # P: the platform fee, the clinic's taxable supply
    gst: int
    # Its split as stored at issue (``invoices.issue_lines``): CGST + SGST, or IGST.
    cgst: int
    sgst: int
    igst: int
    gst_bps: int  # the rate it was charged at (its policy version's), not today's
    total: int
    discount_share: int
    paid_amount: int
    status: str

    @property
    def exempt_value(self):
        """The line's exempt health care: its fee, unless the service is taxable."""
        return 0 if self.care_taxed else self.care_amount

    @property
    def taxable_value(self):
        """What the line's GST is charged on: the platform fee, and the fee of a taxable
        service."""
        return self.platform_fee + (self.care_amount if self.care_taxed else 0)


@dataclass(frozen=True)
class Receipt:
    invoice_no: str
    visit_number: str
    issued_at: object
    patient_name: str
    for_name: str
    lines: list
    subtotal: int
    discount: int
    paid_wallet: int
    paid_gateway: int
    payments: list
    credit_notes: list = ()  # GST credit notes against this invoice (never edited)
    # {booking id: the GST rate it and its reschedule fees were charged at}: the lines',
    # the fee documents' and the credit notes' (lines of one visit may differ: an item
    # added after a change of rate is priced under the new one).
    rates: dict = field(default_factory=dict)

    def gst_bps_of(self, booking_id):
        return self.rates[booking_id]

    @property
    def total_paid(self):
        return self.paid_wallet + self.paid_gateway

    @property
    def exempt_care(self):
        return sum(line.exempt_value for line in self.lines)

    @property
    def taxed_value(self):
        return sum(line.taxable_value for line in self.lines)

    @property
    def gst(self):
        return sum(line.gst for line in self.lines)

    @property
    def cgst(self):
        return sum(line.cgst for line in self.lines)

    @property
    def sgst(self):
        return sum(line.sgst for line in self.lines)

    @property
    def igst(self):
        return sum(line.igst for line in self.lines)

    @property
    def care_taxed(self):
        """Whether any line's care is in the taxable value (a taxable service, or the
        policy's F + P mode when it was issued): then it is not platform fees alone."""
        return any(line.care_taxed for line in self.lines)


def invoiced_items(visit):
    """The items a paid visit's invoice has a line for: those its confirmation invoiced
    (``confirmed_at``, as the GST report's invoice rows read them), whatever became of them
    since. The invoice is never edited: a line cancelled later stays, its credit note beside
    it, though a 100 % coupon left nothing paid on it."""
    return [i for i in visit.items if i.confirmed_at is not None]


def paying(visit):
    """The visit's payments that paid for it (oldest first)."""
    return [
        p
        for p in visit.payments
        if p.status == PaymentStatus.SUCCESSFUL and not records.paid_for_nothing(p)
    ]


@dataclass(frozen=True)
class Breakup:
    """An invoice's parts on the payment that paid it: care fee, platform fee, GST, less the
    discount (the coupon) and the wallet part when another payment carries it."""

    fee: int
    platform_fee: int
    gst: int
    discount: int
    wallet: int

    @property
    def paid(self):
        return self.fee + self.platform_fee + self.gst - self.discount - self.wallet


def breakup_of(payment):
    """The visit's invoice on the payment whose money paid it — its gateway or desk
    payment, or its wallet part when the wallet paid it all — adding up to that payment's
    amount; None on any other payment (pending, failed, a capture that paid for nothing,
    the wallet part beside a gateway payment): the invoice's GST is shown once, so a
    column of them sums to the GST invoiced (docs/transactions.md)."""
    visit = payment.visit
    if visit is None or visit.invoice_no is None or payment.status != PaymentStatus.SUCCESSFUL:
        return None
    paid = paying(visit)
    payer = next((p for p in paid if p.kind != WALLET), paid[0] if paid else None)
    if payer is not payment:
        return None
    return _breakup(invoiced_items(visit), with_wallet=payment.kind != WALLET)


def breakup_unpaid(visit):
    """The invoice of a confirmed visit no payment paid (a 100 % coupon: nothing was due),
    adding up to 0; None when a payment carries it (:func:`breakup_of`) or it has none.
    The transactions console shows it on the confirmation's row, so its GST is counted."""
    if visit.invoice_no is None or paying(visit):
        return None
    return _breakup(invoiced_items(visit), with_wallet=False)


def _breakup(items, *, with_wallet):
    return Breakup(
        fee=sum(i.fee for i in items),
        platform_fee=sum(i.platform_fee for i in items),
        gst=sum(i.gst for i in items),
        discount=sum(i.discount_share for i in items),
        wallet=sum(i.wallet_paid for i in items) if with_wallet else 0,
    )


def receipt(visit):
    """The tax invoice of a paid visit (its number allocated at first confirmation)."""
    if visit.invoice_no is None:
        raise BookingError(MSG_NOT_PAID_YET)
    items = invoiced_items(visit)
    rates = {i.id: gst_bps(i) for i in visit.items}
    lines = [
        ReceiptLine(
            item_id=i.id,
            # As invoiced (invoices.issue_lines), not the clinic's, service's or providers' today.
            description=i.invoice_description,
            starts_at=i.start_at,
            clinic_name=i.invoice_clinic_name,
            clinic_gstin=i.invoice_gstin,
            care_amount=i.fee,
            care_taxed=i.fee_taxed,
            platform_fee=i.platform_fee,
            gst=i.gst,
            cgst=i.cgst,
            sgst=i.sgst,
            igst=i.igst,
            gst_bps=rates[i.id],
            total=i.total,
            discount_share=i.discount_share,
            paid_amount=i.paid_amount,
            status=i.status,
        )
        for i in items
    ]
    paid = paying(visit)
    return Receipt(
        invoice_no=visit.invoice_no,
        visit_number=visit.number,
        issued_at=visit.confirmed_at,
        patient_name=visit.billed_to_name,  # as issued, not as renamed since
        for_name=visit.billed_for_name,
        lines=lines,
        subtotal=sum(line.total for line in lines),
        discount=sum(line.discount_share for line in lines),
        paid_wallet=sum(i.wallet_paid for i in items),
        paid_gateway=sum(i.gateway_paid for i in items),
        payments=[
            (p.kind, p.amount, p.method, p.receipt_no or p.razorpay_payment_id, p.paid_at)
            for p in paid
        ],
        credit_notes=credit_notes_for(visit.id),
        rates=rates,
    )
