"""Coupons: the rules for applying one to a visit, taking a use of it at checkout (so the
limits hold under concurrency), giving the use back when the visit expires (and taking it
again if a late payment revives it), and the admin use cases (create, update, list)."""

import re
from functools import cache

import sqlalchemy as sa

from portal.accounts.models import ADMIN
from portal.accounts.service import ValidationError
from portal.audit.service import record
from portal.booking.errors import BookingError, NotFound, PermissionDenied
from portal.booking.models import COUPON_KINDS, PERCENT, Coupon, CouponRedemption
from portal.catalog import time_lock
from portal.catalog.checks import NotFound as CatalogNotFound
from portal.catalog.checks import bump_versions, lock_for_edit
from portal.db import unit_of_work, utcnow
from portal.extensions import db
from portal.i18n import N_

MSG_UNKNOWN = N_("Enter a valid coupon code")
MSG_INACTIVE = N_("This coupon is no longer active")
MSG_NOT_YET = N_("This coupon is not valid yet")
MSG_EXPIRED = N_("This coupon has expired")
MSG_USED_UP = N_("This coupon has reached its usage limit")
MSG_PER_PATIENT = N_("You have already used this coupon the maximum number of times")
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")


def normalise_code(code):
    return "".join((code or "").split()).upper()


def find(code):
    return db.session.scalar(sa.select(Coupon).where(Coupon.code == normalise_code(code)))


def _patient_uses(coupon_id, patient_id, exclude_visit_id=None):
    query = (
        sa.select(sa.func.count())
        .select_from(CouponRedemption)
        .where(CouponRedemption.coupon_id == coupon_id, CouponRedemption.patient_id == patient_id)
    )
    if exclude_visit_id is not None:
        query = query.where(CouponRedemption.visit_id != exclude_visit_id)
    return db.session.scalar(query)


def check(coupon, patient_id, now=None, visit_id=None, own_use=0):
    """The message why ``coupon`` cannot be used now by this patient, or None.
    ``own_use``: uses in ``used_count`` that the visit asking holds itself (1 while its
    checkout holds one, which a new checkout gives back first)."""
    now = now or utcnow()
    if coupon is None:
        return MSG_UNKNOWN
    if not coupon.active:
        return MSG_INACTIVE
    if coupon.valid_from and now < coupon.valid_from:
        return MSG_NOT_YET
    if coupon.valid_until and now >= coupon.valid_until:
        return MSG_EXPIRED
    if coupon.max_uses is not None and coupon.used_count - own_use >= coupon.max_uses:
        return MSG_USED_UP
    if (
        coupon.max_uses_per_patient is not None
        and _patient_uses(coupon.id, patient_id, visit_id) >= coupon.max_uses_per_patient
    ):
        return MSG_PER_PATIENT
    return None


def lapsed(visit, now=None):
    """Why the coupon applied to the open ``visit`` would be refused at its next checkout
    (deactivated, expired or not valid yet, used up, the patient's limit reached since it
    was applied), else None (no coupon, or still good). A use the visit's pending checkout
    holds is not counted against it: a new checkout gives that use back first. Read only:
    the visit's page states its price without a lapsed coupon, and the payment detaches
    it (``detach_lapsed``)."""
    coupon = visit.coupon
    if coupon is None:
        return None
    own_use = int(
        coupon.max_uses is not None and coupon.used_count >= coupon.max_uses and has_use(visit)
    )
    return check(coupon, visit.patient_id, now, visit_id=visit.id, own_use=own_use)


def detach_lapsed(visit, actor):
    """At a payment's price fixing (the visit locked, its pending checkout abandoned): a
    coupon that can no longer be used leaves the visit, audited, and the visit is priced
    without it, as its page stated. A use an ended payment link still holds (a link's
    renewal does not abandon a checkout) is given back; none is taken. Returns why it
    left, or None."""
    reason = lapsed(visit)
    if reason is None:
        return None
    give_back(visit)
    before = {"coupon": visit.coupon.code, "discount": visit.discount}
    visit.coupon = None
    visit.discount = 0
    record(actor, "visit.coupon_lapsed", "visit", visit.id, before=before, after={"reason": reason})
    return reason


def take_use(visit, discount, now=None):
    """Count one use against the coupon's limits at checkout. The conditional UPDATE is
    atomic (and locks the coupon row until commit, so the per-patient count after it is
    serialised too). It checks again all the coupon's own rules (active, the validity
    window at ``now``, ``max_uses``): a checkout that read the coupon good may wait on an
    admin's change of it (``update_coupon`` locks the row) and then sees the change; a
    refusal says why, as ``check`` would."""
    now = now or utcnow()
    coupon = visit.coupon
    taken = db.session.execute(
        sa.update(Coupon)
        .where(
            Coupon.id == coupon.id,
            Coupon.active.is_(True),
            sa.or_(Coupon.valid_from.is_(None), Coupon.valid_from <= now),
            sa.or_(Coupon.valid_until.is_(None), Coupon.valid_until > now),
            sa.or_(Coupon.max_uses.is_(None), Coupon.used_count < Coupon.max_uses),
        )
        .values(used_count=Coupon.used_count + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        db.session.refresh(coupon)  # as the change that refused it left it
        reason = check(coupon, visit.patient_id, now, visit_id=visit.id) or MSG_USED_UP
        raise BookingError(reason, field="coupon")
    db.session.refresh(coupon)
    message = check_limits_after_take(coupon, visit)
    if message:
        raise BookingError(message, field="coupon")
    db.session.add(
        CouponRedemption(
            coupon_id=coupon.id, visit_id=visit.id, patient_id=visit.patient_id, discount=discount
        )
    )


def check_limits_after_take(coupon, visit):
    if (
        coupon.max_uses_per_patient is not None
        and _patient_uses(coupon.id, visit.patient_id, visit.id) >= coupon.max_uses_per_patient
    ):
        return MSG_PER_PATIENT
    return None


def give_back(visit):
    """The visit expired or its checkout was abandoned: the use returns to the coupon."""
    redemption = db.session.scalar(
        sa.select(CouponRedemption).where(
            CouponRedemption.visit_id == visit.id, CouponRedemption.confirmed.is_(False)
        )
    )
    if redemption is None:
        return
    db.session.execute(
        sa.update(Coupon)
        .where(Coupon.id == redemption.coupon_id)
        .values(used_count=Coupon.used_count - 1)
        .execution_options(synchronize_session=False)
    )
    # Read again when next asked: the same unit of work judges the coupon after this
    # (``detach_lapsed`` at the desk or a restarted checkout), and a stale count made
    # the use just given back look taken by another ("used up").
    db.session.expire(db.session.get(Coupon, redemption.coupon_id), ["used_count"])
    db.session.delete(redemption)


def retake_use(visit, now=None):
    """A late payment would revive the expired visit: take its coupon use again (the
    expiry gave it back), on the coupon's rules as they stand now, so a revived visit
    never keeps a discount its coupon can no longer give. Returns False when the coupon
    cannot be used (inactive, expired, used up, the patient's limit), with nothing
    taken; True when taken, or when the visit has no coupon or holds its use still."""
    if visit.coupon_id is None or has_use(visit):
        return True
    if check(visit.coupon, visit.patient_id, now, visit_id=visit.id):
        return False
    try:
        with unit_of_work():  # a SAVEPOINT: a limit found after the count undoes it
            take_use(visit, visit.discount, now)
            db.session.flush()
    except BookingError as exc:
        if exc.field != "coupon":
            raise
        db.session.expire(visit.coupon)  # its count as read inside the undone SAVEPOINT
        return False
    return True


def has_use(visit):
    return (
        db.session.scalar(
            sa.select(CouponRedemption.id).where(CouponRedemption.visit_id == visit.id)
        )
        is not None
    )


def confirm_use(visit):
    """The visit is paid: its coupon use counts for good. A use is taken only at the
    checkout of a visit with a coupon and given back whenever the coupon leaves the visit
    (removed, checkout abandoned, hold expired), so a visit without one has none."""
    if visit.coupon_id is None:
        return
    db.session.execute(_confirm_use(), {"of_visit": visit.id})


@cache
def _confirm_use():
    """Built once: every confirmation runs it (building an ORM update and its cache key
    cost more CPU than running it)."""
    return (
        sa.update(CouponRedemption)
        .where(CouponRedemption.visit_id == sa.bindparam("of_visit"))
        .values(confirmed=True)
        .execution_options(synchronize_session=False)
    )


# --- admin use cases ----------------------------------------------------------------------


def _require_admin(actor):
    if getattr(actor, "role", None) != ADMIN:
        raise PermissionDenied("Only administrators can manage coupons.")


def _clean(data, coupon_id=None, used_count=0):
    """``used_count``: the uses an edited coupon has had (read under its row lock), the
    least its ``max_uses`` can be (the table's check would refuse less)."""
    errors = {}
    code = normalise_code(data.get("code"))
    if not CODE_RE.match(code):
        errors["code"] = "Use 3–32 letters, digits, - or _."
    elif db.session.scalar(
        sa.select(Coupon.id).where(Coupon.code == code, Coupon.id != (coupon_id or 0))
    ):
        errors["code"] = "A coupon with this code already exists."
    kind = data.get("kind")
    value = data.get("value")
    if kind not in COUPON_KINDS:
        errors["kind"] = "Choose percent or flat."
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        errors["value"] = "Enter a positive amount."
    elif kind == PERCENT and value > 10_000:
        errors["value"] = "A percentage cannot exceed 100%."
    for name in ("max_uses", "max_uses_per_patient"):
        n = data.get(name)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            errors[name] = "Enter a whole number of at least 1, or leave it empty."
        elif name == "max_uses" and n is not None and n < used_count:
            errors[name] = f"At least the {used_count} uses already made."
    valid_from, valid_until = data.get("valid_from"), data.get("valid_until")
    for name, value_ in (("valid_from", valid_from), ("valid_until", valid_until)):
        if value_ is not None and value_.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if valid_from and valid_until and valid_until <= valid_from:
        errors["valid_until"] = "End after the start."
    if errors:
        raise ValidationError(errors)
    data = dict(data, code=code)
    return data


FIELDS = (
    "code",
    "description",
    "kind",
    "value",
    "valid_from",
    "valid_until",
    "max_uses",
    "max_uses_per_patient",
    "active",
)


def _snapshot(coupon):
    out = {}
    for name in FIELDS:
        value = getattr(coupon, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def create_coupon(
    actor,
    *,
    code,
    kind,
    value,
    description="",
    valid_from=None,
    valid_until=None,
    max_uses=None,
    max_uses_per_patient=None,
    active=True,
):
    """Raises ``ValidationError({field: message})``; value is bps (PERCENT) or paise (FLAT)."""
    _require_admin(actor)
    with unit_of_work():
        data = _clean(
            dict(
                code=code,
                kind=kind,
                value=value,
                description=description or "",
                valid_from=valid_from,
                valid_until=valid_until,
                max_uses=max_uses,
                max_uses_per_patient=max_uses_per_patient,
                active=active,
            )
        )
        coupon = Coupon(**data)
        db.session.add(coupon)
        db.session.flush()
        record(actor, "coupon.create", "coupon", coupon.id, after=_snapshot(coupon))
    return coupon


def update_coupon(actor, coupon_id, *, base_version=None, **changes):
    """Change a coupon (admin only). ``base_version``: the ``version`` the edit form was
    filled from; a coupon changed since (deactivated by another administrator, say) is
    refused with ``StaleEdit`` and nothing is written: the form sends every field, so saving
    it would put back what the other administrator changed."""
    _require_admin(actor)
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown coupon fields: {sorted(unknown)}")
    with time_lock.serialized(), unit_of_work():
        try:
            coupon = lock_for_edit(Coupon, coupon_id, "coupon", base_version)
        except CatalogNotFound:
            raise NotFound("coupon") from None
        before = _snapshot(coupon)
        data = {name: getattr(coupon, name) for name in FIELDS}
        data.update(changes)
        # the row is locked: a use taken meanwhile (take_use's UPDATE) waits, or is counted
        data = _clean(data, coupon_id=coupon.id, used_count=coupon.used_count)
        for name, value in data.items():
            setattr(coupon, name, value)
        after = _snapshot(coupon)
        if after != before:
            bump_versions([coupon])
        record(actor, "coupon.update", "coupon", coupon.id, before=before, after=after)
        db.session.flush()
    return coupon


def list_coupons(active=None):
    query = sa.select(Coupon).order_by(Coupon.created_at.desc(), Coupon.id.desc())
    if active is not None:
        query = query.where(Coupon.active.is_(bool(active)))
    return list(db.session.scalars(query))
