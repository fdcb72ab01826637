"""Account use cases: registration, sign-in, password links, dependents, staff invitations.

Conventions (the same for every function here):

- Plain arguments in, plain model objects out; the acting user is passed explicitly.
- **Each service commits its own transaction** (``db.session.commit()`` at the end) and
  writes its audit row inside it, so the row commits with the change. Mail is queued in the
  same transaction (``queue_mail``) and leaves only after the commit.
  ``invite_user`` alone also takes ``commit=False`` so a caller (e.g. creating a provider
  with a profile) can run it inside a larger transaction and commit once.
- A broken rule raises ``ValidationError`` whose ``errors`` maps a form field name to a
  message (``FORM`` for a message about the whole form); views put them beside the fields.
  An object the actor may not see raises ``NotFound``; an action the actor's role may not
  take raises ``PermissionDenied``. Nothing is committed when a service raises, except the
  audit row of a failed sign-in (written on purpose).

Rules (the product's defaults):

- Email: a valid address, stored lower-case, unique across all users.
- Mobile (India): "+91 98123 45678", "919812345678", "09812345678" and "9812345678" are all
  "+919812345678": ten digits starting with 6-9; spaces, dashes, dots and brackets ignored.
- Password: at least 10 characters (``PASSWORD_MIN_LENGTH``), at most 128; nothing else is
  imposed (length beats composition rules, NIST SP 800-63B).
- Password links (reset, invitation) are signed with SECRET_KEY and salted with the user's
  current password hash, so they stop working once used (the hash changes) and expire after
  ``PASSWORD_RESET_MAX_AGE`` (default 1 hour) or ``INVITE_MAX_AGE`` (default 7 days) seconds.
- Asking for a reset link says the same thing whether or not the address has an account.
"""
import re
from datetime import date
from urllib.parse import urlsplit

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.accounts.models import ADMIN, PATIENT, PROVIDER, Dependent, User
from portal.accounts.passwords import hash_password, verify_password
from portal.audit.service import record
from portal.db import utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.notify.mail import queue_mail

FORM = "__all__"  # key of a message about the whole form rather than one field

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
NAME_MAX_LENGTH = 120
STAFF_ROLES = (PROVIDER, ADMIN)
RELATIONSHIPS = (
    ("child", "Child"),
    ("spouse", "Spouse"),
    ("parent", "Parent"),
    ("sibling", "Sibling"),
    ("other", "Other"),
)

BAD_LOGIN = "Email or password is incorrect."
INACTIVE_LOGIN = "This account has been deactivated. Please contact the clinic."
BAD_LINK = "This link has expired or has already been used. Please ask for a new one."
EMAIL_TAKEN = "An account with this email already exists."
PHONE_MESSAGE = "Enter a 10-digit Indian mobile number, e.g. 98123 45678."
PASSWORD_MESSAGE = f"Use at least {PASSWORD_MIN_LENGTH} characters."


class AccountError(Exception):
    """Base of the errors these services raise."""


class ValidationError(AccountError):
    def __init__(self, errors):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class NotFound(AccountError):
    pass


class PermissionDenied(AccountError):
    pass


# --- rules (pure functions) ----------------------------------------------------------

_PHONE_NOISE = re.compile(r"[\s\-().]")
_MOBILE = re.compile(r"[6-9][0-9]{9}")


def normalise_phone(raw):
    """An Indian mobile number as "+91XXXXXXXXXX"; ValueError when it is not one."""
    digits = _PHONE_NOISE.sub("", raw or "")
    if digits.startswith("+91"):
        digits = digits[3:]
    elif digits.startswith("0091"):
        digits = digits[4:]
    elif len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    if not _MOBILE.fullmatch(digits):
        raise ValueError(PHONE_MESSAGE)
    return "+91" + digits


def normalise_email(raw):
    """A valid address, lower-cased (addresses are compared case-insensitively)."""
    raw = (raw or "").strip()
    if not raw:
        raise ValueError("Enter your email address.")
    try:
        email = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("Enter a valid email address.") from None
    if len(email) > 254:
        raise ValueError("Enter a valid email address.")
    return email.lower()


def normalise_name(raw, what="your name"):
    name = " ".join((raw or "").split())
    if not name:
        raise ValueError(f"Enter {what}.")
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"Use at most {NAME_MAX_LENGTH} characters.")
    return name


def check_password(password):
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(PASSWORD_MESSAGE)
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"Use at most {PASSWORD_MAX_LENGTH} characters.")
    return password


def check_date_of_birth(value, today=None):
    if value is None:
        return None
    today = today or utcnow().astimezone(CLINIC_TZ).date()
    if value > today:
        raise ValueError("Date of birth cannot be in the future.")
    if value < date(today.year - 130, 1, 1):
        raise ValueError("Enter a real date of birth.")
    return value


def _collect(**checks):
    """Run ``field=(function, value)`` checks; return the cleaned values or raise them all."""
    cleaned, errors = {}, {}
    for name, (check, value) in checks.items():
        try:
            cleaned[name] = check(value)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _email_taken(email, except_id=None):
    query = sa.select(User.id).where(sa.func.lower(User.email) == email)
    if except_id is not None:
        query = query.where(User.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


def _commit_unique_email():
    """Commit; a concurrent registration of the same address loses with a clear message."""
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise ValidationError({"email": EMAIL_TAKEN}) from None


# --- registration and sign-in ----------------------------------------------------------

def register_patient(name, email, phone, password):
    """A patient signs up. Returns the new (active) user."""
    data = _collect(name=(normalise_name, name), email=(normalise_email, email),
                    phone=(normalise_phone, phone), password=(check_password, password))
    if _email_taken(data["email"]):
        raise ValidationError({"email": EMAIL_TAKEN})
    user = User(name=data["name"], email=data["email"], phone=data["phone"], role=PATIENT,
                password_hash=hash_password(data["password"]), active=True)
    db.session.add(user)
    db.session.flush()
    record(user, "user.register", "user", user.id,
           after={"email": user.email, "role": user.role})
    _commit_unique_email()
    return user


_dummy_hashes = {}


def _dummy_hash():
    """A hash to verify against when there is no user, so a wrong address costs as much
    time as a wrong password and timing does not tell which addresses have accounts."""
    params = repr(sorted((current_app.config.get("ARGON2_PARAMS") or {}).items()))
    if params not in _dummy_hashes:
        _dummy_hashes[params] = hash_password("not a real password, only for timing")
    return _dummy_hashes[params]


def authenticate(email, password):
    """The user with this email and password, or ValidationError({FORM: ...}).

    Records last_login_at and a 'login' audit row; a failure is audited as 'login_failed'
    (committed even though this raises)."""
    email = (email or "").strip().lower()
    user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email)) \
        if email else None
    has_hash = user is not None and user.password_hash is not None
    matches = verify_password(user.password_hash if has_hash else _dummy_hash(), password or "")
    if not (has_hash and matches):
        record(user, "login_failed", "user", user.id if user else None,
               after={"email": email[:254]})
        db.session.commit()
        raise ValidationError({FORM: BAD_LOGIN})
    if not user.active:
        record(user, "login_failed", "user", user.id, after={"reason": "inactive"})
        db.session.commit()
        raise ValidationError({FORM: INACTIVE_LOGIN})
    user.last_login_at = utcnow()
    record(user, "login", "user", user.id)
    db.session.commit()
    return user


# --- password links: reset and invitation ---------------------------------------------

RESET, INVITE = "reset", "invite"
_MAX_AGE = {RESET: ("PASSWORD_RESET_MAX_AGE", 3600), INVITE: ("INVITE_MAX_AGE", 7 * 24 * 3600)}


def _serializer(purpose, user):
    # The salt holds the current hash: setting a password changes it and kills the link.
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"],
                                  salt=f"password-{purpose}:{user.password_hash or ''}")


def make_password_token(user, purpose=RESET):
    return _serializer(purpose, user).dumps({"uid": user.id, "email": user.email})


def user_for_token(token, purpose=RESET):
    """The active user a password link belongs to, or ValidationError({FORM: BAD_LINK})."""
    # The signature can only be checked once we know whose hash salts it.
    _ok, payload = URLSafeTimedSerializer(current_app.config["SECRET_KEY"]).loads_unsafe(token)
    uid = payload.get("uid") if isinstance(payload, dict) else None
    user = db.session.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        raise ValidationError({FORM: BAD_LINK})
    key, default = _MAX_AGE[purpose]
    try:
        data = _serializer(purpose, user).loads(
            token, max_age=current_app.config.get(key, default))
    except (SignatureExpired, BadSignature):
        raise ValidationError({FORM: BAD_LINK}) from None
    if data.get("email") != user.email:  # the address changed since the link was sent
        raise ValidationError({FORM: BAD_LINK})
    return user


def _external_url(endpoint, **values):
    """An absolute link for mail, built from PUBLIC_URL (no request needed)."""
    public = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(public.netloc, script_name=public.path or "/",
                                       url_scheme=public.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)


def request_password_reset(email):
    """Mail a reset link if the address belongs to an active account; silent otherwise."""
    try:
        email = normalise_email(email)
    except ValueError:
        return
    user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email))
    if user is None or not user.active:
        return
    link = _external_url("auth.reset_password", token=make_password_token(user, RESET))
    minutes = current_app.config.get(*_MAX_AGE[RESET]) // 60
    queue_mail(user.email, "Reset your Clinic Portal password",
               f"Hello {user.name},\n\n"
               f"Someone (hopefully you) asked to reset the password of your Clinic Portal "
               f"account. Choose a new password here (the link works once, for {minutes} "
               f"minutes):\n\n{link}\n\n"
               "If you did not ask for this, ignore this mail; your password stays as it is.\n")
    record(user, "password_reset_requested", "user", user.id)
    db.session.commit()


def _set_password_from_token(token, new_password, purpose, action):
    user = user_for_token(token, purpose)
    data = _collect(password=(check_password, new_password))
    user.password_hash = hash_password(data["password"])
    record(user, action, "user", user.id)
    db.session.commit()
    return user


def reset_password(token, new_password):
    """Set a new password through a reset link. Returns the user."""
    return _set_password_from_token(token, new_password, RESET, "password_reset")


def accept_invite(token, new_password):
    """An invited provider or admin chooses a password. Returns the user."""
    return _set_password_from_token(token, new_password, INVITE, "invite_accepted")


# --- staff ----------------------------------------------------------------------------

def _require_admin(actor):
    if actor is None or getattr(actor, "role", None) != ADMIN:
        raise PermissionDenied("Only administrators can do this.")


def invite_user(email, name, role, invited_by, phone=None, *, commit=True):
    """Create a provider or admin account without a password and mail them a link to set
    one. Admin only. Returns the user (the caller may attach a provider profile to it;
    pass ``commit=False`` to do that in the same transaction and commit yourself)."""
    _require_admin(invited_by)
    checks = {"email": (normalise_email, email), "name": (normalise_name, name)}
    if phone:
        checks["phone"] = (normalise_phone, phone)
    try:
        data = _collect(**checks)
    except ValidationError as exc:
        errors = exc.errors
    else:
        errors = {}
    if role not in STAFF_ROLES:
        errors["role"] = "Invite a provider or an administrator."
    if not errors and _email_taken(data["email"]):
        errors["email"] = EMAIL_TAKEN
    if errors:
        raise ValidationError(errors)
    user = User(email=data["email"], name=data["name"], phone=data.get("phone"), role=role,
                password_hash=None, active=True)
    db.session.add(user)
    db.session.flush()
    link = _external_url("auth.accept_invite", token=make_password_token(user, INVITE))
    days = current_app.config.get(*_MAX_AGE[INVITE]) // 86400
    queue_mail(user.email, "You are invited to Clinic Portal",
               f"Hello {user.name},\n\n{invited_by.name} has invited you to Clinic Portal as "
               f"{'a provider' if role == PROVIDER else 'an administrator'}. Choose your "
               f"password here (the link works once, for {days} days):\n\n{link}\n")
    record(invited_by, "user.invite", "user", user.id,
           after={"email": user.email, "role": role})
    if commit:
        _commit_unique_email()
    return user


def _set_active(admin, user_id, active, action):
    _require_admin(admin)
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("user")
    if user.id == admin.id and not active:
        raise ValidationError({FORM: "You cannot deactivate your own account."})
    if user.active != active:
        record(admin, action, "user", user.id, before={"active": user.active},
               after={"active": active})
        user.active = active
    db.session.commit()
    return user


def deactivate_user(admin, user_id):
    """Stop a user from signing in (their data stays). Admin only."""
    return _set_active(admin, user_id, False, "user.deactivate")


def reactivate_user(admin, user_id):
    return _set_active(admin, user_id, True, "user.reactivate")


# --- dependents -------------------------------------------------------------------------

def _dependent_data(name, relationship, date_of_birth):
    def check_relationship(value):
        if value not in dict(RELATIONSHIPS):
            raise ValueError("Choose how this person is related to you.")
        return value
    return _collect(name=(lambda v: normalise_name(v, "their name"), name),
                    relationship=(check_relationship, relationship),
                    date_of_birth=(check_date_of_birth, date_of_birth))


def _snapshot(dependent):
    dob = dependent.date_of_birth
    return {"name": dependent.name, "relationship": dependent.relationship_,
            "date_of_birth": dob.isoformat() if dob else None}


def _owned_dependent(actor, dependent_id):
    """The dependent if the actor is its guardian (or an admin); NotFound otherwise, so
    another family's dependents are not even confirmed to exist."""
    dependent = db.session.get(Dependent, dependent_id)
    if dependent is None or (dependent.guardian_id != actor.id and actor.role != ADMIN):
        raise NotFound("dependent")
    return dependent


def add_dependent(guardian, name, relationship, date_of_birth, *, actor=None):
    """Add someone the patient books for. ``actor`` is an admin acting for the patient."""
    if guardian.role != PATIENT:
        raise PermissionDenied("Only patients have dependents.")
    actor = actor or guardian
    if actor.id != guardian.id:
        _require_admin(actor)
    data = _dependent_data(name, relationship, date_of_birth)
    dependent = Dependent(guardian_id=guardian.id, name=data["name"],
                          relationship_=data["relationship"],
                          date_of_birth=data["date_of_birth"])
    db.session.add(dependent)
    db.session.flush()
    record(actor, "dependent.add", "dependent", dependent.id, after=_snapshot(dependent))
    db.session.commit()
    return dependent


def update_dependent(actor, dependent_id, name, relationship, date_of_birth):
    dependent = _owned_dependent(actor, dependent_id)
    data = _dependent_data(name, relationship, date_of_birth)
    before = _snapshot(dependent)
    dependent.name = data["name"]
    dependent.relationship_ = data["relationship"]
    dependent.date_of_birth = data["date_of_birth"]
    record(actor, "dependent.update", "dependent", dependent.id, before=before,
           after=_snapshot(dependent))
    db.session.commit()
    return dependent


def remove_dependent(actor, dependent_id):
    dependent = _owned_dependent(actor, dependent_id)
    record(actor, "dependent.remove", "dependent", dependent.id, before=_snapshot(dependent))
    db.session.delete(dependent)
    db.session.commit()
