"""A :class:`~portal.domain.policy.Policy` as plain data, and the rules an edit must obey.

Policy versions are stored as JSON: :func:`to_data` turns a Policy into a dict of ints,
strings and lists (durations in whole seconds, times of day as "HH:MM", money in paise,
rates in basis points) and :func:`from_data` turns it back. :func:`problems` checks a
candidate before anything is built or saved and returns ``{path: message}``, where a path
names one value (``"patient_cancellation_tiers.1.refund_bps"``), so a form can put each
message beside its field. :func:`needs_second_admin` says whether an edit touches money or
a control (then a second administrator must approve it). A value under its floor
(``FLOORS``: POLICY.md's own minimum, stored before the floor existed) is read as the floor.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import re
from datetime import timedelta
from decimal import Decimal

from .policy import (
    GST_MODES,
    LINK_LIFETIME_FLOOR,
    NO_PAN_RATE_FLOOR,
    NOTE_FLOOR,
    PAYOUT_SCHEDULES,
    Policy,
    RefundTier,
    RescheduleTier,
    TdsRule,
)
from .rates import financial_year_bounds, percent_text
from .schedule import offset_key
from .text import N_, Text

__all__ = [
    "CONTROL_FIELDS",
    "FLOORS",
    "FLOOR_SOURCES",
    "MONEY_FIELDS",
    "NOTE_FLOOR",
    "SECOND_ADMIN_FIELDS",
    "at_floor",
    "changed_paths",
    "floor_source",
    "flatten",
    "from_data",
    "needs_second_admin",
    "problems",
    "second_admin_decides",
    "settle_tds_rules",
    "to_data",
    "unflatten",
]

_TIERS = {
    "patient_cancellation_tiers": RefundTier,
    "reschedule_tiers": RescheduleTier,
    "tds_rules": TdsRule,
}
_NESTED = {"admin_late_cancellation": RefundTier}
_DEFAULTS = Policy()

# Fields whose change moves money (prices, refunds, penalties, payouts, tax, approvals of
# money): an edit touching any of them needs a second administrator (SECOND_ADMIN_FIELDS).
MONEY_FIELDS = frozenset(
    {
        "platform_fee_bps",
        "gst_bps",
        "gst_mode",
        "commission_bps",
        "patient_cancellation_tiers",
        "admin_late_cancellation",
        "provider_cancellation_refund_bps",
        "provider_cancellation_penalty",
        "clinic_cancellation_refund_bps",
        "reschedule_min_notice",
        "reschedule_tiers",
        "team_reschedule_extra_bps",
        "payout_minimum",
        "tds_rules",
        "imps_limit",
        "default_payout_schedule",
        "adjustment_approval_threshold",
    }
)
# Controls: what the audit trail must hold (the note asked of every adjustment, refund
# override and policy change) and what reconciliation accepts as a match. They move no
# money themselves, but one administrator loosening them could hide a wrong movement from
# the checks POLICY.md puts around money, so they are decided by two like money (the
# wallet's approval threshold, a control too, is already a money field). The rest only
# decide when someone is told (alerts, attention lists, reminders, retries) or are
# conveniences: one administrator changes those (docs/decisions.md).
CONTROL_FIELDS = frozenset({"note_min_length", "reconciliation_tolerance"})
# The one rule for "a second administrator approves this change" (service.propose, the
# form's hints, the flash after saving).
SECOND_ADMIN_FIELDS = MONEY_FIELDS | CONTROL_FIELDS
# The lowest value a field may hold (stored units), which no version goes below: POLICY.md's
# own rule, or what the gateway accepts (``FLOOR_SOURCES`` says whose, for the pages).
# problems() refuses less; from_data() reads a version stored with less (before the floor
# existed) as the floor, so it still loads and the rule holds.
FLOORS = {
    "note_min_length": NOTE_FLOOR,
    "link_min_lifetime": int(LINK_LIFETIME_FLOOR.total_seconds()),
    # Every TDS rule's (the form edits the newest, ``tds_rules.0``): ``_floor_path``.
    "tds_rules.0.no_pan_rate_bps": NO_PAN_RATE_FLOOR,
}
FLOOR_SOURCES = {
    "note_min_length": "POLICY.md",
    "link_min_lifetime": "Razorpay",
    "tds_rules.0.no_pan_rate_bps": "section 206AA",
}
_EVERY_TDS_RULE = re.compile(r"tds_rules\.\d+\.")

MSG_PERCENT = "Enter a percentage between 0 and 100."
MSG_MONEY = "Enter an amount of ₹0 or more (whole paise)."
MSG_COUNT = "Enter a whole number of at least {minimum}."
MSG_COUNT_MAX = "Enter a whole number of at most {maximum}."
MSG_NOTE_FLOOR = (
    f"POLICY.md asks for audit notes of at least {NOTE_FLOOR} characters: enter {NOTE_FLOOR} "
    "or more."
)
MSG_DURATION = "Enter a duration of 0 or more."
MSG_POSITIVE = "Enter a duration greater than 0."
MSG_TOO_LONG = "Enter a duration of at most {limit}."
MSG_CANCEL_ORDER = (
    "Cancellation tiers must go from the longest notice down: tier {n}'s notice must be "
    "shorter than tier {prev}'s."
)
MSG_CANCEL_REFUND = "A shorter notice cannot refund more: tier {n} refunds more than tier {prev}."
MSG_RESCHEDULE_ORDER = (
    "Reschedule tiers must go from the longest notice down: tier {n}'s notice must be "
    "shorter than tier {prev}'s."
)
MSG_RESCHEDULE_PENALTY = (
    "A shorter notice cannot cost less: tier {n}'s penalty is below tier {prev}'s."
)
MSG_RESCHEDULE_MIN = "The reschedule cut-off cannot be longer than the last tier's notice."
MSG_REMINDERS = "Reminder offsets must be greater than 0."
MSG_REMINDERS_LONG = "A reminder can be sent at most {limit} before the visit."
# In the catalogue: an admin who chose Hindi reads these beside the field (``t``).
MSG_REMINDER_MINUTES = N_(
    "Reminders are set in whole minutes: %(minutes)s is not a whole number of minutes."
)
MSG_REMINDER_TWICE = N_(
    "Two reminders are at the same time (%(minutes)s minutes before the visit): enter each "
    "time once."
)
MSG_LINK = "The shortest link lifetime cannot be longer than the longest."
MSG_LINK_FLOOR = (
    "Razorpay refuses a payment link that expires less than 15 minutes ahead: enter 15 "
    "minutes or more."
)
MSG_FAILURES_OVER_ATTEMPTS = (
    "Failed attempts before an alert cannot be more than the payment attempts allowed ({attempts})."
)
MSG_DOMAIN = "Not a host name: {value}."
MSG_CHOICE = "Choose one of: {choices}."
MSG_FY = "Enter a financial year like 2026-27."
MSG_TIME = "Enter a time of day as HH:MM."
MSG_TIERS_EMPTY = "Keep at least one tier."
MSG_SECTION = "Enter the section (letters and digits, at most 10)."
MSG_FY_TWICE = "Two TDS rules start in FY {fy}: keep one."
MSG_NO_PAN_FLOOR = (
    f"Section 206AA deducts at least {NO_PAN_RATE_FLOOR // 100}% from a payee without a PAN: "
    f"enter {NO_PAN_RATE_FLOOR // 100} or more."
)
MSG_NO_PAN_BELOW_RATE = (
    "The TDS rate without a PAN cannot be below the TDS rate ({rate}%): section 206AA "
    "deducts the higher of the two."
)

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


# --- data <-> Policy ----------------------------------------------------------------------


def _plain(value):
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, _dt.time):
        return value.strftime("%H:%M")
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def to_data(policy: Policy) -> dict:
    """Every field of the policy as JSON-safe data."""
    return _plain(policy)


def _revive(example, value):
    """``value`` (plain data) in the type of ``example`` (a default value)."""
    if isinstance(example, timedelta):
        return timedelta(seconds=int(value))
    if isinstance(example, _dt.time):
        hours, minutes = (int(x) for x in str(value).split(":"))
        return _dt.time(hours, minutes)
    if isinstance(example, tuple):
        if example and isinstance(example[0], timedelta):
            return tuple(timedelta(seconds=int(v)) for v in value)
        return tuple(value)
    return value


def _tier(cls, data: dict):
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in ("notice", "more_than"):
            value = timedelta(seconds=int(value))
        kwargs[f.name] = value
    return cls(**kwargs)


def from_data(data: dict) -> Policy:
    """The Policy these values describe; missing fields keep POLICY.md's defaults (a
    version stored before a field existed); a value under its floor is read as the floor
    (stored before the floor existed: it loads, and the floor applies). Raises
    ``ValueError`` on values the Policy itself refuses; call :func:`problems` first for
    messages."""
    defaults = {f.name: getattr(_DEFAULTS, f.name) for f in dataclasses.fields(Policy)}
    kwargs = {}
    for name, value in data.items():
        if name not in defaults:
            continue  # a field since removed
        value = at_floor(name, value)
        if name == "tds_rules":
            value = [_rule_at_floor(i, t) for i, t in enumerate(value)]
        if name in _TIERS:
            kwargs[name] = tuple(_tier(_TIERS[name], t) for t in value)
        elif name in _NESTED:
            kwargs[name] = _tier(_NESTED[name], value)
        else:
            kwargs[name] = _revive(defaults[name], value)
    return Policy(**kwargs)


# --- flat paths (what a form edits) --------------------------------------------------------


def flatten(data: dict, prefix: str = "") -> dict:
    """``{"a.0.b": value}`` for nested dicts and lists of dicts; plain lists stay whole."""
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{path}.{i}."))
        else:
            out[path] = value
    return out


def unflatten(data: dict, changes: dict) -> dict:
    """A deep copy of ``data`` with the flat ``changes`` applied (unknown paths ignored)."""
    out = copy.deepcopy(data)
    for path, value in changes.items():
        node, parts = out, path.split(".")
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            last = parts[-1]
            if isinstance(node, list):
                node[int(last)] = value
            elif last in node:
                node[last] = value
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return out


def _fy_start(rule) -> int:
    """The year a stored TDS rule starts in (its label's first year); ValueError or
    TypeError when it is malformed (``problems`` says so)."""
    return financial_year_bounds(str(rule.get("from_fy")))[0].year


def settle_tds_rules(before: dict, after: dict) -> dict:
    """``after`` with its TDS rules as an edit means them. The edit form shows the newest
    rule (``tds_rules.0``: a Policy keeps them newest first) as "TDS from financial year X:
    rate, threshold, section", and that is what a change of it says: **from year X on**.
    So the rules of the years before X stay as they were (``before``'s, or ``after``'s own
    other rules where an edit changed those), and the rules starting in X or later are
    replaced by it. Before, entering 2027-28 and 2% changed the only rule, and every year
    before 2027-28 (this one too) fell back to it: a rule from a later year never changes an
    earlier one now. Untouched rules, and malformed ones (``problems`` names them), are
    left as they are."""
    rules = after.get("tds_rules")
    if rules == before.get("tds_rules") or not isinstance(rules, list) or not rules:
        return after
    try:
        head = rules[0]
        start = _fy_start(head)
        earlier: dict[int, dict] = {}
        for rule in [*rules[1:], *(before.get("tds_rules") or [])]:
            if _fy_start(rule) < start:
                earlier.setdefault(_fy_start(rule), rule)
    except (ValueError, TypeError, AttributeError):
        return after
    out = dict(after)
    out["tds_rules"] = [head, *(earlier[year] for year in sorted(earlier, reverse=True))]
    return out


def changed_paths(before: dict, after: dict) -> dict:
    """``{path: (old, new)}`` for every value that differs."""
    a, b = flatten(before), flatten(after)
    return {p: (a.get(p), b.get(p)) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)}


def second_admin_decides(path: str) -> bool:
    """Whether a change of the value at ``path`` waits for a second administrator."""
    return path.split(".")[0] in SECOND_ADMIN_FIELDS


def needs_second_admin(before: dict, after: dict) -> bool:
    """Whether the edit from ``before`` to ``after`` touches money or a control."""
    return any(second_admin_decides(p) for p in changed_paths(before, after))


def _floor_path(path: str) -> str:
    """The ``FLOORS`` key of a value's path: a TDS rule's value by the form's first rule's
    (``tds_rules.1.no_pan_rate_bps`` has the floor of ``tds_rules.0.no_pan_rate_bps``)."""
    return _EVERY_TDS_RULE.sub("tds_rules.0.", path, count=1)


def at_floor(name: str, value):
    """``value`` of the field ``name`` (or path) as applied: its floor when stored below it."""
    floor = FLOORS.get(_floor_path(name))
    if floor is not None and _is_int(value) and value < floor:
        return floor
    return value


def floor_source(path: str) -> str | None:
    """Whose floor the value at ``path`` has ("POLICY.md", "Razorpay", "section 206AA")."""
    return FLOOR_SOURCES.get(_floor_path(path))


def _rule_at_floor(index: int, rule):
    """A stored TDS rule with each value read as applied (``at_floor``)."""
    if not isinstance(rule, dict):
        return rule
    return {key: at_floor(f"tds_rules.{index}.{key}", value) for key, value in rule.items()}


# --- validation ---------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(data: dict) -> dict:
    """Every reason these values cannot be a policy, as ``{path: message}`` (empty: fine).
    Pure: percentages 0..100, money whole non-negative paise, counts (each at most
    ``_COUNT_MAXIMUMS``), durations (each at most ``_LONGEST``), tiers in order, choices
    known, reminders in whole minutes each once, the failed payments before an alert at
    most the attempts allowed."""
    errors: dict[str, str] = {}

    def check(path, value, ok, message):
        if path not in errors and not ok(value):
            errors[path] = message

    for path, value in flatten(data).items():
        leaf = path.rsplit(".", 1)[-1]
        if leaf.endswith("_bps"):
            check(path, value, lambda v: _is_int(v) and 0 <= v <= 10_000, MSG_PERCENT)
        elif leaf in _MONEY_LEAVES:
            check(path, value, lambda v: _is_int(v) and v >= 0, MSG_MONEY)
        elif leaf in _COUNTS:
            minimum = _COUNTS[leaf]
            check(
                path,
                value,
                lambda v, m=minimum: _is_int(v) and v >= m,
                _COUNT_MESSAGES.get(leaf) or MSG_COUNT.format(minimum=minimum),
            )
            maximum = _COUNT_MAXIMUMS.get(leaf)
            if maximum is not None:
                check(
                    path, value, lambda v, m=maximum: v <= m, MSG_COUNT_MAX.format(maximum=maximum)
                )
        elif leaf in _DURATIONS:
            check(path, value, lambda v: _is_int(v) and v >= 0, MSG_DURATION)
        elif leaf in _POSITIVE_DURATIONS:
            check(path, value, lambda v: _is_int(v) and v > 0, MSG_POSITIVE)
            if leaf in _DURATION_FLOORS:
                floor, message = _DURATION_FLOORS[leaf]
                check(path, value, lambda v, f=floor: v >= f, message)
        if leaf in _LONGEST:
            longest = _LONGEST[leaf]
            check(
                path, value, lambda v, m=longest: v <= m, MSG_TOO_LONG.format(limit=_days(longest))
            )
    _check_choices(data, errors)
    _check_cancellation(data, errors)
    _check_reschedule(data, errors)
    _check_other(data, errors)
    return errors


_MONEY_LEAVES = frozenset(
    {
        "deduction",
        "threshold",
        "provider_cancellation_penalty",
        "payout_minimum",
        "imps_limit",
        "adjustment_approval_threshold",
    }
)
_COUNTS = {
    "payout_max_attempts": 1,
    "note_min_length": NOTE_FLOOR,
    "payment_failures_for_intervention": 1,
    "payment_max_attempts": 1,
}
# A minimum that is POLICY.md's rule says so (the others are plain counts).
_COUNT_MESSAGES = {"note_min_length": MSG_NOTE_FLOOR}
# A note longer than this would be asked of every refund override, adjustment and policy
# change (whose reason holds 500 characters): past it, no one could change the policy again.
# More automatic payout attempts than 10 only delays the alert (each waits up to a day
# for its retry, docs/payouts.md); an admin can still retry past the limit. A patient
# retrying a payment more than 20 times is a card being tried, not a payment, and an alert
# after more failures than that tells no one anything (review rv_forms: unbounded, one
# administrator saved 999,999,999 and applied it at once).
_COUNT_MAXIMUMS = {
    "note_min_length": 200,
    "payout_max_attempts": 10,
    "payment_failures_for_intervention": 20,
    "payment_max_attempts": 20,
}
_DURATIONS = frozenset(
    {"notice", "more_than", "reschedule_min_notice", "reconciliation_tolerance", "no_show_grace"}
)
_POSITIVE_DURATIONS = frozenset(
    {"link_max_lifetime", "link_before_start", "link_min_lifetime", "attention_window"}
)


# A duration with a floor (``FLOORS``) and what is said under it.
_DURATION_FLOORS = {"link_min_lifetime": (FLOORS["link_min_lifetime"], MSG_LINK_FLOOR)}


_DAY = 86_400
_YEAR = 365 * _DAY
# The longest each duration may be, in seconds: past a year no notice, link or window means
# anything to a clinic, and a value beyond any timedelta or date (12 digits of hours) would
# fail where it is added to a time, on every page that reads it.
_LONGEST = {
    "notice": _YEAR,
    "more_than": _YEAR,
    "reschedule_min_notice": _YEAR,
    "link_max_lifetime": _YEAR,
    "link_before_start": _YEAR,
    "link_min_lifetime": _YEAR,
    "attention_window": _YEAR,
    "no_show_grace": 7 * _DAY,
    "reconciliation_tolerance": _DAY,
}
LONGEST_REMINDER = 30 * _DAY


def _days(seconds):
    days = seconds // _DAY
    return f"{days} day" if days == 1 else f"{days} days"


def _check_choices(data, errors):
    if data.get("gst_mode") not in GST_MODES:
        errors["gst_mode"] = MSG_CHOICE.format(choices=", ".join(GST_MODES))
    if data.get("default_payout_schedule", "WEEKLY") not in PAYOUT_SCHEDULES:
        errors["default_payout_schedule"] = MSG_CHOICE.format(choices=", ".join(PAYOUT_SCHEDULES))
    run_time = data.get("reconciliation_run_time", "02:00")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(run_time)):
        errors["reconciliation_run_time"] = MSG_TIME
    rules = data.get("tds_rules") or []
    if not rules:
        errors["tds_rules"] = MSG_TIERS_EMPTY
    starts = set()
    for i, rule in enumerate(rules):
        try:
            financial_year_bounds(str(rule.get("from_fy")))
        except (ValueError, TypeError):
            errors[f"tds_rules.{i}.from_fy"] = MSG_FY
        else:
            if rule.get("from_fy") in starts:  # which one would apply?
                errors[f"tds_rules.{i}.from_fy"] = MSG_FY_TWICE.format(fy=rule.get("from_fy"))
            starts.add(rule.get("from_fy"))
        if not re.fullmatch(r"[A-Za-z0-9]{1,10}", str(rule.get("section") or "")):
            errors[f"tds_rules.{i}.section"] = MSG_SECTION
        _check_no_pan_rate(i, rule, errors)
    for domain in data.get("extra_meet_link_domains") or []:
        if not _HOST.match(str(domain)):
            errors["extra_meet_link_domains"] = MSG_DOMAIN.format(value=domain)
            break


def _check_no_pan_rate(i, rule, errors):
    """Section 206AA: a rule's rate without a PAN is at least 20% and at least its own rate
    (the higher of the two applies: one below the rate would say a rate never used). Read
    as ``from_data`` reads it: a rule stored before the setting has the default."""
    path = f"tds_rules.{i}.no_pan_rate_bps"
    no_pan = rule.get("no_pan_rate_bps", NO_PAN_RATE_FLOOR)
    rate = rule.get("rate_bps")
    if path in errors or not _is_int(no_pan):
        return
    if no_pan < NO_PAN_RATE_FLOOR:
        errors[path] = MSG_NO_PAN_FLOOR
    elif _is_int(rate) and f"tds_rules.{i}.rate_bps" not in errors and no_pan < rate:
        errors[path] = MSG_NO_PAN_BELOW_RATE.format(rate=percent_text(rate))


def _ordered(tiers, key, errors, prefix, msg_order, msg_value, value_key, rising):
    """Tiers go from the longest notice down (strictly); the money value must not get
    better for the patient as the notice shrinks."""
    for n in range(1, len(tiers)):
        prev, cur = tiers[n - 1], tiers[n]
        if not (_is_int(prev.get(key)) and _is_int(cur.get(key))):
            continue
        if cur[key] >= prev[key]:
            errors.setdefault(f"{prefix}.{n}.{key}", msg_order.format(n=n + 1, prev=n))
            continue
        a, b = prev.get(value_key), cur.get(value_key)
        if _is_int(a) and _is_int(b) and (b < a if rising else b > a):
            errors.setdefault(f"{prefix}.{n}.{value_key}", msg_value.format(n=n + 1, prev=n))


def _check_cancellation(data, errors):
    tiers = data.get("patient_cancellation_tiers") or []
    if not tiers:
        errors["patient_cancellation_tiers"] = MSG_TIERS_EMPTY
    _ordered(
        tiers,
        "notice",
        errors,
        "patient_cancellation_tiers",
        MSG_CANCEL_ORDER,
        MSG_CANCEL_REFUND,
        "refund_bps",
        rising=False,
    )


def _check_reschedule(data, errors):
    tiers = data.get("reschedule_tiers") or []
    if not tiers:
        errors["reschedule_tiers"] = MSG_TIERS_EMPTY
        return
    _ordered(
        tiers,
        "more_than",
        errors,
        "reschedule_tiers",
        MSG_RESCHEDULE_ORDER,
        MSG_RESCHEDULE_PENALTY,
        "penalty_bps",
        rising=True,
    )
    last = tiers[-1].get("more_than")
    cut_off = data.get("reschedule_min_notice")
    if _is_int(last) and _is_int(cut_off) and cut_off > last:
        errors.setdefault("reschedule_min_notice", MSG_RESCHEDULE_MIN)


def _minutes(seconds):
    """Seconds as minutes, as the form shows them ("120.5")."""
    return format((Decimal(seconds) / 60).quantize(Decimal("0.0001")).normalize(), "f")


def _reminders_problem(offsets):
    """Positive, at most ``LONGEST_REMINDER``, whole minutes, each once. A booking has one
    reminder per key (``schedule.offset_key``, its whole minutes): 2 h and 2 h 30 s were
    both "2h", so one of them was never scheduled; 30 s was a "0h" reminder."""
    if any(not _is_int(o) or o <= 0 for o in offsets):
        return MSG_REMINDERS
    part = next((o for o in offsets if o % 60), None)
    if part is not None:
        return Text(MSG_REMINDER_MINUTES, minutes=_minutes(part))
    if any(o > LONGEST_REMINDER for o in offsets):
        return MSG_REMINDERS_LONG.format(limit=_days(LONGEST_REMINDER))
    keys = [offset_key(timedelta(seconds=o)) for o in offsets]
    twice = next((o for o, key in zip(offsets, keys) if keys.count(key) > 1), None)
    if twice is not None:
        return Text(MSG_REMINDER_TWICE, minutes=_minutes(twice))
    return None


def _check_other(data, errors):
    problem = _reminders_problem(data.get("reminder_offsets") or [])
    if problem is not None:
        errors["reminder_offsets"] = problem
    low, high = data.get("link_min_lifetime"), data.get("link_max_lifetime")
    if _is_int(low) and _is_int(high) and low > high and "link_min_lifetime" not in errors:
        errors["link_min_lifetime"] = MSG_LINK
    _check_attempts(data, errors)


def _check_attempts(data, errors):
    """The failed payments before an alert are at most the attempts a patient may make: a
    threshold above them is never reached (after the last attempt allowed the patient may
    not retry, ``schedule.may_retry_payment``, and ``needs_intervention`` stays False). A
    value missing from an old version is read as ``from_data`` reads it: the default."""
    name = "payment_failures_for_intervention"
    failures = data.get(name, _DEFAULTS.payment_failures_for_intervention)
    attempts = data.get("payment_max_attempts", _DEFAULTS.payment_max_attempts)
    if name in errors or "payment_max_attempts" in errors:
        return
    if _is_int(failures) and _is_int(attempts) and failures > attempts:
        errors[name] = MSG_FAILURES_OVER_ATTEMPTS.format(attempts=attempts)
