"""Visits (master bookings), individual bookings, slot claims, coupons, invoice numbers.

Money columns are integer paise. Statuses are ``portal.domain.states`` enums (stored as
their strings, checked by CHECK constraints) and moved only through its machines: VISIT
for a visit (derived from its items, ``booking.lifecycle.refresh_status``), BOOKING for
an item."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.catalog import time_lock
from portal.db import UTCDateTime, after_create_on_postgresql, utcnow
from portal.domain.states import BookingStatus, PaymentStatus, RescheduleStatus, VisitStatus
from portal.extensions import db
from portal.payments.models import WALLET

ONLINE_CHANNEL, DESK_CHANNEL = "ONLINE", "DESK"
CHANNELS = (ONLINE_CHANNEL, DESK_CHANNEL)

# Visit statuses are derived from the items and the payment state, stored for lists.
VISIT_STATUSES = tuple(VisitStatus)
OPEN_VISIT_STATUSES = (VisitStatus.DRAFT, VisitStatus.PENDING_PAYMENT)  # nothing paid yet
ITEM_STATUSES = tuple(BookingStatus)
LIVE_ITEM_STATUSES = (BookingStatus.SCHEDULED, BookingStatus.CONFIRMED, BookingStatus.STARTED)


def counts_in_total(item_status):
    """An item in this status counts in its visit's subtotal (live or completed)."""
    return item_status in LIVE_ITEM_STATUSES or item_status == BookingStatus.COMPLETED


# Why a visit needs an admin's attention (None = it does not, unless pending close to start).
ATTENTION_PAYMENT_FAILED = "PAYMENT_FAILED"
ATTENTION_AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
ATTENTION_LINK_EXPIRED = "LINK_EXPIRED"
# The link's expiry job gave up (an error no retry changed): the link ended unchecked and
# the visit lapsed (``links._give_up``).
ATTENTION_LINK_EXPIRY_FAILED = "LINK_EXPIRY_FAILED"
ATTENTION_LATE_PAYMENT = "LATE_PAYMENT_TO_WALLET"
ATTENTION_RECONCILIATION = "RECONCILIATION"
# Paid after the patient closed the account: refunded to its source (payment_events).
ATTENTION_CLOSED_ACCOUNT = "CLOSED_ACCOUNT_REFUNDED"

# How a reschedule fee is paid: nothing to pay, the wallet, Razorpay (the patient), the desk.
PAY_NONE, PAY_WALLET, PAY_GATEWAY, PAY_DESK = "NONE", "WALLET", "GATEWAY", "DESK"
PAY_WITH = (PAY_NONE, PAY_WALLET, PAY_GATEWAY, PAY_DESK)

PERCENT, FLAT = "PERCENT", "FLAT"
COUPON_KINDS = (PERCENT, FLAT)


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class MasterBooking(db.Model):
    """One visit: a patient's (or dependent's) group of individual bookings, paid together."""

    __tablename__ = "visits"
    __table_args__ = (
        sa.CheckConstraint(_in("channel", CHANNELS), name="channel_known"),
        sa.CheckConstraint(_in("status", VISIT_STATUSES), name="status_known"),
        sa.CheckConstraint("discount >= 0", name="discount_non_negative"),
        sa.CheckConstraint("wallet_applied >= 0", name="wallet_non_negative"),
        sa.Index("ix_visits_status_hold", "status", "hold_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    dependent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dependents.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(sa.String(8), default=ONLINE_CHANNEL)
    status: Mapped[str] = mapped_column(sa.String(20), default=VisitStatus.DRAFT, index=True)
    coupon_id: Mapped[int | None] = mapped_column(sa.ForeignKey("coupons.id"))
    discount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    wallet_applied: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    hold_expires_at: Mapped[object | None] = mapped_column(UTCDateTime)
    attention: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    invoice_no: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    # Whom the invoice was issued to, written with its number (``lifecycle.confirm``): the
    # account holder billed and the person the visit is for, as named then. A later rename
    # changes neither (``booking.invoices``: tax documents keep what they were issued with).
    billed_to_name: Mapped[str | None] = mapped_column(sa.String(120))
    billed_for_name: Mapped[str | None] = mapped_column(sa.String(120))
    confirmed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    patient = relationship("User", foreign_keys=[patient_id])
    dependent = relationship("Dependent")
    created_by = relationship("User", foreign_keys=[created_by_id])
    coupon = relationship("Coupon")
    items = relationship(
        "IndividualBooking",
        back_populates="visit",
        order_by="(IndividualBooking.start_at, IndividualBooking.id)",
        cascade="all, delete-orphan",
    )
    payments = relationship(
        "Payment", back_populates="visit", order_by="Payment.id", cascade="all, delete-orphan"
    )

    def owner_ids(self):
        return {self.patient_id}

    # --- derived figures (stored per item at add/checkout; these just add up) ------------
    @property
    def live_items(self):
        return [i for i in self.items if counts_in_total(i.status)]

    @property
    def subtotal(self):
        return sum(i.total for i in self.live_items)

    @property
    def total_due(self):
        """What is still to be paid through the gateway: subtotal − discount − wallet."""
        if self.status not in OPEN_VISIT_STATUSES:
            return 0
        return max(self.subtotal - self.discount - self.wallet_applied, 0)

    @property
    def first_start(self):
        starts = [i.start_at for i in self.items if i.status in LIVE_ITEM_STATUSES]
        return min(starts) if starts else None

    @property
    def is_team(self):
        return any(i.is_team for i in self.items)

    @property
    def is_open(self):
        """Items may still be added/removed and a coupon changed (nothing paid yet)."""
        return self.status in OPEN_VISIT_STATUSES

    @property
    def awaits_payment(self):
        """Open with something in it: its page offers the coupon, the wallet and paying."""
        return self.is_open and bool(self.items)

    @property
    def pending_payment(self):
        for p in reversed(self.payments):
            if p.status == PaymentStatus.PENDING and p.kind != WALLET:
                return p
        return None

    @property
    def for_name(self):
        return self.dependent.name if self.dependent_id else self.patient.name

    def __repr__(self):
        return f"<MasterBooking {self.number} {self.status}>"


booking_providers = sa.Table(
    "booking_providers",
    db.metadata,
    sa.Column("booking_id", sa.ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("provider_id", sa.ForeignKey("providers.id"), primary_key=True, index=True),
)


class IndividualBooking(db.Model):
    """One service at one clinic at one time with one provider (or a team)."""

    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint(_in("status", ITEM_STATUSES), name="status_known"),
        sa.CheckConstraint("start_at < end_at", name="start_before_end"),
        sa.CheckConstraint("fee >= 0 AND platform_fee >= 0 AND gst >= 0", name="price_parts"),
        sa.CheckConstraint("total = fee + platform_fee + gst", name="total_adds_up"),
        sa.CheckConstraint(
            "discount_share >= 0 AND discount_share <= total", name="discount_share_range"
        ),
        sa.CheckConstraint("paid_amount = wallet_paid + gateway_paid", name="paid_adds_up"),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= paid_amount", name="refund_range"
        ),
        sa.Index("ix_bookings_start", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    master_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("services.id"))
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    start_at: Mapped[object] = mapped_column(UTCDateTime)
    end_at: Mapped[object] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(12), default=BookingStatus.SCHEDULED, index=True)
    fee: Mapped[int] = mapped_column(sa.BigInteger)
    platform_fee: Mapped[int] = mapped_column(sa.BigInteger)
    gst: Mapped[int] = mapped_column(sa.BigInteger)
    total: Mapped[int] = mapped_column(sa.BigInteger)
    taxable: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # GST's taxable value
    fee_taxed: Mapped[bool] = mapped_column(default=False)  # F itself was in the taxable value
    discount_share: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    paid_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    wallet_paid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    gateway_paid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    referral_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id"))
    meet_link: Mapped[str | None] = mapped_column(sa.String(2048))
    # The policy version it was priced under: its refunds and reschedule fees use that
    # version's tiers, whatever changed since (None: before any version existed).
    policy_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("policy_versions.id"))
    # The invoice line as issued (``booking.invoices.issue_lines`` at the visit's
    # confirmation; None before): the clinic's GSTIN and name then, the line's description
    # (service — providers) and the tax split, kept whatever the clinic, the service or a
    # provider becomes later (docs/reports.md).
    invoice_gstin: Mapped[str | None] = mapped_column(sa.String(15))
    invoice_clinic_name: Mapped[str | None] = mapped_column(sa.String(120))
    invoice_description: Mapped[str | None] = mapped_column(sa.Text)
    cgst: Mapped[int | None] = mapped_column(sa.BigInteger)
    sgst: Mapped[int | None] = mapped_column(sa.BigInteger)
    igst: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[object | None] = mapped_column(UTCDateTime, index=True)  # dashboard

    visit = relationship("MasterBooking", back_populates="items")
    service = relationship("Service")
    clinic = relationship("Clinic")
    providers = relationship(
        "Provider", secondary=booking_providers, order_by="Provider.display_name", lazy="selectin"
    )
    referral = relationship("IndividualBooking", remote_side=[id])
    claims = relationship("SlotClaim", back_populates="booking", cascade="all, delete-orphan")

    @property
    def master(self):
        return self.visit

    @property
    def is_team(self):
        return len(self.providers) > 1

    def team_besides(self, *provider_ids):
        """The item's providers other than ``provider_ids``: a team appointment's others,
        as one of them reads it (none for a provider's own appointment)."""
        return [p for p in self.providers if p.id not in provider_ids]

    @property
    def minutes(self):
        """Its own length: the service's when booked (a service lengthened since leaves
        it as it was: ``reschedule.check_slot``), so pages say this, not the service's."""
        return int((self.end_at - self.start_at).total_seconds() // 60)

    @property
    def refundable(self):
        """Paise of the paid amount not refunded yet: the most any further refund can be."""
        return self.paid_amount - self.refunded_amount

    @property
    def patient_id(self):
        return self.visit.patient_id

    @property
    def dependent_id(self):
        return self.visit.dependent_id

    @property
    def is_live(self):
        return self.status in LIVE_ITEM_STATUSES

    @property
    def meet_link_open(self):
        """Its meeting link may still be set: an online service, the appointment live
        (``visits.set_meet_link`` refuses anything else, each with its own message)."""
        return self.service.is_online and self.is_live

    @property
    def needs_meet_link(self):
        return self.meet_link_open and not self.meet_link

    def owner_ids(self):
        return {self.visit.patient_id} | {p.user_id for p in self.providers}

    def __repr__(self):
        return f"<IndividualBooking {self.id} {self.status} {self.start_at:%Y-%m-%d %H:%M}>"


class SlotClaim(db.Model):
    """One subject (a provider, the patient, or a dependent) busy for one booking's time.

    PostgreSQL refuses two overlapping live claims of the same subject with an exclusion
    constraint (btree_gist); SQLite, one process only, serialises claim writes behind a
    process-wide lock and checks inside the transaction (``portal.booking.claims``).

    A claim with ``reschedule_id`` holds the new time of a move whose fee is being paid
    online; one booking's own claims never conflict with each other (old time and held
    new time may overlap)."""

    __tablename__ = "slot_claims"
    __table_args__ = (
        sa.CheckConstraint("start_at < end_at", name="start_before_end"),
        sa.Index("ix_slot_claims_subject_live", "subject", "start_at", "end_at"),
        ExcludeConstraint(
            (sa.column("subject"), "="),
            (sa.column("booking_id"), "<>"),
            (
                sa.func.tstzrange(
                    sa.column("start_at"), sa.column("end_at"), sa.literal_column("'[)'")
                ),
                "&&",
            ),
            using="gist",
            where=sa.text("live"),
            name="ex_slot_claims_no_overlap",
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(sa.String(32))
    start_at: Mapped[object] = mapped_column(UTCDateTime)
    end_at: Mapped[object] = mapped_column(UTCDateTime)
    live: Mapped[bool] = mapped_column(default=True)
    reschedule_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("reschedules.id", ondelete="CASCADE"), index=True
    )

    booking = relationship("IndividualBooking", back_populates="claims")


# PostgreSQL: a live claim of a provider on leave then, or inactive, or outside their weekly
# hours at the booking's clinic, is refused as a lost race (23P01), after the provider's
# advisory lock, which a leave, a deactivation and a change of weekly hours take before
# reading the bookings in their way (catalog.time_lock): such a change and a hold at once
# never both win, and a hold runs no statement more (the trigger's reads happen inside its
# INSERT). The hours are read as catalog.slots reads them: the claim inside the windows
# (touching ones joined) of its start's local day in the clinic's zone. The booking's
# clinic too: a claim at an inactive clinic, or outside its opening hours that day, is
# refused the same way (a clinic's deactivation or change of hours takes the lock of every
# provider with hours or bookings ahead there: catalog.clinics). And the booking's service:
# a claim of an inactive service, or of a provider no longer offering it, is refused the
# same way (its deactivation, or a provider taken from it, takes the lock of every provider
# offering it: catalog.service_changes). The migration svcoffer0001 writes the same
# (clinic0open1 the function without the service, wkhours00001 without the clinic,
# tm1e4a5e0001 without the hours).
PROVIDER_PRESENT_DDL = (
    """
CREATE OR REPLACE FUNCTION slot_claims_provider_present() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pid bigint := substr(NEW.subject, 10)::bigint;
    claim_clinic bigint;
    clinic_zone text;
    clinic_open boolean;
    service_offered boolean;
    local_day date;
    reached timestamptz := NEW.start_at;
    window_end timestamptz;
BEGIN
    -- Re-entrant (a hold took it already); its wait makes the reads below see a leave, a
    -- deactivation or a change of hours that committed meanwhile (a fresh snapshot per
    -- statement).
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.subject, 0));
    IF EXISTS (SELECT 1 FROM providers WHERE id = pid AND NOT active)
        OR EXISTS (
            SELECT 1 FROM leaves
            WHERE provider_id = pid AND starts_at < NEW.end_at AND ends_at > NEW.start_at
        )
    THEN
        RAISE EXCEPTION 'provider % is on leave or inactive then', pid
            USING ERRCODE = 'exclusion_violation';
    END IF;
    SELECT b.clinic_id, c.timezone, c.active, s.active AND EXISTS (
            SELECT 1 FROM provider_services ps
            WHERE ps.provider_id = pid AND ps.service_id = b.service_id
        )
    INTO claim_clinic, clinic_zone, clinic_open, service_offered
    FROM bookings b JOIN clinics c ON c.id = b.clinic_id JOIN services s ON s.id = b.service_id
    WHERE b.id = NEW.booking_id;
    -- The service active and still the provider's (its deactivation, or the provider taken
    -- from it, takes the lock of every provider offering it first).
    IF NOT service_offered THEN
        RAISE EXCEPTION 'service inactive or not offered by provider % then', pid
            USING ERRCODE = 'exclusion_violation';
    END IF;
    local_day := (NEW.start_at AT TIME ZONE clinic_zone)::date;
    -- The clinic active and open for the whole claim that day (a clinic's change takes the
    -- lock of every provider with hours or bookings there first).
    IF NOT clinic_open OR NOT EXISTS (
        SELECT 1 FROM clinic_hours h
        WHERE h.clinic_id = claim_clinic
            AND h.weekday = extract(isodow FROM local_day)::int - 1
            AND (local_day + h.opens) AT TIME ZONE clinic_zone <= NEW.start_at
            AND (local_day + h.closes) AT TIME ZONE clinic_zone >= NEW.end_at
    )
    THEN
        RAISE EXCEPTION 'clinic % is closed then', claim_clinic
            USING ERRCODE = 'exclusion_violation';
    END IF;
    -- From the claim's start, window after touching window, until its end is reached.
    LOOP
        SELECT max((local_day + a.end_time) AT TIME ZONE clinic_zone) INTO window_end
        FROM availability a
        WHERE a.provider_id = pid AND a.clinic_id = claim_clinic
            AND a.weekday = extract(isodow FROM local_day)::int - 1
            AND (local_day + a.start_time) AT TIME ZONE clinic_zone <= reached
            AND (local_day + a.end_time) AT TIME ZONE clinic_zone > reached;
        EXIT WHEN window_end IS NULL OR window_end >= NEW.end_at;
        reached := window_end;
    END LOOP;
    IF window_end IS NULL THEN
        RAISE EXCEPTION 'provider % does not work then', pid
            USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER tg_slot_claims_provider_present BEFORE INSERT ON slot_claims
FOR EACH ROW WHEN (NEW.live AND NEW.subject LIKE 'provider:%')
EXECUTE FUNCTION slot_claims_provider_present()
""",
    """
CREATE TRIGGER tg_slot_claims_provider_present_again
BEFORE UPDATE OF live, subject, start_at, end_at ON slot_claims
FOR EACH ROW WHEN (
    NEW.live AND NEW.subject LIKE 'provider:%' AND (
        NOT OLD.live OR NEW.subject <> OLD.subject
        OR NEW.start_at <> OLD.start_at OR NEW.end_at <> OLD.end_at
    )
)
EXECUTE FUNCTION slot_claims_provider_present()
""",
)
after_create_on_postgresql(SlotClaim.__table__, PROVIDER_PRESENT_DDL)


# PostgreSQL: the person's live claim (one per hold; a revival making it live again too) is
# refused for an account closed by then, as the check ``slot_claims_account_open``
# (SQLSTATE 23514; claims.AccountClosed), and for one an administrator deactivated by then,
# as ``slot_claims_account_active`` (claims.AccountDeactivated). The account is the visit's
# patient (a dependent books under their guardian's). Its row is read FOR KEY SHARE: a
# closure and a patient's deactivation take it FOR UPDATE before they read what is still
# booked (privacy.closure, booking.deactivation), so of the two at once the second waits
# for the first's commit and sees it, and a hold runs no statement more (the trigger's
# reads happen inside its INSERT). The migrations acc10sed0002 and deact0claim1 write the
# same.
ACCOUNT_OPEN_DDL = (
    """
CREATE OR REPLACE FUNCTION slot_claims_account_open() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    account bigint;
    closed timestamptz;
    is_active boolean;
BEGIN
    SELECT v.patient_id INTO account
    FROM bookings b JOIN visits v ON v.id = b.master_id
    WHERE b.id = NEW.booking_id;
    -- Waits for a closure or a deactivation that has the row; then reads its commit.
    SELECT u.closed_at, u.active INTO closed, is_active
    FROM users u WHERE u.id = account FOR KEY SHARE;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'account % is closed', account
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slot_claims_account_open';
    END IF;
    IF NOT is_active THEN
        RAISE EXCEPTION 'account % is deactivated', account
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slot_claims_account_active';
    END IF;
    RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER tg_slot_claims_account_open BEFORE INSERT ON slot_claims
FOR EACH ROW WHEN (NEW.live AND NEW.subject NOT LIKE 'provider:%')
EXECUTE FUNCTION slot_claims_account_open()
""",
    """
CREATE TRIGGER tg_slot_claims_account_open_again BEFORE UPDATE OF live ON slot_claims
FOR EACH ROW WHEN (NEW.live AND NOT OLD.live AND NEW.subject NOT LIKE 'provider:%')
EXECUTE FUNCTION slot_claims_account_open()
""",
)
after_create_on_postgresql(SlotClaim.__table__, ACCOUNT_OPEN_DDL)


# A provider's subject is also the name of the lock on their time (catalog.time_lock).
provider_subject = time_lock.provider_subject


def patient_subject(patient_id, dependent_id=None):
    """The person being seen: the dependent when there is one, else the account holder."""
    if dependent_id:
        return f"dependent:{int(dependent_id)}"
    return f"patient:{int(patient_id)}"


class Coupon(db.Model):
    """A discount code. ``value`` is basis points (PERCENT) or paise (FLAT). Codes are kept
    upper-case, so lookups are case-insensitive and the unique constraint is too."""

    __tablename__ = "coupons"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", COUPON_KINDS), name="kind_known"),
        sa.CheckConstraint("value > 0", name="value_positive"),
        sa.CheckConstraint("kind <> 'PERCENT' OR value <= 10000", name="percent_range"),
        sa.CheckConstraint("used_count >= 0", name="used_non_negative"),
        sa.CheckConstraint("max_uses IS NULL OR used_count <= max_uses", name="within_max_uses"),
        sa.CheckConstraint("code = upper(code)", name="code_upper"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    kind: Mapped[str] = mapped_column(sa.String(8))
    value: Mapped[int] = mapped_column(sa.BigInteger)
    valid_from: Mapped[object | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[object | None] = mapped_column(UTCDateTime)
    max_uses: Mapped[int | None] = mapped_column()
    max_uses_per_patient: Mapped[int | None] = mapped_column()
    used_count: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # Raised by every admin change: an edit form carries the one it was filled from, and a
    # save over a newer one is refused (``coupons.update_coupon``'s ``base_version``).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    def owner_ids(self):
        return set()  # admins only

    def __repr__(self):
        return f"<Coupon {self.code}>"


class CouponRedemption(db.Model):
    """A use of a coupon by a visit: taken at checkout (counted against the limits),
    given back if the visit expires unpaid, kept once the visit is confirmed."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(sa.ForeignKey("coupons.id"), index=True)
    visit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), unique=True
    )
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    discount: Mapped[int] = mapped_column(sa.BigInteger)
    confirmed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    coupon = relationship("Coupon")


class InvoiceCounter(db.Model):
    """The last invoice number used in each financial year ("2026-27")."""

    __tablename__ = "invoice_counters"

    financial_year: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class FeeDocumentCounter(db.Model):
    """The last reschedule-fee document number used in each financial year ("2026-27")."""

    __tablename__ = "fee_document_counters"

    financial_year: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Reschedule(db.Model):
    """One move of an individual booking (or an attempt awaiting its fee)."""

    __tablename__ = "reschedules"
    __table_args__ = (
        sa.CheckConstraint(_in("status", RescheduleStatus), name="status_known"),
        sa.CheckConstraint(_in("pay_with", PAY_WITH), name="pay_with_known"),
        sa.CheckConstraint(
            "penalty >= 0 AND platform_fee >= 0 AND gst >= 0 AND commission >= 0",
            name="amounts_non_negative",
        ),
        sa.CheckConstraint("total = penalty + platform_fee + gst", name="total_adds_up"),
        sa.CheckConstraint("new_start < new_end AND old_start < old_end", name="slots_valid"),
        sa.Index("ix_reschedules_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    old_start: Mapped[object] = mapped_column(UTCDateTime)
    old_end: Mapped[object] = mapped_column(UTCDateTime)
    new_start: Mapped[object] = mapped_column(UTCDateTime)
    new_end: Mapped[object] = mapped_column(UTCDateTime)
    notice_minutes: Mapped[int] = mapped_column()
    penalty_bps: Mapped[int] = mapped_column()
    penalty: Mapped[int] = mapped_column(sa.BigInteger)
    platform_fee: Mapped[int] = mapped_column(sa.BigInteger)
    gst: Mapped[int] = mapped_column(sa.BigInteger)
    total: Mapped[int] = mapped_column(sa.BigInteger)
    commission: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # The fee's tax document as issued (``booking.invoices.issue_fee`` when the fee is
    # charged; None before): its number ("RF/26-27/000001"; earlier "RF/2026-27/000001",
    # and one issued before the series "<invoice>/R<id>", each kept as issued), the
    # clinic's GSTIN and name then, its booking's line description (service — providers)
    # then and the tax split, kept whatever the clinic, the service or a provider becomes
    # later (docs/reports.md).
    document_no: Mapped[str | None] = mapped_column(sa.String(32), unique=True, index=True)
    invoice_gstin: Mapped[str | None] = mapped_column(sa.String(15))
    invoice_clinic_name: Mapped[str | None] = mapped_column(sa.String(120))
    invoice_description: Mapped[str | None] = mapped_column(sa.Text)
    cgst: Mapped[int | None] = mapped_column(sa.BigInteger)
    sgst: Mapped[int | None] = mapped_column(sa.BigInteger)
    igst: Mapped[int | None] = mapped_column(sa.BigInteger)
    overridden: Mapped[bool] = mapped_column(default=False)
    pay_with: Mapped[str] = mapped_column(sa.String(8), default=PAY_NONE)
    status: Mapped[str] = mapped_column(
        sa.String(16), default=RescheduleStatus.PENDING_PAYMENT, index=True
    )
    razorpay_order_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    razorpay_payment_id: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    receipt_no: Mapped[str | None] = mapped_column(sa.String(64))  # paid at the desk
    expires_at: Mapped[object | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[object | None] = mapped_column(UTCDateTime)

    booking = relationship("IndividualBooking")
    visit = relationship("MasterBooking")

    def owner_ids(self):
        return {self.visit.patient_id}


class FeeCapture(db.Model):
    """A reschedule fee payment Razorpay captured that its reschedule does not record: the
    wrong amount, a second payment, or one after the request ended once the row recorded
    another (``reschedule_payment._unapplied``), or any paid after the patient closed the
    account (``reschedule_payment._refund_closed``). The money went to the patient's
    wallet (the account closed: refunded to its source); this row is the record of the
    payment (as a visit's capture that confirmed nothing has its own ``payments`` row),
    read by the transactions console, the dashboard's money in, reconciliation and the
    settlements' overdue check, dated by ``captured_at``."""

    __tablename__ = "reschedule_fee_captures"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reschedule_id: Mapped[int] = mapped_column(
        sa.ForeignKey("reschedules.id", ondelete="CASCADE"), index=True
    )
    razorpay_payment_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    # indexed: the dashboard's money in and reconciliation read a window of captures
    captured_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, index=True)

    reschedule = relationship("Reschedule")

    def owner_ids(self):
        return self.reschedule.owner_ids()
