"""Account use cases: registration, sign-in, password links, dependents, staff invitations.

Conventions (the same for every function here):

- Plain arguments in, plain model objects out; the acting user is passed explicitly.
- **Each service is one unit of work** (``with unit_of_work():``) and writes its audit row
  inside it, so the row commits with the change. Called inside another use case (e.g.
  creating a provider with a profile calls ``invite_user``) it nests as a savepoint and
  the outer one commits. Mail is the notify capability's: a service says what happened
  (``portal.events.password_reset_requested``, ``user_invited``) and the mail is queued in
  the same transaction, leaving only after the commit.
- Password hashing and checking (argon2, about a second) runs before the unit of work
  that applies the result, never inside it: there it held the account's row, or in the
  embedded mode the process lock every writer takes (docs/security.md).
- A broken rule raises ``ValidationError`` whose ``errors`` maps a form field name to a
  message (``FORM`` for a message about the whole form); views put them beside the fields.
  An object the actor may not see raises ``NotFound``; an action the actor's role may not
  take raises ``PermissionDenied``. Nothing is committed when a service raises, except the
  audit row of a failed sign-in (written on purpose).

Rules (the product's defaults):

- Email: a valid address, stored lower-case, unique across all users.
- Mobile (India): "+91 98123 45678", "919812345678", "09812345678" and "9812345678" are all
  "+919812345678": ten digits starting with 6-9; spaces, dashes, dots and brackets ignored.
- Password: at least 10 characters (``PASSWORD_MIN_LENGTH``), at most 128, not a common
  password (``common_passwords.txt``, also with digits or symbols added) and not built from
  the user's own email or name; no composition rules (NIST SP 800-63B).
- Sessions: every session and remember-me cookie carries the user's ``session_version``;
  logout, a password change or reset and deactivation bump it, ending them all.
- Sign-in: ``LOGIN_LOCKOUT_THRESHOLD`` failures in a row lock the account for
  ``LOGIN_LOCKOUT_SECONDS``, doubling with each further failure (at most
  ``LOGIN_LOCKOUT_MAX_SECONDS``); success resets it. A locked account gets the same answer
  as a wrong password, so the answer never tells whether an account exists. A wrong
  current password in a password change counts the same; the failure that locks the
  account there also ends its sessions.
- Account mails (reset links, "you already have an account") are limited to
  ``PASSWORD_RESET_MAILS_PER_ACCOUNT`` an hour per account.
- Signing up (``sign_up``) with an address that already has an account looks exactly like
  a new sign-up; the owner is mailed instead. (An admin adding a patient is told.)
- Password links (reset, invitation) are signed with SECRET_KEY and salted with the user's
  current password hash, so they stop working once used (the hash changes) and expire after
  ``PASSWORD_RESET_MAX_AGE`` (default 1 hour) or ``INVITE_MAX_AGE`` (default 7 days) seconds.
- Asking for a reset link says the same thing whether or not the address has an account.

Over 400 lines: the sign-in and password-link use cases share their checks; dependents live
in dependents.py."""

import os
import re
import unicodedata
from contextlib import contextmanager
from datetime import date, timedelta
from functools import cache
from typing import NamedTuple

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal import events
from portal.accounts import queries as accounts_queries
from portal.accounts.models import ADMIN, PATIENT, PROVIDER, Dependent, User, email_key
from portal.accounts.passwords import hash_password, needs_rehash, verify_password
from portal.audit.models import AuditEntry
from portal.audit.service import record, redact_personal
from portal.config import public_url_for
from portal.db import unit_of_work, utcnow
from portal.domain.ids import is_digits, parse_id
from portal.domain.names import NAME_NEEDS_LETTER, has_letter
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.i18n import DEFAULT_LANGUAGE, N_, known_language

FORM = "__all__"  # key of a message about the whole form rather than one field

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
NAME_MAX_LENGTH = 120
STAFF_ROLES = (PROVIDER, ADMIN)
RELATIONSHIPS = (
    ("child", N_("Child")),
    ("spouse", N_("Spouse")),
    ("parent", N_("Parent")),
    ("sibling", N_("Sibling")),
    ("other", N_("Other")),
)

# Also the answer for a locked account, so it never says whether the account exists.
BAD_LOGIN = N_(
    "Email or password is incorrect. After several failed attempts sign-in pauses for a "
    "few minutes."
)
INACTIVE_LOGIN = N_("This account has been deactivated. Please contact the clinic.")
BAD_LINK = N_("This link has expired or has already been used. Please ask for a new one.")
EMAIL_TAKEN = N_("An account with this email already exists.")
PHONE_MESSAGE = N_("Enter a 10-digit Indian mobile number, e.g. 98123 45678.")
# The catalogue needs a fixed text: PASSWORD_MIN_LENGTH written out (tests/web/test_i18n.py).
PASSWORD_MESSAGE = N_("Use at least 10 characters.")
COMMON_PASSWORD = N_("This password is too common. Choose one that is harder to guess.")
PERSONAL_PASSWORD = N_("Do not use your email address or name in your password.")
CONTROL_CHARS = N_("Remove control characters (such as NUL) from this field.")
BIDI_CHARS = N_(
    "Remove characters that change the direction of text (such as a right-to-left "
    "override) from this field."
)
# Unicode's bidi embedding, override and isolate controls (LRE, RLE, PDF, LRO, RLO; LRI,
# RLI, FSI, PDI): they reorder what follows them wherever the text is shown (admin pages,
# receipts, CSV exports), so "Asha\u202eoaR" reads as another name. Refused in every text
# field, text areas too: notes and reasons are shown to other people and exported.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# The direction marks (LRM, RLM, ALM) reorder nothing by themselves but can move a name's
# neighbours around it; no one-line field (a name, a code) needs them, while a text area
# keeps them for mixed-script text pasted in. ZWJ and ZWNJ (U+200D, U+200C) are neither:
# they choose how Devanagari conjuncts are drawn, so Hindi names keep them.
BIDI_MARKS = frozenset("\u200e\u200f\u061c")


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
    """An Indian mobile number as "+91XXXXXXXXXX"; ValueError when it is not one. Spaces,
    dashes, brackets and dots go, and the direction characters phone apps wrap a copied
    number in (U+202A…U+202C: ``without_direction``)."""
    digits = _PHONE_NOISE.sub("", without_direction(raw or ""))
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
    """A valid address, lower-cased (addresses are compared case-insensitively), its
    compatibility forms folded (NFKC: a full-width ``ｐriya@example.com`` is
    ``priya@example.com``; email_validator applies NFC only, and the full-width form
    registered a second account). For registration, sign-in, a reset and an invitation
    alike. Letters of another script that look alike (a Cyrillic 'а') are not folded."""
    raw = unicodedata.normalize("NFKC", (raw or "").strip())
    if not raw:
        raise ValueError(N_("Enter your email address."))
    try:
        email = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError(N_("Enter a valid email address.")) from None
    if len(email) > 254:
        raise ValueError(N_("Enter a valid email address."))
    return email.lower()


def normalise_name(raw, what="your name"):
    name = " ".join((raw or "").split())
    if not name:
        raise ValueError(f"Enter {what}.")
    if has_control_chars(name):
        raise ValueError(CONTROL_CHARS)
    if has_bidi_controls(name):
        raise ValueError(BIDI_CHARS)
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"Use at most {NAME_MAX_LENGTH} characters.")
    if not has_letter(name):
        raise ValueError(NAME_NEEDS_LETTER)
    return name


def has_control_chars(text, allow_newlines=False):
    """True when ``text`` holds NUL or another control character (Unicode category Cc);
    tabs and line breaks are allowed where a field is multi-line."""
    allowed = "\t\n\r" if allow_newlines else ""
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text or "")


def without_direction(text):
    """``text`` without its direction controls and marks (``BIDI_CONTROLS``,
    ``BIDI_MARKS``): for what is never shown as typed (a phone number, a search term)."""
    return "".join(ch for ch in text if ch not in _DIRECTION) if text else text


_DIRECTION = BIDI_CONTROLS | BIDI_MARKS


def has_bidi_controls(text, multiline=False):
    """True when ``text`` holds a character that changes the direction of text: an
    embedding, override or isolate control anywhere, and a direction mark too in a
    one-line field (``BIDI_CONTROLS``, ``BIDI_MARKS``; docs/security.md)."""
    refused = BIDI_CONTROLS if multiline else BIDI_CONTROLS | BIDI_MARKS
    return any(ch in refused for ch in text or "")


@cache
def _common_passwords():
    path = os.path.join(os.path.dirname(__file__), "common_passwords.txt")
    with open(path, encoding="utf-8") as lines:
        return frozenset(
            line.strip() for line in lines if line.strip() and not line.startswith("#")
        )


_EDGE_NOISE = re.compile(r"^[^a-z]+|[^a-z]+$")


def is_common_password(password):
    """One of the list, as is or with digits/symbols around it ("Password@2024")."""
    lowered = password.lower()
    common = _common_passwords()
    return lowered in common or _EDGE_NOISE.sub("", lowered) in common


def _personal_parts(email, name):
    """The pieces of a user's own email and name a password must not be built from."""
    parts = set()
    if email:
        local, _, domain = email.lower().partition("@")
        parts.update({email.lower(), local, re.sub(r"[^a-z0-9]", "", local)})
    if name:
        words = name.lower().split()
        parts.update(words)
        parts.add("".join(words))
    return {p for p in parts if len(p) >= 4}


def check_password(password, email=None, name=None):
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(PASSWORD_MESSAGE)
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"Use at most {PASSWORD_MAX_LENGTH} characters.")
    if has_control_chars(password):
        raise ValueError(CONTROL_CHARS)
    if is_common_password(password):
        raise ValueError(COMMON_PASSWORD)
    squeezed = re.sub(r"[^a-z0-9@.]", "", password.lower())
    core = _EDGE_NOISE.sub("", password.lower())
    for part in _personal_parts(email, name):
        # The password is (nearly) just the part: "asha.rao@example.com", "AshaRao2024!".
        if part in (core, squeezed) or (part in squeezed and len(part) * 2 >= len(squeezed)):
            raise ValueError(PERSONAL_PASSWORD)
    return password


def check_date_of_birth(value, today=None):
    if value is None:
        return None
    today = today or utcnow().astimezone(CLINIC_TZ).date()
    if value > today:
        raise ValueError(N_("Date of birth cannot be in the future."))
    if value < date(today.year - 130, 1, 1):
        raise ValueError(N_("Enter a real date of birth."))
    return value


def collect(**checks):
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


def email_taken(email, except_id=None):
    """Whether the (normalised) address has an account, ``except_id``'s aside."""
    query = sa.select(User.id).where(_is_address(email))
    if except_id is not None:
        query = query.where(User.id != except_id)
    return db.session.scalar(query.limit(1)) is not None


@contextmanager
def unique_email():
    """Around a unit of work adding a user: a concurrent registration of the same address
    loses (at flush or commit) with a clear message."""
    try:
        yield
    except sa.exc.IntegrityError:
        raise ValidationError({"email": EMAIL_TAKEN}) from None


# --- registration and sign-in ----------------------------------------------------------


def _create_user(data, *, role, password_hash=None):
    """A new active account from cleaned ``data`` (inside ``unique_email`` and a unit of
    work); ValidationError({"email": EMAIL_TAKEN}) when the address has one."""
    if email_taken(data["email"]):
        raise ValidationError({"email": EMAIL_TAKEN})
    user = User(
        name=data["name"],
        email=data["email"],
        phone=data.get("phone"),
        role=role,
        password_hash=password_hash,
        active=True,
    )
    db.session.add(user)
    db.session.flush()
    return user


def _invite_link(user):
    """(the invitation's set-a-password link, the days it lasts)."""
    link = public_url_for("auth.accept_invite", token=make_password_token(user, INVITE))
    return link, current_app.config.get(*_MAX_AGE[INVITE]) // 86400


def register_patient(name, email, phone, password, language=None):
    """A patient account (signed up, or added by an admin). Returns the new (active) user;
    ValidationError({"email": EMAIL_TAKEN}) when the address has an account (an admin may
    be told; the public sign-up uses ``sign_up`` instead, which does not tell).
    ``language``: the one the visitor was reading the portal in (pages, mail and SMS use
    it from then on, since the account's setting wins over the visitor's cookie); one the
    portal does not speak, or None, is English."""
    data = collect(
        name=(normalise_name, name),
        email=(normalise_email, email),
        phone=(normalise_phone, phone),
        password=(check_password, password),
    )
    # The password must not be the person's own email or name (needs both cleaned first).
    collect(password=(lambda p: check_password(p, data["email"], data["name"]), password))
    # Hashed before looking the address up: a known address must not answer faster.
    password_hash = hash_password(data["password"])
    with unique_email(), unit_of_work():
        user = _create_user(data, role=PATIENT, password_hash=password_hash)
        user.language = known_language(language) or DEFAULT_LANGUAGE
        record(
            user, "user.register", "user", user.id, after={"email": user.email, "role": user.role}
        )
    return user


def sign_up(name, email, phone, password, language=None):
    """A visitor registers as a patient (in ``language``, the one they were reading).
    Returns the new user, or None when the address already has an account: then nothing
    is created and its owner is mailed instead, so the visitor's answer is the same either
    way (sign-up does not reveal who has an account). Other broken rules raise
    ValidationError as ``register_patient`` does."""
    try:
        return register_patient(name, email, phone, password, language=language)
    except ValidationError as exc:
        if exc.errors != {"email": EMAIL_TAKEN}:
            raise
    _tell_owner_of_registration(normalise_email(email), email)
    return None


def _tell_owner_of_registration(email, typed=None):
    """Someone registered an address that has an account: mail its owner (within the
    per-account mail limit), say nothing to the visitor. Not an inactive account: the
    mail says to sign in or reset the password, and neither works for it; an inactive
    account is sent nothing, as a reset request for it sends nothing (docs/security.md)."""
    with unit_of_work():
        # Locked as a reset request locks it: sign-ups at the same moment count in turn.
        user = _account_of(email, lock=True, typed=typed)
        if user is None or not user.active or not _may_mail(user):
            return
        link = public_url_for("auth.forgot_password")
        events.registration_for_existing_account.send("accounts", user_id=user.id, reset_link=link)
        record(None, ACCOUNT_MAIL_ACTION, "user", user.id, after={"kind": "registration"})


_dummy_hashes = {}


def _dummy_hash():
    """A hash to verify against when there is no user, so a wrong address costs as much
    time as a wrong password and timing does not tell which addresses have accounts."""
    params = repr(sorted((current_app.config.get("ARGON2_PARAMS") or {}).items()))
    if params not in _dummy_hashes:
        _dummy_hashes[params] = hash_password("not a real password, only for timing")
    return _dummy_hashes[params]


def _lockout_seconds(failures):
    """How long the account stays locked after ``failures`` failures in a row (0: not)."""
    config = current_app.config
    threshold = config.get("LOGIN_LOCKOUT_THRESHOLD", 5)
    if failures < threshold:
        return 0
    first = config.get("LOGIN_LOCKOUT_SECONDS", 60)
    longest = config.get("LOGIN_LOCKOUT_MAX_SECONDS", 3600)
    # Capped exponent: the doubling stops long before the number could overflow.
    return min(longest, first * 2 ** min(failures - threshold, 32))


def _is_locked(user, now):
    return user.locked_until is not None and user.locked_until > now


def _count_failure(user, now):
    """One more wrong password for the account (sign-in, or the current password of a
    password change): past ``LOGIN_LOCKOUT_THRESHOLD`` in a row it is locked. Returns the
    seconds it is now locked for (0: not locked)."""
    user.failed_logins = (user.failed_logins or 0) + 1
    seconds = _lockout_seconds(user.failed_logins)
    if seconds:
        user.locked_until = now + timedelta(seconds=seconds)
        record(None, "login_locked", "user", user.id, after={"seconds": seconds})
    return seconds


def _as_stored_before(typed):
    """The address as registration stored it before compatibility forms were folded
    (email_validator's form, lower-cased), or None."""
    try:
        return validate_email((typed or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _is_address(email, typed=None):
    """The condition for the account of ``email`` (``normalise_email``'s): its folded key,
    or, for a twin stored before the rule beside its folded form (no key), the address as
    stored, as ``typed`` gives it (docs/decisions.md)."""
    as_stored = _as_stored_before(typed) or email
    return sa.or_(User.email_key == email_key(email), sa.func.lower(User.email) == as_stored)


def _account_of(email, lock=False, typed=None):
    """The account of a normalised address (``typed``: as entered, for a twin stored before
    the rule), or None: the one stored exactly so first (a twin signs in as it was stored),
    else the one of its folded key. ``lock``: FOR UPDATE and read afresh (the same row read
    unlocked before keeps its values otherwise)."""
    exact = sa.func.lower(User.email) == (_as_stored_before(typed) or email)
    statement = (
        sa.select(User)
        .where(_is_address(email, typed))
        .order_by(sa.case((exact, 0), else_=1), User.id)
        .limit(1)
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return db.session.scalar(statement)


def authenticate(email, password):
    """The user with this email and password, or ValidationError({FORM: ...}).

    Records last_login_at and a 'login' audit row; a failure is audited as 'login_failed'
    (its unit of work is kept, then the error raised) and counts toward the account's
    lockout. A locked account is refused with the wrong-password answer, even for the right
    password, without checking or counting it.

    The password is checked (argon2, about a second) before the unit of work, against the
    hash read unlocked: on SQLite a unit of work holds the process-wide lock, on
    PostgreSQL this one the account's row, and every other writer would wait behind the
    check. The unit of work reads the row again, locked, and applies the result only if
    the hash it was checked against is still the account's; if it changed meanwhile (a
    reset, a password change) the answer is the wrong-password one, not counted: the
    guess was never checked against the current password (docs/security.md)."""
    typed = email
    try:
        # As registration stored it (email_validator's form: NFC, an IDN domain in
        # Unicode, lower-cased; compatibility forms folded): an address registered as
        # typed signs in as typed, and in any compatibility form of it.
        address = normalise_email(email)
    except ValueError:
        address = None  # no address: nothing looked up, the dummy hash checked all the same
    lookup = address is not None and not has_control_chars(address)
    email = address if lookup else None
    seen = _account_of(email, typed=typed) if lookup else None
    # A locked account's password is not checked; it and an unknown address check the
    # dummy hash instead, so each answers as slowly as a wrong password.
    checked_hash = (
        seen.password_hash if seen is not None and not _is_locked(seen, utcnow()) else None
    )
    matches = verify_password(checked_hash or _dummy_hash(), password or "")
    rehashed = (
        hash_password(password) if checked_hash and matches and needs_rehash(checked_hash) else None
    )
    refusal = None
    with unit_of_work():
        user = _account_of(email, lock=True, typed=typed) if lookup else None
        now = utcnow()
        if user is not None and _is_locked(user, now):
            record(user, "login_failed", "user", user.id, after={"reason": "locked"})
            refusal = BAD_LOGIN
        elif user is not None and user.password_hash != checked_hash:
            # Checked against a hash the account no longer has (or none: it was locked, or
            # not there, when read).
            record(
                user,
                "login_failed",
                "user",
                user.id,
                after={"reason": "password_changed_meanwhile"},
            )
            refusal = BAD_LOGIN
        elif not (checked_hash and matches):
            record(
                user,
                "login_failed",
                "user",
                user.id if user else None,
                after=_typed_address(email),
            )
            if user is not None:
                _count_failure(user, now)
            refusal = BAD_LOGIN
        elif not user.active:
            record(user, "login_failed", "user", user.id, after={"reason": "inactive"})
            refusal = INACTIVE_LOGIN
        else:
            user.last_login_at = now
            user.failed_logins = 0
            user.locked_until = None
            if rehashed:  # made with older cost parameters: the current ones from now on
                user.password_hash = rehashed
            record(user, "login", "user", user.id)
    if refusal:
        raise ValidationError({FORM: refusal})
    return user


def _typed_address(address):
    """What a failed sign-in's audit row keeps of the e-mail box: the address, or only
    that it was none. Text no address rule accepts is most often a password typed in the
    wrong box (or filled in by the browser), and the append-only log is read by every
    administrator and exported as CSV: neither the text nor its length or a hash of it
    is kept (docs/security.md)."""
    if address is None:
        return {"email": None, "not_an_address": True}
    return {"email": address[:254]}


# --- sessions -------------------------------------------------------------------------


def _session_ids(session_id):
    """(user id, session version) of a session id "<user id>:<session version>", or None
    when malformed (ids from before session versions included: they sign in again)."""
    user_part, sep, version_part = str(session_id or "").partition(":")
    if not sep or not is_digits(user_part) or not is_digits(version_part):
        return None
    if len(user_part) > 18 or len(version_part) > 18:
        return None  # beyond a 64-bit integer: no such row, and no database error
    return int(user_part), int(version_part)


def _in_session(user, version):
    return user is not None and user.active and (user.session_version or 0) == version


@cache
def _user_with(columns):
    """The statement, built once per set of columns: building it (and its cache key) cost
    more than running it, on every signed-in request."""
    return sa.select(User, *columns).where(User.id == sa.bindparam("user_id"))


def session_user(session_id, columns=()):
    """(the active user a session, or remember-me, id belongs to, and ``columns`` read in
    the same statement: scalar subqueries that may refer to the user's row), or (None,
    None): malformed, unknown, deactivated, or opened before the user's sessions were last
    ended."""
    ids = _session_ids(session_id)
    if ids is None:
        return None, None
    row = db.session.execute(_user_with(tuple(columns)), {"user_id": ids[0]}).one_or_none()
    if row is None or not _in_session(row[0], ids[1]):
        return None, None
    return row[0], tuple(row[1:])


def _bump_session_version(user):
    user.session_version = (user.session_version or 0) + 1


def end_sessions(user_id, reason="logout"):
    """End every session and remember-me cookie of the user (logout ends them on every
    device: a copied cookie must not outlive it)."""
    with unit_of_work():
        user = db.session.get(User, user_id)
        if user is None:
            return None
        _bump_session_version(user)
        record(user, "sessions_ended", "user", user.id, after={"reason": reason})
    return user


WRONG_CURRENT_PASSWORD = N_("Your current password is incorrect.")
PASSWORD_CHANGE_PAUSED = N_(
    "Too many wrong passwords were tried for this account. Try again in a few minutes, or "
    "reset your password by email."
)
SIGNED_OUT_AFTER_GUESSES = N_(
    "Too many wrong passwords: for your safety you have been signed out. Sign in again in a "
    "few minutes, or reset your password by email."
)


class AccountLocked(ValidationError):
    """Wrong current passwords locked the account and ended its sessions (this one too)."""

    def __init__(self):
        super().__init__({FORM: SIGNED_OUT_AFTER_GUESSES})


def change_password(user_id, current_password, new_password):
    """A signed-in user changes their password; every session of theirs ends (the caller
    opens a fresh one for the current browser). Returns the user.

    A wrong current password counts toward the account's lockout as a failed sign-in does
    (a stolen session must not become a way to guess it): the failure that locks the
    account also ends its sessions (``AccountLocked``: the owner signs in again, or resets
    the password by email), and a locked account's change is refused without checking the
    password. The failures are kept (the unit of work commits), then the error raised."""
    checked = verify_own_password(user_id, current_password)
    new_hash = None
    if checked.matches:
        # The new password's rules and hash before the unit of work (a broken rule: nothing
        # is written, as before); the rules again inside, cheap, on the row read locked.
        new_hash = hash_password(_new_password(checked.user, new_password))
    with unit_of_work():
        user, refusal = check_own_password(user_id, checked, "password_change_failed")
        if refusal is None:
            _new_password(user, new_password)
            user.password_hash = new_hash
            _bump_session_version(user)
            record(user, "password_changed", "user", user.id)
    if refusal:
        raise refusal
    return user


def _new_password(user, new_password):
    """The new password, checked against the rules and the user's own email and name."""
    return collect(password=(lambda p: check_password(p, user.email, user.name), new_password))[
        "password"
    ]


# --- password links: reset and invitation ---------------------------------------------

RESET, INVITE = "reset", "invite"
_MAX_AGE = {RESET: ("PASSWORD_RESET_MAX_AGE", 3600), INVITE: ("INVITE_MAX_AGE", 7 * 24 * 3600)}


def _serializer(purpose, user):
    # The salt holds the current hash: setting a password changes it and kills the link.
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt=f"password-{purpose}:{user.password_hash or ''}"
    )


def make_password_token(user, purpose=RESET):
    return _serializer(purpose, user).dumps({"uid": user.id, "email": user.email})


def user_for_token(token, purpose=RESET, lock=False):
    """The active user a password link belongs to, or ValidationError({FORM: BAD_LINK}).
    ``lock``: read the user FOR UPDATE (on the way to setting the password), so the same
    link used twice at once is checked in turn: the second sees the new hash (it salts the
    link) and gets BAD_LINK."""
    # The signature can only be checked once we know whose hash salts it.
    _ok, payload = URLSafeTimedSerializer(current_app.config["SECRET_KEY"]).loads_unsafe(token)
    uid = payload.get("uid") if isinstance(payload, dict) else None
    uid = parse_id(uid) if isinstance(uid, int) else None  # unchecked yet: any number
    user = db.session.get(User, uid, with_for_update=lock, populate_existing=lock) if uid else None
    if user is None or not user.active:
        raise ValidationError({FORM: BAD_LINK})
    key, default = _MAX_AGE[purpose]
    try:
        data = _serializer(purpose, user).loads(token, max_age=current_app.config.get(key, default))
    except (SignatureExpired, BadSignature):
        raise ValidationError({FORM: BAD_LINK}) from None
    if data.get("email") != user.email:  # the address changed since the link was sent
        raise ValidationError({FORM: BAD_LINK})
    return user


ACCOUNT_MAIL_ACTION = "account_mail_sent"


def _may_mail(user):
    """Fewer than PASSWORD_RESET_MAILS_PER_ACCOUNT account mails to this user in the last
    hour (reset links and registration notices share the limit: both can be triggered by
    anyone who knows the address)."""
    limit = current_app.config.get("PASSWORD_RESET_MAILS_PER_ACCOUNT", 3)
    sent = db.session.scalar(
        sa.select(sa.func.count(AuditEntry.id)).where(
            AuditEntry.action == ACCOUNT_MAIL_ACTION,
            AuditEntry.object_type == "user",
            AuditEntry.object_id == str(user.id),
            AuditEntry.at > utcnow() - timedelta(hours=1),
        )
    )
    return sent < limit


def request_password_reset(email):
    """Mail a reset link if the address belongs to an active account and it has not had
    too many account mails this hour; silent otherwise."""
    typed = email
    try:
        email = normalise_email(email)
    except ValueError:
        return
    with unit_of_work():
        user = _account_of(email, lock=True, typed=typed)
        if user is None or not user.active:
            return
        if not _may_mail(user):
            record(None, "password_reset_throttled", "user", user.id)
            return
        link = public_url_for("auth.reset_password", token=make_password_token(user, RESET))
        minutes = current_app.config.get(*_MAX_AGE[RESET]) // 60
        events.password_reset_requested.send(
            "accounts", user_id=user.id, link=link, minutes=minutes
        )
        record(user, "password_reset_requested", "user", user.id)
        record(None, ACCOUNT_MAIL_ACTION, "user", user.id, after={"kind": "reset"})


def _set_password_from_token(token, new_password, purpose, action):
    # The link and the password's rules checked, and the password hashed, before the unit
    # of work (argon2 must not hold the lock: ``authenticate``). Inside it the link is
    # checked again with the user read FOR UPDATE: the same link posted twice at once,
    # the second finds the first's new hash (it salts the link) and gets BAD_LINK.
    user = user_for_token(token, purpose)
    new_hash = hash_password(_new_password(user, new_password))
    with unit_of_work():
        user = user_for_token(token, purpose, lock=True)
        _new_password(user, new_password)
        user.password_hash = new_hash
        # Whoever held a session (perhaps the reason for the reset) is signed out.
        _bump_session_version(user)
        user.failed_logins = 0
        user.locked_until = None
        record(user, action, "user", user.id)
    return user


def reset_password(token, new_password):
    """Set a new password through a reset link. Returns the user."""
    return _set_password_from_token(token, new_password, RESET, "password_reset")


def accept_invite(token, new_password):
    """An invited provider or admin chooses a password. Returns the user."""
    return _set_password_from_token(token, new_password, INVITE, "invite_accepted")


def add_patient(admin, name, email, phone):
    """An administrator adds a walk-in or phone patient: an account without a password and
    a welcome mail explaining the booking, with a link (an invitation's, 7 days) to choose
    one. Returns the user; ValidationError({"email": EMAIL_TAKEN}) when the address has an
    account."""
    require_admin(admin)
    data = collect(
        name=(normalise_name, name),
        email=(normalise_email, email),
        phone=(normalise_phone, phone),
    )
    with unique_email(), unit_of_work():
        user = _create_user(data, role=PATIENT)
        link, days = _invite_link(user)
        events.patient_added.send(
            "accounts", user_id=user.id, added_by_id=admin.id, link=link, days=days
        )
        record(admin, "user.add_patient", "user", user.id, after={"email": user.email})
    return user


# --- staff ----------------------------------------------------------------------------


def require_admin(actor):
    if actor is None or getattr(actor, "role", None) != ADMIN:
        raise PermissionDenied("Only administrators can do this.")


# For a caller that would skip the rule (no page shows it).
ADMIN_PAST_THE_RULE = (
    "An administrator is invited, or their account reactivated, through "
    "accounts.admin_access: a second administrator approves it while another is active."
)


def invite_data(email, name, phone=None):
    """A staff invitation's cleaned fields (``normalise_email``, ``normalise_name``, and
    the mobile when given), or ValidationError with every message."""
    checks = {"email": (normalise_email, email), "name": (normalise_name, name)}
    if phone:
        checks["phone"] = (normalise_phone, phone)
    return collect(**checks)


def invite(data, role, *, inviter, actor, facts=None):
    """The invited account (no password) and its mail's link, from cleaned ``data``,
    inside the caller's ``unique_email()`` and unit of work. ``inviter`` is named in the
    mail; ``actor`` writes the audit row (a second administrator approving another's
    invitation: ``accounts.admin_access``), ``facts`` added to it."""
    user = _create_user(data, role=role)
    link, days = _invite_link(user)
    events.user_invited.send(
        "accounts", user_id=user.id, invited_by_id=inviter.id, link=link, days=days
    )
    record(
        actor,
        "user.invite",
        "user",
        user.id,
        after={"email": user.email, "role": role, **(facts or {})},
    )
    return user


def invite_user(email, name, role, invited_by, phone=None):
    """Create a provider account without a password and mail them a link to set one.
    Admin only. Returns the user (a caller's unit of work may attach a provider profile to
    it: this one then nests and the caller's commits both). An administrator is invited
    through ``accounts.admin_access.invite_admin`` (a second administrator approves it
    while another is active): refused here, so no caller can skip the rule."""
    require_admin(invited_by)
    if role == ADMIN:
        raise PermissionDenied(ADMIN_PAST_THE_RULE)
    try:
        data = invite_data(email, name, phone)
    except ValidationError as exc:
        errors = exc.errors
    else:
        errors = {}
    if role not in STAFF_ROLES:
        errors["role"] = "Invite a provider or an administrator."
    if errors:
        raise ValidationError(errors)
    with unique_email(), unit_of_work():
        user = invite(data, role, inviter=invited_by, actor=invited_by)
    return user


# Admin pages are English only: not in the catalogue.
CLOSED_NOT_REACTIVATED = (
    "This account was closed by its owner and its personal data erased: it cannot be "
    "reactivated. They can register again."
)
NOT_ACTIVE_ADMIN = (
    "Your account is no longer an active administrator account, so it cannot change other accounts."
)


def lock_accounts(ids):
    """The accounts of ``ids`` read afresh and locked, in id order, ``FOR NO KEY UPDATE``
    (only ``active`` and the session version change: a row inserted meanwhile that refers
    to an account, an audit row of another edit by the same administrator, is not held
    up): {id: user}. Every use case that changes who may act as an administrator locks the
    accounts it reads this way, so two never wait for each other in a circle."""
    return {
        row.id: row
        for row in db.session.scalars(
            sa.select(User)
            .where(User.id.in_(set(ids)))
            .order_by(User.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    }


def acting_admin(rows, admin):
    """The acting administrator's row of ``rows`` (``lock_accounts``), or
    ValidationError(NOT_ACTIVE_ADMIN) when it is no longer an active administrator."""
    actor = rows.get(admin.id)
    if actor is None or not actor.active or actor.role != ADMIN:
        raise ValidationError({FORM: NOT_ACTIVE_ADMIN})
    return actor


def _set_active(admin, user_id, active, action, *, facts=None, admin_rule_kept=False):
    """Deactivate or reactivate an account. Both accounts (the acting admin's and the
    other) are locked in id order and read afresh (``lock_accounts``), and the actor must
    still be an active administrator: two admins deactivating each other at once, the
    second waits for the first's commit and is then refused, so an active administrator
    always remains (an admin cannot deactivate their own account). A deactivation first
    asks the ``account_deactivating`` receivers (the catalog deactivates a provider's
    profile with their account, refused over bookings ahead). An administrator's account
    is reactivated only through ``accounts.admin_access`` (``admin_rule_kept``), which
    has it approved by a second administrator while another is active."""
    require_admin(admin)
    with unit_of_work():
        ids = {admin.id} | ({user_id} if isinstance(user_id, int) else set())
        rows = lock_accounts(ids)
        actor = acting_admin(rows, admin)
        user = rows.get(user_id)
        if user is None:
            raise NotFound("user")
        if user.id == admin.id and not active:
            raise ValidationError({FORM: N_("You cannot deactivate your own account.")})
        if active and user.closed_at is not None:
            raise ValidationError({FORM: CLOSED_NOT_REACTIVATED})
        if active and user.role == ADMIN and not user.active and not admin_rule_kept:
            raise PermissionDenied(ADMIN_PAST_THE_RULE)
        if user.active != active:
            record(
                admin,
                action,
                "user",
                user.id,
                before={"active": user.active},
                after={"active": active, **(facts or {})},
            )
            if active:
                user.active = True
            else:
                _deactivate(user, actor.id)
    return user


def reactivate(admin, user_id, *, facts=None):
    """``reactivate_user`` for ``accounts.admin_access``, an administrator's account too
    (the rule kept there); ``facts`` go on the audit row."""
    return _set_active(admin, user_id, True, "user.reactivate", facts=facts, admin_rule_kept=True)


def _deactivate(user, actor_id):
    """The one deactivation path (an admin's, a patient closing their account): the
    ``account_deactivating`` receivers first (they may refuse), then the account stops
    signing in and every session and remember-me cookie of it ends now."""
    events.account_deactivating.send("accounts", user_id=user.id, actor_id=actor_id, role=user.role)
    user.active = False
    _bump_session_version(user)


def deactivate_user(admin, user_id):
    """Stop a user from signing in (their data stays). Admin only."""
    return _set_active(admin, user_id, False, "user.deactivate")


def reactivate_user(admin, user_id):
    """Let a deactivated user sign in again. Admin only; an administrator's account is
    reactivated through ``accounts.admin_access.reactivate`` (refused here)."""
    return _set_active(admin, user_id, True, "user.reactivate")


# --- closing one's own account (docs/privacy.md) ---------------------------------------

CLOSE_CONFIRM_MESSAGE = N_("Tick the box to confirm that you want to close your account.")
CLOSED_NAME = "Closed account #{id}"
# A unique address that can never receive mail (RFC 2606's reserved ".invalid"), so the
# person's own address is free to register again.
CLOSED_EMAIL = "closed-{id}@closed.invalid"
CLOSED_DEPENDENT_NAME = "Family member #{id}"


class OwnPasswordCheck(NamedTuple):
    """A signed-in user's current password checked before the unit of work
    (:func:`verify_own_password`): the user as read then (unlocked), the hash it was checked
    against, and whether it matched (None: not checked, the account was locked)."""

    user: object
    password_hash: str | None
    matches: bool | None


def verify_own_password(user_id, current_password):
    """Check the signed-in user's current password (argon2, about a second) before, and
    outside, the unit of work that applies the result (:func:`check_own_password`): inside
    one it would hold the embedded mode's process-wide lock, or the account's row."""
    user = db.session.get(User, user_id)
    if user is None or _is_locked(user, utcnow()):
        return OwnPasswordCheck(user, None, None)
    return OwnPasswordCheck(
        user, user.password_hash, verify_password(user.password_hash, current_password or "")
    )


def check_own_password(user_id, checked, action):
    """(the signed-in user's row, locked FOR UPDATE, or raise NotFound; and a refusal or
    None), from ``checked`` (:func:`verify_own_password`, called before the unit of work).
    A wrong current password counts toward the account's lockout as in a password change,
    the failure that locks it ending its sessions (``AccountLocked``); a locked account is
    refused unchecked. A check made against a hash the account no longer has (changed
    meanwhile) is refused as a wrong password, not counted. Inside the caller's unit of
    work, which must commit (the failures are kept) and then raise the refusal."""
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None or not user.active:
        raise NotFound("user")
    now = utcnow()
    if _is_locked(user, now):
        record(user, action, "user", user.id, after={"reason": "locked"})
        return user, ValidationError({FORM: PASSWORD_CHANGE_PAUSED})
    if checked.matches is None or user.password_hash != checked.password_hash:
        record(user, action, "user", user.id, after={"reason": "password_changed_meanwhile"})
        return user, ValidationError({"current_password": WRONG_CURRENT_PASSWORD})
    if not checked.matches:
        record(user, action, "user", user.id)
        if _count_failure(user, now):
            _bump_session_version(user)
            record(user, "sessions_ended", "user", user.id, after={"reason": "locked"})
            return user, AccountLocked()
        return user, ValidationError({"current_password": WRONG_CURRENT_PASSWORD})
    user.failed_logins = 0
    user.locked_until = None
    return user, None


def close_own_account(user):
    """Erase a patient's personal data and deactivate the account, for good, inside the
    caller's unit of work (``portal.privacy.closure``, which has checked the password and
    that nothing is still owed either way). The row stays: the visits, payments, refunds,
    ledger and audit refer to it by id. Name → "Closed account #<id>", email → a unique
    undeliverable placeholder, phone, password, lockout and remember-me gone; the
    dependents' names and dates of birth erased (rows kept: visits refer to them); then the
    one deactivation path (``_deactivate``: sessions end). The audit rows about the user and
    their dependents lose the name, date of birth, e-mail and phone they held
    (``audit.service.redact_personal``); an audit row records the closure without the
    erased data (how many rows were redacted, not what)."""
    if user.role != PATIENT:
        raise PermissionDenied("Only a patient closes their own account here.")
    now = utcnow()
    user.name = CLOSED_NAME.format(id=user.id)
    user.email = CLOSED_EMAIL.format(id=user.id)
    user.phone = None
    user.password_hash = None
    user.failed_logins = 0
    user.locked_until = None
    user.closed_at = now
    erased = 0
    for dependent in db.session.scalars(
        sa.select(Dependent).where(Dependent.guardian_id == user.id).with_for_update()
    ):
        dependent.name = CLOSED_DEPENDENT_NAME.format(id=dependent.id)
        dependent.date_of_birth = None
        erased += 1
    # The audit rows about them keep what they did and when, not who they are: those of a
    # family member removed before too (the row is gone, the audit rows stay).
    about = [("user", user.id)]
    about += [("dependent", i) for i in accounts_queries.dependent_ids_ever(user.id)]
    audit_redacted = redact_personal(about)
    _deactivate(user, user.id)
    record(
        user,
        "user.closed",
        "user",
        user.id,
        before={"active": True},
        after={
            "active": False,
            "erased": ["name", "email", "phone", "password"],
            "dependents_erased": erased,
            "audit_rows_redacted": audit_redacted,
        },
    )
    return user
