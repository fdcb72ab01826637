"""The catalog: clinics and their hours, specializations, providers, services, weekly
availability and leave. Rules on these rows live in ``portal.catalog.clinics``,
``providers``, ``services``, ``availability`` and ``slots``; slot maths in
``portal.domain.slots``."""

import re
from datetime import time

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.domain.policy import DEFAULT_POLICY
from portal.extensions import db

DOCTOR, LAB = "DOCTOR", "LAB"
PROVIDER_KINDS = (DOCTOR, LAB)
INSTANT, WEEKLY, MONTHLY = "INSTANT", "WEEKLY", "MONTHLY"
PAYOUT_SCHEDULES = (INSTANT, WEEKLY, MONTHLY)
CONSULTATION, LAB_TEST, FOLLOW_UP = "CONSULTATION", "LAB_TEST", "FOLLOW_UP"
SERVICE_KINDS = (CONSULTATION, LAB_TEST, FOLLOW_UP)
IN_PERSON, ONLINE = "IN_PERSON", "ONLINE"
SERVICE_MODES = (IN_PERSON, ONLINE)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_TIMEZONE = DEFAULT_POLICY.default_timezone
# A new clinic's hours unless given (Mon–Fri 09:00–18:00 local): the policy's clinic
# defaults, written once there (POLICY.md, "Clinics").
DEFAULT_HOURS = {
    d: (DEFAULT_POLICY.default_opening, DEFAULT_POLICY.default_closing)
    for d in DEFAULT_POLICY.default_business_days
}


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# --- GSTIN --------------------------------------------------------------------------------
# 2-digit state code, 10-character PAN (5 letters, 4 digits, 1 letter), entity number
# (1-9 or A-Z), the letter Z, and a checksum character.
GSTIN_RE = re.compile(r"^(\d{2})([A-Z]{5}\d{4}[A-Z])([1-9A-Z])Z([0-9A-Z])$")
_GSTIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def gstin_checksum(first14):
    """The 15th character of a GSTIN (GSTN's mod-36 Luhn variant)."""
    total = 0
    for i, char in enumerate(first14):
        product = _GSTIN_CHARS.index(char) * (2 if i % 2 else 1)
        total += product // 36 + product % 36
    return _GSTIN_CHARS[(36 - total % 36) % 36]


def gstin_error(value, check_checksum=False):
    """None when ``value`` is a well-formed GSTIN, else the message to show. The format is
    strict; the checksum is checked only on request (test GSTINs often fail it)."""
    match = GSTIN_RE.match(value or "")
    if not match:
        return "Enter a 15-character GSTIN, e.g. 29ABCDE1234F1Z5"
    if not 1 <= int(match.group(1)) <= 38 and match.group(1) != "97":
        return "The first two digits of a GSTIN are a state code (01–38)"
    if check_checksum and gstin_checksum(value[:14]) != value[14]:
        return "The GSTIN's check character does not match"
    return None


# --- clinics ------------------------------------------------------------------------------


class Clinic(db.Model):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    city: Mapped[str] = mapped_column(sa.String(80), index=True)
    address: Mapped[str] = mapped_column(sa.Text, default="")
    timezone: Mapped[str] = mapped_column(sa.String(64), default=DEFAULT_TIMEZONE)
    gstin: Mapped[str | None] = mapped_column(sa.String(15))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # As ``Provider.version``: raised by every admin change (its opening hours too).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    hours = relationship(
        "ClinicHours",
        back_populates="clinic",
        order_by="ClinicHours.weekday",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    __table_args__ = (
        sa.UniqueConstraint("name", "city", name="uq_clinics_name_city"),
        sa.CheckConstraint("gstin IS NULL OR length(gstin) = 15", name="gstin_length"),
    )

    # The clinic supplies both its care and the platform fee, so its invoices charge GST
    # on the fee even without a GSTIN: filed under "no GSTIN", on no GST return
    # (docs/reports.md). Bookings are not refused; the admin's pages say so. One rule for
    # a loaded clinic and, as SQL, for counting them (``catalog.queries``).
    @hybrid_property
    def missing_gstin(self) -> bool:
        """Open for bookings without a GSTIN."""
        return bool(self.active and not self.gstin)

    @missing_gstin.inplace.expression
    @classmethod
    def _missing_gstin_sql(cls):
        return sa.and_(cls.active.is_(True), cls.gstin.is_(None))

    def business_hours(self):
        """``{weekday: (opens, closes)}`` in the clinic's local time; a missing day is closed."""
        return {h.weekday: (h.opens, h.closes) for h in self.hours}

    def owner_ids(self):
        return set()  # admins only

    def __repr__(self):
        return f"<Clinic {self.id} {self.name} ({self.city})>"


class ClinicHours(db.Model):
    """One opening window per clinic per weekday (0 = Monday), local wall-clock time."""

    __tablename__ = "clinic_hours"
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "weekday", name="uq_clinic_hours_clinic_id_weekday"),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("opens < closes", name="opens_before_closes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)
    opens: Mapped[time] = mapped_column(sa.Time)
    closes: Mapped[time] = mapped_column(sa.Time)

    clinic = relationship("Clinic", back_populates="hours")


# --- specializations, providers, services --------------------------------------------------


class Specialization(db.Model):
    __tablename__ = "specializations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    # As ``Provider.version``.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    def __repr__(self):
        return f"<Specialization {self.name}>"


provider_clinics = sa.Table(
    "provider_clinics",
    db.metadata,
    sa.Column("provider_id", sa.ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "clinic_id", sa.ForeignKey("clinics.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)
provider_specializations = sa.Table(
    "provider_specializations",
    db.metadata,
    sa.Column("provider_id", sa.ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "specialization_id",
        sa.ForeignKey("specializations.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)
provider_services = sa.Table(
    "provider_services",
    db.metadata,
    sa.Column("provider_id", sa.ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "service_id", sa.ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)


# A PAN is stored only as ``domain.tax_ids.clean_pan`` makes it: five letters, four digits
# and a letter, ASCII upper case, nothing around it. So the payouts' two keys of a payee,
# ``payee_key`` in Python (strips every whitespace) and ``PAYEE_KEY`` in SQL (trims spaces;
# SQLite upper-cases ASCII only), are the value itself: a PAN with a tab or a no-break
# space would be locked as one payee and counted for TDS as another (docs/payouts.md,
# "PAN"). One rule, said in each database's pattern language (code-point ranges in both).
PAN_SHAPE = {
    "postgresql": "pan ~ '^[A-Z]{5}[0-9]{4}[A-Z]$'",
    "sqlite": "pan GLOB '" + "[A-Z]" * 5 + "[0-9]" * 4 + "[A-Z]'",
}


class Provider(db.Model):
    """A doctor or a lab. The login is ``user`` (role provider); one provider per user."""

    __tablename__ = "providers"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", PROVIDER_KINDS), name="kind_known"),
        sa.CheckConstraint(_in("payout_schedule", PAYOUT_SCHEDULES), name="payout_schedule_known"),
        sa.CheckConstraint("commission_bps BETWEEN 0 AND 10000", name="commission_range"),
        *(
            sa.CheckConstraint(shape, name="pan_shape").ddl_if(dialect=dialect)
            for dialect, shape in PAN_SHAPE.items()
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(8), default=DOCTOR)
    display_name: Mapped[str] = mapped_column(sa.String(120), index=True)
    registration_no: Mapped[str | None] = mapped_column(sa.String(40))
    pan: Mapped[str | None] = mapped_column(sa.String(10))  # for the TDS report (194J)
    commission_bps: Mapped[int] = mapped_column(default=500)
    payout_schedule: Mapped[str] = mapped_column(sa.String(8), default=WEEKLY)
    active: Mapped[bool] = mapped_column(default=True, index=True)
    bio: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # Raised by every admin change (its services changed from a service's form too): the
    # edit form carries the one it was filled from; a save over a newer one is refused.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    user = relationship("User")
    clinics = relationship("Clinic", secondary=provider_clinics, order_by="Clinic.name")
    specializations = relationship(
        "Specialization", secondary=provider_specializations, order_by="Specialization.name"
    )
    services = relationship(
        "Service", secondary=provider_services, back_populates="providers", order_by="Service.name"
    )
    availability = relationship(
        "Availability",
        back_populates="provider",
        cascade="all, delete-orphan",
        order_by="(Availability.clinic_id, Availability.weekday, Availability.start_time)",
    )
    leaves = relationship(
        "Leave", back_populates="provider", cascade="all, delete-orphan", order_by="Leave.starts_at"
    )

    @property
    def is_lab(self):
        return self.kind == LAB

    def owner_ids(self):
        return {self.user_id}

    def __repr__(self):
        return f"<Provider {self.id} {self.display_name}>"


class Service(db.Model):
    """Something bookable: a consultation, lab test or follow-up, at a fee in paise."""

    __tablename__ = "services"
    __table_args__ = (
        sa.CheckConstraint(_in("kind", SERVICE_KINDS), name="kind_known"),
        sa.CheckConstraint(_in("mode", SERVICE_MODES), name="mode_known"),
        sa.CheckConstraint("fee_paise > 0", name="fee_positive"),
        sa.CheckConstraint(
            "duration_minutes > 0 AND duration_minutes <= 480", name="duration_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default=CONSULTATION)
    duration_minutes: Mapped[int] = mapped_column(default=30)
    fee_paise: Mapped[int] = mapped_column(sa.BigInteger)
    mode: Mapped[str] = mapped_column(sa.String(16), default=IN_PERSON)
    specialization_id: Mapped[int] = mapped_column(sa.ForeignKey("specializations.id"), index=True)
    taxable: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # As ``Provider.version`` (its providers changed from a provider's form too).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    specialization = relationship("Specialization", lazy="joined")
    providers = relationship("Provider", secondary=provider_services, back_populates="services")

    @property
    def is_online(self):
        return self.mode == ONLINE

    def __repr__(self):
        return f"<Service {self.id} {self.name}>"


# --- availability and leave ---------------------------------------------------------------


class Availability(db.Model):
    """A provider's weekly working window at one clinic (local wall-clock time)."""

    __tablename__ = "availability"
    __table_args__ = (
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("start_time < end_time", name="start_before_end"),
        sa.UniqueConstraint(
            "provider_id", "weekday", "start_time", name="uq_availability_provider_id_weekday_start"
        ),
        sa.Index("ix_availability_clinic_weekday", "clinic_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        sa.ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)
    start_time: Mapped[time] = mapped_column(sa.Time)
    end_time: Mapped[time] = mapped_column(sa.Time)

    provider = relationship("Provider", back_populates="availability")
    clinic = relationship("Clinic")

    # The shape portal.domain.slots reads.
    @property
    def start(self):
        return self.start_time

    @property
    def end(self):
        return self.end_time

    @property
    def weekday_name(self):
        return WEEKDAYS[self.weekday]

    def owner_ids(self):
        return {self.provider.user_id}


class Leave(db.Model):
    """Time a provider is away (leave, a conference, a blocked afternoon), aware UTC."""

    __tablename__ = "leaves"
    __table_args__ = (
        sa.CheckConstraint("starts_at < ends_at", name="starts_before_ends"),
        sa.Index("ix_leaves_provider_period", "provider_id", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id", ondelete="CASCADE"))
    starts_at: Mapped[object] = mapped_column(UTCDateTime)
    ends_at: Mapped[object] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    provider = relationship("Provider", back_populates="leaves")

    def owner_ids(self):
        return {self.provider.user_id}


class CatalogVersion(db.Model):
    """One row: a stamp that changes (to a new random number) in every transaction that
    changes the catalog, so each process can tell whether what it cached is still current
    (``catalog.cache``). Random rather than counted: a rolled-back change leaves behind a
    stamp that no committed state will ever carry again."""

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    stamp: Mapped[int] = mapped_column(sa.BigInteger)
