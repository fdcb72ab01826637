"""Why a visit needs an operator, in one place: the rules, their SQL for lists, the flags and
their resolution with a note (audited).

Rules (POLICY.md "Needs attention", the appointments seed):

- a visit-level flag (``MasterBooking.attention``), set by ``lifecycle.needs_attention``: the
  first failed payment attempt (with a HIGH admin alert), an amount mismatch, an expired
  payment link, a late payment kept in the wallet, a reconciliation discrepancy (set by
  reconciliation through the same entry point);
- a per-booking flag row (``attention_flags``): a no-show (confirmed, never started by end
  + 2 h, raised by ``notify.flag_no_shows``), or not completed (started, never marked
  completed by end + the same grace, raised by ``notify.flag_not_completed``: its fee is
  never earned and its visit never closes);
- a condition, not a flag: unpaid with the first live appointment within the attention
  window (24 h). It ends by itself when the visit is paid, cancelled or expires.

An admin resolves a flag from the visit page with a note; the note and who resolved it are
in the audit log (and on the flag row). Completing a booking closes its open
not-completed flag (``close_on_completion``): nothing is left to decide. A no-show flag
stays open after a late start: whether the patient came is still the admin's decision."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from portal.audit.service import record
from portal.booking.access import require_admin
from portal.booking.errors import BookingError, NotFound
from portal.booking.lifecycle import lock_visit
from portal.booking.models import IndividualBooking, MasterBooking
from portal.config import policy
from portal.db import UTCDateTime, insert_ignore, unit_of_work, utcnow
from portal.domain.states import BookingStatus, VisitStatus
from portal.extensions import db

NO_SHOW = "NO_SHOW"
NOT_COMPLETED = "NOT_COMPLETED"
FLAG_KINDS = (NO_SHOW, NOT_COMPLETED)
# The status a booking is left in, past its end + the grace, that each kind is about.
FLAGGED_STATUS = {NO_SHOW: BookingStatus.CONFIRMED, NOT_COMPLETED: BookingStatus.STARTED}
CLOSED_BY_COMPLETION = "Closed: the appointment was marked completed."
PENDING_SOON = "PENDING_SOON"  # the condition's name on the page
NOTE_MAX = 500
MSG_NOTE = "Write a note saying how this was resolved."
# The visit's flag is one column: another one raised after the page was read replaces the
# one shown, and resolving "the flag" would clear a flag nobody saw.
MSG_FLAG_CHANGED = (
    'The flag changed since the page was shown: it is now "{now}", not "{shown}". Nothing '
    "was resolved; read it, then resolve it if your note is about it."
)
MSG_FLAG_GONE = "This visit has no open flag (already resolved?)."


def _in(column, values):
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class AttentionFlag(db.Model):
    """Something about a booking an admin must decide on (a no-show: confirmed, never
    started by end + 2 h; not completed: started, never completed by then). One flag per
    booking and kind; resolved with a note."""

    __tablename__ = "attention_flags"
    __table_args__ = (
        sa.UniqueConstraint("booking_id", "kind", name="uq_attention_flags_booking_kind"),
        sa.CheckConstraint(_in("kind", FLAG_KINDS), name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id", ondelete="CASCADE"))
    visit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[object | None] = mapped_column(UTCDateTime, index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.Text)

    booking = relationship("IndividualBooking")

    def owner_ids(self):
        return set()  # admins only


# --- the rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    kind: str  # an ATTENTION_* reason, a flag kind (NO_SHOW, NOT_COMPLETED) or PENDING_SOON
    flag_id: int | None = None  # the flag row
    booking_id: int | None = None
    resolvable: bool = True  # PENDING_SOON ends by itself


def attention_visit_ids(now, window):
    """SQL: the ids of the visits that need attention, one indexed branch per rule (a
    list filtered by it stays fast over a million visits)."""
    visit = aliased(MasterBooking)
    flagged = sa.select(visit.id).where(visit.attention.is_not(None))
    soon = (
        sa.select(IndividualBooking.master_id)
        .join(visit, visit.id == IndividualBooking.master_id)
        .where(
            IndividualBooking.status == BookingStatus.SCHEDULED,
            IndividualBooking.start_at <= now + window,
            visit.status == VisitStatus.PENDING_PAYMENT,
        )
    )
    flags = sa.select(AttentionFlag.visit_id).where(AttentionFlag.resolved_at.is_(None))
    return sa.union(flagged, soon, flags)


def attention_clause(now=None, window=None):
    """SQL: the visit needs attention (any rule). "Pending soon": its first scheduled
    appointment starts within the window, i.e. any scheduled one does."""
    now = now or utcnow()
    window = window if window is not None else policy().attention_window
    return MasterBooking.id.in_(attention_visit_ids(now, window))


def pending_soon(visit, now=None):
    now = now or utcnow()
    first = visit.first_start
    return (
        visit.status == VisitStatus.PENDING_PAYMENT
        and first is not None
        and first <= now + policy().attention_window
    )


def open_flags_by_visit(visit_ids):
    """Visit id -> its open flag rows (one query for a page of visits)."""
    ids = sorted(set(visit_ids))
    out = {i: [] for i in ids}
    if not ids:
        return out
    rows = db.session.scalars(
        sa.select(AttentionFlag)
        .where(AttentionFlag.visit_id.in_(ids), AttentionFlag.resolved_at.is_(None))
        .order_by(AttentionFlag.id)
    )
    for flag in rows:
        out[flag.visit_id].append(flag)
    return out


def reasons(visit, flags=None, now=None):
    """Every reason ``visit`` needs attention now (empty: it does not). ``flags``: its open
    flag rows when the caller loaded them for a page."""
    if flags is None:
        flags = open_flags_by_visit([visit.id])[visit.id]
    out = []
    if visit.attention:
        out.append(Reason(visit.attention))
    out += [Reason(f.kind, flag_id=f.id, booking_id=f.booking_id) for f in flags]
    if pending_soon(visit, now):
        out.append(Reason(PENDING_SOON, resolvable=False))
    return out


# --- raising and closing a booking's flag -------------------------------------------------


def flag_booking(booking_id, kind, now):
    """Write the booking's ``kind`` flag if the booking is still in the status the kind is
    about; the booking, or None (moved on, or flagged already). In the caller's unit of
    work, the visit locked first as every use case on its items does: a start or a
    completion under way either comes first (nothing is flagged) or waits for this one
    (and a completion then closes the flag)."""
    visit_id = db.session.scalar(
        sa.select(IndividualBooking.master_id).where(IndividualBooking.id == booking_id)
    )
    if visit_id is None or lock_visit(visit_id) is None:
        return None
    booking = db.session.scalar(
        sa.select(IndividualBooking)
        .where(IndividualBooking.id == booking_id)
        .execution_options(populate_existing=True)
    )
    if booking is None or booking.status != FLAGGED_STATUS[kind]:
        return None
    written = insert_ignore(
        AttentionFlag,
        dict(booking_id=booking.id, visit_id=booking.master_id, kind=kind, created_at=now),
        ["booking_id", "kind"],
    )
    return None if written is None else booking


def close_on_completion(actor, booking, now):
    """The booking was just completed (in the caller's unit of work): its open
    not-completed flag is moot, so it is closed, by who completed it, with a fixed note
    (audited). A flag an admin already resolved keeps their note."""
    closed = db.session.scalars(
        sa.update(AttentionFlag)
        .where(
            AttentionFlag.booking_id == booking.id,
            AttentionFlag.kind == NOT_COMPLETED,
            AttentionFlag.resolved_at.is_(None),
        )
        .values(resolved_at=now, resolved_by_id=actor.id, note=CLOSED_BY_COMPLETION)
        .returning(AttentionFlag.id)
    ).all()
    for flag_id in closed:
        record(
            actor,
            "attention.clear",
            "booking",
            booking.id,
            after={"kind": NOT_COMPLETED, "flag_id": flag_id, "note": CLOSED_BY_COMPLETION},
        )
    return closed


# --- resolution --------------------------------------------------------------------------


def clear_visit_reason(actor, visit, reason, note):
    """Clear the visit's flag when it is still ``reason``, in the caller's unit of work with
    the visit locked (audited ``attention.clear``, with ``note``): what raised the flag has
    been dealt with elsewhere (a reconciliation case resolved). A flag raised since for
    another reason is left for an admin. Returns whether it cleared one."""
    if visit is None or visit.attention != reason:
        return False
    _unflag(actor, visit, "attention.clear", note)
    return True


def _unflag(actor, visit, action, note):
    """Take the visit's flag down, the reason and the note in the audit log."""
    reason, visit.attention = visit.attention, None
    record(
        actor,
        action,
        "visit",
        visit.id,
        before={"attention": reason},
        after={"attention": None, "note": note},
    )


def _note(note):
    note = " ".join((note or "").split())
    if not note:
        raise BookingError(MSG_NOTE, field="note")
    return note[:NOTE_MAX]


def _label(kind):
    return kind.replace("_", " ").capitalize()


def resolve_visit_flag(admin, visit_id, note, *, shown=None):
    """Clear the visit-level flag; the reason and the note go to the audit log. ``shown``:
    the flag the page showed (the form sends it); another one raised since (a late
    payment's, say) is refused (``MSG_FLAG_CHANGED``), nothing written. None: not
    checked."""
    require_admin(admin)
    note = _note(note)
    with unit_of_work():
        visit = lock_visit(visit_id)  # two admins resolving at once: one wins, one is told
        if visit is None:
            raise NotFound("visit")
        reason = visit.attention
        if reason is None:
            raise BookingError(MSG_FLAG_GONE, field="note")
        if shown is not None and shown != reason:
            raise BookingError(
                MSG_FLAG_CHANGED.format(now=_label(reason), shown=_label(shown)), field="note"
            )
        _unflag(admin, visit, "attention.resolve", note)
        return visit


def resolve_flag(admin, flag_id, note, *, visit_id=None):
    """Resolve one flag row (a no-show or not-completed decision) with a note."""
    require_admin(admin)
    note = _note(note)
    with unit_of_work():
        query = sa.select(AttentionFlag).where(AttentionFlag.id == flag_id)
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        flag = db.session.scalar(query.execution_options(populate_existing=True))
        if flag is None or (visit_id is not None and flag.visit_id != visit_id):
            raise NotFound("flag")
        if flag.resolved_at is not None:
            raise BookingError("This flag was already resolved.", field="note")
        flag.resolved_at, flag.resolved_by_id, flag.note = utcnow(), admin.id, note
        record(
            admin,
            "attention.resolve",
            "booking",
            flag.booking_id,
            after={"kind": flag.kind, "note": note, "visit_id": flag.visit_id},
        )
        return flag
