"""A policy's values as people read them: the table of each value's section, label and unit
(the edit form is built from it), a stored value as text, and a version's change in one
line, "Platform fee 5% → 6% from 6 Dec 2026, 12:22 IST", as the approvals queue and
anything else describing a version say it. Below the web layer, so a reader of the
queue's rows (``portal.approvals.sources``) describes a version as its page does."""

from __future__ import annotations

import re
from decimal import Decimal

from portal.domain.policy_data import at_floor, flatten, floor_source
from portal.domain.rates import bps_to_text, format_inr, paise_to_text, percent_text
from portal.domain.timezone import CLINIC_TZ
from portal.policies import queries

# (section, path, label, kind). Kinds: percent, rupees, hours, minutes, seconds, count,
# time, minutes_list, domains, text, gst_mode, schedule.
SPEC = (
    ("Prices", "platform_fee_bps", "Platform fee (% of the fee)", "percent"),
    ("Prices", "gst_bps", "GST rate (%)", "percent"),
    ("Prices", "gst_mode", "GST applies to", "gst_mode"),
    ("Prices", "commission_bps", "Default provider commission (%)", "percent"),
    ("Patient cancels", "patient_cancellation_tiers.0.notice", "Tier 1: notice (hours)", "hours"),
    ("Patient cancels", "patient_cancellation_tiers.0.refund_bps", "Tier 1: refund (%)", "percent"),
    ("Patient cancels", "patient_cancellation_tiers.0.deduction", "Tier 1: less (₹)", "rupees"),
    ("Patient cancels", "patient_cancellation_tiers.1.notice", "Tier 2: notice (hours)", "hours"),
    ("Patient cancels", "patient_cancellation_tiers.1.refund_bps", "Tier 2: refund (%)", "percent"),
    ("Patient cancels", "patient_cancellation_tiers.1.deduction", "Tier 2: less (₹)", "rupees"),
    ("Others cancel", "admin_late_cancellation.refund_bps", "Admin, late: refund (%)", "percent"),
    ("Others cancel", "admin_late_cancellation.deduction", "Admin, late: less (₹)", "rupees"),
    ("Others cancel", "provider_cancellation_refund_bps", "Provider cancels: refund %", "percent"),
    ("Others cancel", "provider_cancellation_penalty", "Provider cancels: penalty (₹)", "rupees"),
    ("Others cancel", "clinic_cancellation_refund_bps", "Clinic cancels: refund (%)", "percent"),
    ("Reschedule", "reschedule_min_notice", "Allowed only with more notice than (hours)", "hours"),
    ("Reschedule", "reschedule_tiers.0.more_than", "Tier 1: more than (hours)", "hours"),
    ("Reschedule", "reschedule_tiers.0.penalty_bps", "Tier 1: penalty (% of fee)", "percent"),
    ("Reschedule", "reschedule_tiers.1.more_than", "Tier 2: more than (hours)", "hours"),
    ("Reschedule", "reschedule_tiers.1.penalty_bps", "Tier 2: penalty (% of fee)", "percent"),
    ("Reschedule", "reschedule_tiers.2.more_than", "Tier 3: more than (hours)", "hours"),
    ("Reschedule", "reschedule_tiers.2.penalty_bps", "Tier 3: penalty (% of fee)", "percent"),
    ("Reschedule", "team_reschedule_extra_bps", "Team appointment: extra (%)", "percent"),
    ("Payouts and TDS", "default_payout_schedule", "Default payout schedule", "schedule"),
    ("Payouts and TDS", "payout_minimum", "Minimum cycle payout (₹)", "rupees"),
    ("Payouts and TDS", "imps_limit", "IMPS up to (₹; NEFT above)", "rupees"),
    ("Payouts and TDS", "payout_max_attempts", "Payout attempts before an alert", "count"),
    ("Payouts and TDS", "tds_rules.0.from_fy", "TDS from financial year", "text"),
    ("Payouts and TDS", "tds_rules.0.rate_bps", "TDS rate (%)", "percent"),
    ("Payouts and TDS", "tds_rules.0.threshold", "TDS threshold per year (₹)", "rupees"),
    ("Payouts and TDS", "tds_rules.0.section", "TDS section", "text"),
    (
        "Payouts and TDS",
        "tds_rules.0.no_pan_rate_bps",
        "TDS rate without a PAN (206AA) (%)",
        "percent",
    ),
    ("Wallet", "adjustment_approval_threshold", "Adjustments above need approval (₹)", "rupees"),
    ("Wallet", "note_min_length", "Shortest audit note (characters)", "count"),
    ("Payments", "payment_failures_for_intervention", "Failed attempts before an alert", "count"),
    ("Payments", "payment_max_attempts", "Payment attempts allowed", "count"),
    ("Payments", "link_max_lifetime", "Payment link lives at most (hours)", "hours"),
    ("Payments", "link_before_start", "Link expires before the start (hours)", "hours"),
    ("Payments", "link_min_lifetime", "Link lives at least (minutes)", "minutes"),
    ("Payments", "attention_window", "Unpaid and starting within (hours)", "hours"),
    ("Reminders and visits", "reminder_offsets", "Reminders before (minutes)", "minutes_list"),
    (
        "Reminders and visits",
        "no_show_grace",
        "No-show / not-completed flag after the end (minutes)",
        "minutes",
    ),
    ("Reminders and visits", "extra_meet_link_domains", "Extra meeting-link hosts", "domains"),
    ("Reconciliation", "reconciliation_run_time", "Daily run (clinic time, HH:MM)", "time"),
    ("Reconciliation", "reconciliation_tolerance", "Timestamps match within (seconds)", "seconds"),
)
LABELS = {path: (label, kind) for _, path, label, kind in SPEC}
SPEC_LAST_TDS = "tds_rules.0.no_pan_rate_bps"  # the form's last field of the newest TDS rule
_EARLIER_TDS = re.compile(r"tds_rules\.([1-9]\d*)\.(\w+)")


def label_of(path):
    """(label, kind) of a value's path: the form's, and for the TDS rules of earlier years
    (``tds_rules.1`` on, which the form does not show) "Earlier TDS rule 1: rate (%)"."""
    if path in LABELS:
        return LABELS[path]
    match = _EARLIER_TDS.fullmatch(path)
    if match and f"tds_rules.0.{match[2]}" in LABELS:
        label, kind = LABELS[f"tds_rules.0.{match[2]}"]
        return f"Earlier TDS rule {match[1]}: {label.removeprefix('TDS ')}", kind
    return path, "text"


# Seconds in one unit of a duration kind.
UNIT_SECONDS = {"hours": 3600, "minutes": 60, "seconds": 1}


TDS_FROM_HINT = (
    "The year this rule starts. A later year adds a rule and the years before keep theirs; "
    "the same or an earlier year replaces the rules from that year on."
)


def tds_rule_text(rule):
    """A TDS rule in a line: "from 2025-26: 10% once the year's gross exceeds ₹50,000
    (section 194J), 20% without a PAN (section 206AA)"."""
    return (
        f"from {rule.from_fy}: {percent_text(rule.rate_bps)}% once the year's gross exceeds "
        f"{format_inr(rule.threshold)} (section {rule.section}), "
        f"{percent_text(rule.no_pan_rate_bps)}% without a PAN (section 206AA)"
    )


def tds_from_hint(policy):
    """The hint beside the form's "TDS from financial year": what a year typed there does,
    and the rules of the earlier years, which the form does not show (it edits the newest,
    ``tds_rules.0``)."""
    earlier = policy.tds_rules[1:]
    if not earlier:
        return TDS_FROM_HINT
    return f"{TDS_FROM_HINT} Earlier years: {'; '.join(map(tds_rule_text, earlier))}."


def to_text(kind, value):
    """A stored value as the form shows it (₹ and % without their signs)."""
    if kind == "percent":
        return bps_to_text(value)
    if kind == "rupees":
        return paise_to_text(value)
    if kind in UNIT_SECONDS:
        return format((Decimal(int(value)) / UNIT_SECONDS[kind]).normalize(), "f")
    if kind == "minutes_list":
        return ", ".join(format((Decimal(int(v)) / 60).normalize(), "f") for v in value)
    if kind == "domains":
        return ", ".join(value)
    return "" if value is None else str(value)


def value_rows(values):
    """[(section, label, text)] of a stored version's values in the form's order, the TDS
    rules of earlier years (not on the form) after the newest rule's rows."""
    flat = flatten(values)
    rows = []
    for section, path, label, _ in SPEC:
        if path in flat:
            rows.append((section, label, shown(path, flat[path])[1]))
        if path == SPEC_LAST_TDS:
            for other, value in flat.items():
                if other.startswith("tds_rules.") and other not in LABELS:
                    rows.append((section, *shown(other, value)))
    return rows


def shown(path, value):
    """(label, text) of a stored value as people read it, by the form's own units; "—"
    when the version before had no such value; one stored under its floor (before the floor
    existed) says what applies: "0 (applied as 10, POLICY.md's floor)", "5 (applied as 15,
    Razorpay's floor)"."""
    label, kind = label_of(path)
    if value is None:
        return label, "—"
    try:
        text = to_text(kind, value)
        applied = at_floor(path, value)
        if applied != value:
            source = floor_source(path)
            text = f"{text} (applied as {to_text(kind, applied)}, {source}'s floor)"
        return label, text
    except (TypeError, ValueError):
        return label, str(value)


def short_label(path):
    """A value's label without its unit, as a sentence names it: "Platform fee"."""
    return label_of(path)[0].split(" (")[0]


def _with_unit(kind, text):
    if text in ("", "—"):
        return text
    return {"percent": f"{text}%", "rupees": f"₹{text}"}.get(kind, text)


def change_summary(version, changes=None):
    """A version in one line: "Platform fee 5% → 6% from 6 Dec 2026, 12:22 IST" (clinic
    time, as every admin page). ``changes``: what it changes, when already read
    (``queries.changes_of``); else read here, one query."""
    parts = []
    if changes is None:
        changes = queries.changes(version)
    for path, (old, new) in changes.items():
        label, kind = short_label(path), label_of(path)[1]
        old_text, new_text = (_with_unit(kind, shown(path, value)[1]) for value in (old, new))
        parts.append(f"{label} {old_text} → {new_text}")
    when = version.effective_from.astimezone(CLINIC_TZ)
    changed = "; ".join(parts) or "No change"
    return f"{changed} from {when.day} {when:%b %Y, %H:%M} IST"
