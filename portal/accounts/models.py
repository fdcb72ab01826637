import unicodedata

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.db import UTCDateTime, utcnow
from portal.domain.names import name_key
from portal.domain.states import ApprovalStatus
from portal.extensions import db

PATIENT, PROVIDER, ADMIN = "patient", "provider", "admin"
ROLES = (PATIENT, PROVIDER, ADMIN)


def email_key(address):
    """What tells accounts apart: the address folded by NFKC (a compatibility form, such
    as a full-width 'ｐ', is its plain letter) and lower-cased. ``accounts.service``'s
    ``normalise_email`` folds what is typed the same way; this folds what is stored, an
    address stored before that rule included (docs/decisions.md)."""
    return unicodedata.normalize("NFKC", address).lower()


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint("role IN ('patient', 'provider', 'admin')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    # ``email_key(email)``, set with it: one account per folded address (a full-width twin
    # refused at the database too). NULL only for a twin stored before the rule beside its
    # folded form (migration emkey0000001): found by its address as stored.
    email_key: Mapped[str | None] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    phone: Mapped[str | None] = mapped_column(sa.String(16))
    role: Mapped[str] = mapped_column(sa.String(16), index=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # Bumped by logout, a password change or reset and deactivation: a session (or a
    # remember-me cookie) carries the version it was opened with and dies when it differs.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Per-account lockout (whatever address the attempts come from): failures in a row,
    # and until when sign-in is refused after too many.
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[object | None] = mapped_column(UTCDateTime)
    # The language pages, mail and SMS use for this user (portal.i18n.LANGUAGES).
    language: Mapped[str] = mapped_column(sa.String(8), default="en", server_default="en")
    # Set when a patient closed their account (docs/privacy.md): the row stays for the
    # records that refer to it, its personal data erased; never reactivated.
    closed_at: Mapped[object | None] = mapped_column(UTCDateTime)

    dependents = relationship(
        "Dependent",
        back_populates="guardian",
        order_by="Dependent.name",
        cascade="all, delete-orphan",
    )

    @validates("email")
    def _keyed(self, _field, email):
        self.email_key = email_key(email) if email else None
        return email

    def get_id(self):
        # Flask-Login stores this in the session and in the remember-me cookie.
        return f"{self.id}:{self.session_version or 0}"

    @property
    def is_active(self):
        return self.active

    @property
    def is_closed(self):
        return self.closed_at is not None

    @property
    def is_admin(self):
        return self.role == ADMIN

    @property
    def is_patient(self):
        return self.role == PATIENT

    @property
    def is_provider(self):
        return self.role == PROVIDER

    def __repr__(self):
        return f"<User {self.id} {self.role} {self.email}>"


class Dependent(db.Model):
    """Someone a patient books for (a child, a parent); reminders go to the guardian.

    One person is on an account once: the same folded name (``name_key``) and date of
    birth (or, without one, the same name alone) under one guardian is refused by the two
    unique indexes below, so a double "Add" cannot make two records of one child, whom
    the no-overlap rule (per dependent) would then let be booked twice at one moment.
    Twins differ by name. A row left duplicated from before the rule (migration
    depident0001) has no key, so the indexes pass over it; the look-up in
    ``accounts.dependents`` still compares it on every save, so saved again under its name
    it is refused (naming the row it repeats) and renamed it gets its key."""

    __tablename__ = "dependents"
    __table_args__ = (
        sa.Index("uq_dependents_person", "guardian_id", "name_key", "date_of_birth", unique=True),
        sa.Index(
            "uq_dependents_person_undated",
            "guardian_id",
            "name_key",
            unique=True,
            postgresql_where=sa.text("date_of_birth IS NULL"),
            sqlite_where=sa.text("date_of_birth IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # domain.names.name_key(name), set with every name (closure's erasure included).
    name_key: Mapped[str | None] = mapped_column(sa.Text)
    relationship_: Mapped[str] = mapped_column("relationship", sa.String(32))
    date_of_birth: Mapped[object | None] = mapped_column(sa.Date)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    guardian = relationship("User", back_populates="dependents")

    @validates("name")
    def _keyed(self, _attribute, name):
        self.name_key = name_key(name)
        return name

    def owner_ids(self):
        return {self.guardian_id}


# An administrator's request that waits for a second one (``accounts.admin_access``).
INVITE, REACTIVATE = "invite", "reactivate"
_PENDING = f"status = '{ApprovalStatus.PENDING}'"


class AdminAccessRequest(db.Model):
    """An administrator asks to make someone an administrator: invite a new one (the
    address, name and mobile wait here; the account is made only once approved, so a
    refused request leaves no account and no link) or reactivate an administrator's
    account. A different administrator decides; the maker may withdraw it (REJECTED by
    the maker). One waits per address and per account (the partial unique indexes)."""

    __tablename__ = "admin_access_requests"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in ApprovalStatus)),
            name="status_known",
        ),
        sa.CheckConstraint(f"kind IN ('{INVITE}', '{REACTIVATE}')", name="kind_known"),
        sa.CheckConstraint(
            f"kind <> '{INVITE}' OR (email IS NOT NULL AND name IS NOT NULL)", name="invite_whom"
        ),
        sa.CheckConstraint(
            f"kind <> '{REACTIVATE}' OR user_id IS NOT NULL", name="reactivate_whom"
        ),
        # The maker never approves (they may withdraw: REJECTED by themselves).
        sa.CheckConstraint(
            f"status <> '{ApprovalStatus.APPROVED}' OR decided_by_id <> requested_by_id",
            name="second_admin",
        ),
        sa.Index(
            "uq_admin_access_requests_pending_email",
            "email",
            unique=True,
            postgresql_where=sa.text(_PENDING),
            sqlite_where=sa.text(_PENDING),
        ),
        sa.Index(
            "uq_admin_access_requests_pending_user",
            "user_id",
            unique=True,
            postgresql_where=sa.text(_PENDING),
            sqlite_where=sa.text(_PENDING),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    # The account reactivated, or the one an approved invitation made.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # An invitation's person, as ``accounts.service`` cleaned them (None for a reactivation).
    email: Mapped[str | None] = mapped_column(sa.String(254))
    name: Mapped[str | None] = mapped_column(sa.String(120))
    phone: Mapped[str | None] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(10), default=ApprovalStatus.PENDING, index=True)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[object | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    requested_by = relationship("User", foreign_keys=[requested_by_id])
    user = relationship("User", foreign_keys=[user_id])

    @property
    def withdrawn(self):
        """Rejected by its own maker."""
        return self.status == ApprovalStatus.REJECTED and self.decided_by_id == self.requested_by_id
