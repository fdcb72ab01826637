"""The policy as data: a round trip, every validation message, and which edits touch money."""

from datetime import timedelta

import pytest

from portal.domain import policy_data as pd
from portal.domain.policy import DEFAULT_POLICY

DATA = pd.to_data(DEFAULT_POLICY)


def edited(**changes):
    return pd.unflatten(DATA, {k.replace("__", "."): v for k, v in changes.items()})


def test_round_trip_keeps_every_value():
    assert pd.from_data(DATA) == DEFAULT_POLICY
    assert pd.problems(DATA) == {}
    assert DATA["reconciliation_run_time"] == "02:00"
    assert DATA["reconciliation_tolerance"] == 60
    assert DATA["adjustment_approval_threshold"] == 1_000_000  # ₹10,000


def test_a_field_missing_from_an_old_version_keeps_its_default():
    data = dict(DATA)
    del data["default_payout_schedule"]
    assert pd.from_data(data).default_payout_schedule == "WEEKLY"


@pytest.mark.parametrize(
    "changes, path, message",
    [
        ({"gst_bps": 10_001}, "gst_bps", pd.MSG_PERCENT),
        ({"platform_fee_bps": -1}, "platform_fee_bps", pd.MSG_PERCENT),
        (
            {"patient_cancellation_tiers__1__refund_bps": 12_000},
            "patient_cancellation_tiers.1.refund_bps",
            pd.MSG_PERCENT,
        ),
        ({"payout_minimum": -100}, "payout_minimum", pd.MSG_MONEY),
        ({"imps_limit": 10.5}, "imps_limit", pd.MSG_MONEY),
        (
            {"patient_cancellation_tiers__0__deduction": -1},
            "patient_cancellation_tiers.0.deduction",
            pd.MSG_MONEY,
        ),
        ({"payment_max_attempts": 0}, "payment_max_attempts", pd.MSG_COUNT.format(minimum=1)),
        ({"no_show_grace": -60}, "no_show_grace", pd.MSG_DURATION),
        ({"attention_window": 0}, "attention_window", pd.MSG_POSITIVE),
        (
            {"patient_cancellation_tiers__1__notice": 48 * 3600},
            "patient_cancellation_tiers.1.notice",
            pd.MSG_CANCEL_ORDER.format(n=2, prev=1),
        ),
        (
            {
                "patient_cancellation_tiers__1__refund_bps": 10_000,
                "patient_cancellation_tiers__0__refund_bps": 9_000,
            },
            "patient_cancellation_tiers.1.refund_bps",
            pd.MSG_CANCEL_REFUND.format(n=2, prev=1),
        ),
        (
            {"reschedule_tiers__1__more_than": 80 * 3600},
            "reschedule_tiers.1.more_than",
            pd.MSG_RESCHEDULE_ORDER.format(n=2, prev=1),
        ),
        (
            {"reschedule_tiers__2__penalty_bps": 500},
            "reschedule_tiers.2.penalty_bps",
            pd.MSG_RESCHEDULE_PENALTY.format(n=3, prev=2),
        ),
        ({"reschedule_min_notice": 30 * 3600}, "reschedule_min_notice", pd.MSG_RESCHEDULE_MIN),
        (
            {"reminder_offsets": [3600, 3600]},
            "reminder_offsets",
            pd.MSG_REMINDER_TWICE % {"minutes": "60"},
        ),
        ({"reminder_offsets": [0]}, "reminder_offsets", pd.MSG_REMINDERS),
        # A reminder is kept by its whole minute ("2h", "15m"): 120.5 minutes was the "2h"
        # reminder, and beside a 120 one of the two was never scheduled.
        (
            {"reminder_offsets": [86400, 7200, 7230]},
            "reminder_offsets",
            pd.MSG_REMINDER_MINUTES % {"minutes": "120.5"},
        ),
        (
            {"reminder_offsets": [30]},
            "reminder_offsets",
            pd.MSG_REMINDER_MINUTES % {"minutes": "0.5"},
        ),
        (
            {"reminder_offsets": [901]},
            "reminder_offsets",
            pd.MSG_REMINDER_MINUTES % {"minutes": "15.0167"},
        ),
        ({"link_min_lifetime": 2 * 86400}, "link_min_lifetime", pd.MSG_LINK),
        # Razorpay refuses a link expiring under 15 minutes ahead (review r4).
        ({"link_min_lifetime": 14 * 60}, "link_min_lifetime", pd.MSG_LINK_FLOOR),
        ({"link_min_lifetime": 60}, "link_min_lifetime", pd.MSG_LINK_FLOOR),
        # Upper bounds: a duration no clinic means (and no timedelta or date can hold).
        (
            {"link_max_lifetime": 999_999_999_999 * 3600},
            "link_max_lifetime",
            pd.MSG_TOO_LONG.format(limit="365 days"),
        ),
        (
            {"attention_window": 20_000_000_000 * 3600},
            "attention_window",
            pd.MSG_TOO_LONG.format(limit="365 days"),
        ),
        (
            {"patient_cancellation_tiers__0__notice": 400 * 86400},
            "patient_cancellation_tiers.0.notice",
            pd.MSG_TOO_LONG.format(limit="365 days"),
        ),
        ({"no_show_grace": 8 * 86400}, "no_show_grace", pd.MSG_TOO_LONG.format(limit="7 days")),
        (
            {"reconciliation_tolerance": 86401},
            "reconciliation_tolerance",
            pd.MSG_TOO_LONG.format(limit="1 day"),
        ),
        (
            {"reminder_offsets": [3600, 31 * 86400]},
            "reminder_offsets",
            pd.MSG_REMINDERS_LONG.format(limit="30 days"),
        ),
        ({"note_min_length": 201}, "note_min_length", pd.MSG_COUNT_MAX.format(maximum=200)),
        # POLICY.md's 10 characters are a floor, not a default (review finding).
        ({"note_min_length": 9}, "note_min_length", pd.MSG_NOTE_FLOOR),
        ({"note_min_length": 0}, "note_min_length", pd.MSG_NOTE_FLOOR),
        (
            {"payout_max_attempts": 11},
            "payout_max_attempts",
            pd.MSG_COUNT_MAX.format(maximum=10),
        ),
        # Review rv_forms: the failed payments before an alert had no upper bound (one
        # administrator saved 999,999,999), nor had the attempts allowed.
        (
            {"payment_failures_for_intervention": 21, "payment_max_attempts": 20},
            "payment_failures_for_intervention",
            pd.MSG_COUNT_MAX.format(maximum=20),
        ),
        (
            {"payment_failures_for_intervention": 999_999_999},
            "payment_failures_for_intervention",
            pd.MSG_COUNT_MAX.format(maximum=20),
        ),
        (
            {"payment_max_attempts": 21},
            "payment_max_attempts",
            pd.MSG_COUNT_MAX.format(maximum=20),
        ),
        # ... and could exceed the attempts a patient may make: never reached.
        (
            {"payment_failures_for_intervention": 6},
            "payment_failures_for_intervention",
            pd.MSG_FAILURES_OVER_ATTEMPTS.format(attempts=5),
        ),
        (
            {"payment_max_attempts": 2},
            "payment_failures_for_intervention",
            pd.MSG_FAILURES_OVER_ATTEMPTS.format(attempts=2),
        ),
        (
            {"gst_mode": "everything"},
            "gst_mode",
            pd.MSG_CHOICE.format(choices="platform_only, fee_and_platform"),
        ),
        (
            {"default_payout_schedule": "DAILY"},
            "default_payout_schedule",
            pd.MSG_CHOICE.format(choices="INSTANT, WEEKLY, MONTHLY"),
        ),
        ({"reconciliation_run_time": "25:00"}, "reconciliation_run_time", pd.MSG_TIME),
        ({"tds_rules__0__from_fy": "2026"}, "tds_rules.0.from_fy", pd.MSG_FY),
        ({"tds_rules__0__section": ""}, "tds_rules.0.section", pd.MSG_SECTION),
        (
            {"extra_meet_link_domains": ["webex.com", "not a host"]},
            "extra_meet_link_domains",
            pd.MSG_DOMAIN.format(value="not a host"),
        ),
    ],
)
def test_each_problem_has_its_message(changes, path, message):
    errors = pd.problems(edited(**changes))
    assert errors.get(path) == message, errors


def test_good_edits_pass():
    data = edited(
        gst_bps=10_000,
        patient_cancellation_tiers__1__refund_bps=5_000,
        extra_meet_link_domains=["webex.com"],
        reminder_offsets=[7200, 600],
    )
    assert pd.problems(data) == {}
    policy = pd.from_data(data)
    assert policy.patient_cancellation_tiers[1].refund_bps == 5_000
    assert policy.allowed_meet_domains[-1] == "webex.com"


def test_the_longest_durations_allowed_pass():
    day = 86400
    data = edited(
        link_max_lifetime=365 * day,
        attention_window=365 * day,
        reminder_offsets=[30 * day, 3600],
        no_show_grace=7 * day,
        reconciliation_tolerance=day,
        note_min_length=200,
        payout_max_attempts=10,
        payment_max_attempts=20,
        payment_failures_for_intervention=20,
    )
    assert pd.problems(data) == {}
    assert pd.from_data(data).attention_window == timedelta(days=365)


def test_an_old_version_without_the_attempts_is_checked_against_the_default():
    """A version stored before a field existed reads it as POLICY.md's default
    (``from_data``): the rule between the two counts reads it the same way."""
    data = {k: v for k, v in DATA.items() if k != "payment_max_attempts"}
    assert pd.problems(data) == {}
    data["payment_failures_for_intervention"] = 6
    assert pd.problems(data) == {
        "payment_failures_for_intervention": pd.MSG_FAILURES_OVER_ATTEMPTS.format(attempts=5)
    }


def test_edits_of_money_and_controls_are_told_apart():
    assert pd.needs_second_admin(DATA, edited(patient_cancellation_tiers__1__deduction=5_000))
    assert pd.needs_second_admin(DATA, edited(gst_mode="fee_and_platform"))
    assert pd.needs_second_admin(DATA, edited(adjustment_approval_threshold=1))
    # Controls: the audit trail's note and what reconciliation calls a match.
    assert pd.needs_second_admin(DATA, edited(note_min_length=20))
    assert pd.needs_second_admin(DATA, edited(reconciliation_tolerance=30))
    assert not pd.needs_second_admin(DATA, edited(reminder_offsets=[7200]))
    assert not pd.needs_second_admin(DATA, edited(payment_max_attempts=6))
    assert not pd.needs_second_admin(DATA, edited(reconciliation_run_time="05:00"))
    assert pd.changed_paths(DATA, edited(gst_bps=1200)) == {"gst_bps": (1800, 1200)}


def test_a_link_lifetime_stored_under_razorpays_floor_is_read_as_the_floor():
    """A version saved before the floor (any positive duration was accepted) still loads,
    and links are made at least 15 minutes ahead, as Razorpay asks."""
    assert pd.from_data({**DATA, "link_min_lifetime": 300}).link_min_lifetime == timedelta(
        minutes=15
    )
    assert pd.from_data({**DATA, "link_min_lifetime": 1200}).link_min_lifetime == timedelta(
        minutes=20
    )
    assert pd.problems({**DATA, "link_min_lifetime": 900}) == {}
    with pytest.raises(ValueError, match="at least 15 minutes"):
        DEFAULT_POLICY.with_changes(link_min_lifetime=timedelta(minutes=14))


def test_unknown_paths_are_ignored():
    assert pd.unflatten(DATA, {"nope": 1, "patient_cancellation_tiers.9.notice": 1}) == DATA


def test_a_version_stored_under_the_floor_is_read_as_the_floor():
    """Saved before the floor existed (one administrator set 0): it still loads, and the
    floor applies; the Policy itself never holds less."""
    stored = {**DATA, "note_min_length": 0}
    assert pd.from_data(stored).note_min_length == pd.NOTE_FLOOR == 10
    assert pd.from_data({**DATA, "note_min_length": 14}).note_min_length == 14
    assert pd.at_floor("note_min_length", 3) == 10 and pd.at_floor("payment_max_attempts", 1) == 1
    with pytest.raises(ValueError, match="at least 10"):
        DEFAULT_POLICY.with_changes(note_min_length=9)


# --- TDS rules: an edit means "from financial year X on" (settle_tds_rules) -----------------


def _rules(*triples):
    return [
        {"from_fy": fy, "rate_bps": bps, "threshold": 5_000_000, "section": "194J"}
        for fy, bps in triples
    ]


def _settled(before_rules, after_rules):
    before = {**pd.to_data(DEFAULT_POLICY), "tds_rules": before_rules}
    return pd.settle_tds_rules(before, {**before, "tds_rules": after_rules})["tds_rules"]


def test_a_rule_from_a_later_year_keeps_the_earlier_years_rule():
    """Review finding: "TDS from financial year 2027-28, rate 2%" edited the only rule, and
    every year before 2027-28 fell back to it (this one too)."""
    after = _settled(_rules(("2025-26", 1_000)), _rules(("2027-28", 200)))
    assert after == _rules(("2027-28", 200), ("2025-26", 1_000))
    policy = pd.from_data({"tds_rules": after})
    assert policy.tds_rule_for("2026-27").rate_bps == 1_000
    assert policy.tds_rule_for("2027-28").rate_bps == 200


def test_the_same_year_edits_the_rule_and_an_earlier_year_replaces_the_rules_from_it():
    two = _rules(("2027-28", 200), ("2025-26", 1_000))
    assert _settled(two, _rules(("2027-28", 300), ("2025-26", 1_000))) == _rules(
        ("2027-28", 300), ("2025-26", 1_000)
    )
    # From 2026-27 on: the 2027-28 rule goes, the years before 2026-27 keep theirs.
    assert _settled(two, _rules(("2026-27", 500), ("2025-26", 1_000))) == _rules(
        ("2026-27", 500), ("2025-26", 1_000)
    )
    assert _settled(two, _rules(("2025-26", 500), ("2025-26", 1_000))) == _rules(("2025-26", 500))


def test_untouched_or_malformed_tds_rules_are_left_as_they_are():
    one = _rules(("2025-26", 1_000))
    assert _settled(one, one) == one
    bad = _rules(("2027", 200))
    assert _settled(one, bad) == bad
    assert pd.problems({**pd.to_data(DEFAULT_POLICY), "tds_rules": bad})["tds_rules.0.from_fy"]


def test_two_tds_rules_from_the_same_year_are_refused():
    data = {**pd.to_data(DEFAULT_POLICY), "tds_rules": _rules(("2026-27", 500), ("2026-27", 800))}
    assert pd.problems(data)["tds_rules.1.from_fy"] == pd.MSG_FY_TWICE.format(fy="2026-27")


def test_a_policy_keeps_its_tds_rules_newest_first():
    """The form edits ``tds_rules.0``: always the rule of the latest year."""
    from portal.domain.policy import TdsRule

    rules = (TdsRule("2024-25", 1_000, 1, "194J"), TdsRule("2027-28", 200, 1, "194J"))
    policy = DEFAULT_POLICY.with_changes(tds_rules=rules)
    assert [r.from_fy for r in policy.tds_rules] == ["2027-28", "2024-25"]
    assert pd.to_data(policy)["tds_rules"][0]["from_fy"] == "2027-28"
