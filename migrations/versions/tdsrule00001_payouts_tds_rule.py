"""payouts: the TDS rule each payout was deducted under (rate and threshold)

Revision ID: tdsrule00001
Revises: dlvusr0a0001
Create Date: 2026-12-07 10:00:00

A payout's TDS was worked out by replaying the year's earlier payouts under the rule in
force *today*: after a rate change partway through a year, the next payout settled the
difference for every earlier one (a rate raised from 10% to 20% took 20% of the year's
earlier gross again; lowered to 5%, it gave the earlier "excess" back), and an ordinary
payout's TDS note was written against today's rate. POLICY.md: payouts are paid under the
rules of the day they are paid. So each payout keeps the rule it was deducted under,
``payouts.tds_rate_bps`` and ``payouts.tds_threshold`` (beside ``tds_section``), and the
replay takes each earlier payout under its own (docs/payouts.md).

Backfill: the rule a payout was deducted under is the one its creation read, the policy
version in force when it was made (``created_at``; approved versions only: a withdrawn
one never applied) and, in it, the rule for the payout's financial year, as
``Policy.tds_rule_for`` chose it then (the latest rule starting at or before the year,
else the first). Before any version was saved the app's ``POLICY`` setting was in force
(POLICY.md's defaults). Both columns are NOT NULL, with a CHECK.

Locks (PostgreSQL): one transaction (migrations/env.py); ADD COLUMN holds an ACCESS
EXCLUSIVE lock on payouts until the commit, so payout runs, webhooks and the payout pages
wait. The columns are added with a default (no table rewrite) and only payouts whose rule
differs from it are written: 0.3 s for 100,000 payouts, 1.7 s for 1,000,000 under one rule
(the shared 2-core machine at load 10; docs/deploy.md). On SQLite the batch rebuilds the
table under the one write lock.
"""

import sqlalchemy as sa
from alembic import op
from flask import current_app

import portal.db  # custom column types (UTCDateTime)

revision = "tdsrule00001"
down_revision = "dlvusr0a0001"
branch_labels = None
depends_on = None

CHECK = "tds_rate_bps BETWEEN 0 AND 10000 AND tds_threshold >= 0"


def _start(label):
    """A financial year label ("2026-27") as the year it starts in: they sort alike."""
    return int(str(label)[:4])


def _rule_for(rules, fy):
    """``Policy.tds_rule_for`` on stored rules: the latest starting at or before ``fy``;
    before every rule, the first."""
    ordered = sorted(rules, key=lambda r: _start(r["from_fy"]))
    chosen = [r for r in ordered if _start(r["from_fy"]) <= _start(fy)]
    return chosen[-1] if chosen else ordered[0]


def _defaults():
    """The rules in force before any version was saved: the app's POLICY setting, else
    POLICY.md's defaults (``policies.store._fallback``)."""
    from portal.domain.policy import DEFAULT_POLICY

    pol = current_app.config.get("POLICY") or DEFAULT_POLICY
    return [
        {"from_fy": r.from_fy, "rate_bps": r.rate_bps, "threshold": r.threshold}
        for r in pol.tds_rules
    ]


# Typed, so both dialects compare and hand back datetimes and JSON alike.
policy_versions = sa.table(
    "policy_versions",
    sa.column("id", sa.Integer),
    sa.column("values", sa.JSON),
    sa.column("effective_from", portal.db.UTCDateTime),
    sa.column("status", sa.String),
)
payouts = sa.table(
    "payouts",
    sa.column("financial_year", sa.String),
    sa.column("created_at", portal.db.UTCDateTime),
    sa.column("tds_rate_bps", sa.Integer),
    sa.column("tds_threshold", sa.BigInteger),
)


def _windows(bind):
    """[(from, until, rules)]: the TDS rules in force from ``from`` (None: always) until
    ``until`` (None: still), as the policy store decides which version is in force (the
    latest effective_from at or before the time, ties: the higher id)."""
    versions = bind.execute(
        sa.select(policy_versions.c.effective_from, policy_versions.c["values"])
        .where(policy_versions.c.status == "APPROVED")
        .order_by(policy_versions.c.effective_from, policy_versions.c.id)
    ).all()
    starts = [None, *(v.effective_from for v in versions)]
    rules = [_defaults(), *(v[1]["tds_rules"] for v in versions)]
    ends = [*starts[1:], None]
    # A version followed by another from the same moment is never in force.
    return [(lo, hi, r) for lo, hi, r in zip(starts, ends, rules) if lo is None or lo != hi]


def _backfill(bind):
    """The columns come NOT NULL with the rule of the newest window for the newest year
    as their default (PostgreSQL adds such a column without rewriting the table), then one
    UPDATE per (window, financial year) writes only the rows whose rule differs: where the
    rule never changed, none (row by row, every row written, 100,000 payouts took 23 s on
    PostgreSQL; every row in a few statements, 6 to 10 s, the machine loaded)."""
    years = sorted(bind.execute(sa.select(payouts.c.financial_year).distinct()).scalars())
    windows = _windows(bind)
    common = _rule_for(windows[-1][2], years[-1] if years else "2000-01")
    for name, kind, value in (
        ("tds_rate_bps", sa.Integer(), common["rate_bps"]),
        ("tds_threshold", sa.BigInteger(), common["threshold"]),
    ):
        op.add_column(
            "payouts",
            sa.Column(name, kind, nullable=False, server_default=sa.text(str(int(value)))),
        )
    for lo, hi, rules in windows:
        for fy in years:
            rule = _rule_for(rules, fy)
            rate, threshold = int(rule["rate_bps"]), int(rule["threshold"])
            query = sa.update(payouts).where(
                payouts.c.financial_year == fy,
                sa.or_(payouts.c.tds_rate_bps != rate, payouts.c.tds_threshold != threshold),
            )
            if lo is not None:
                query = query.where(payouts.c.created_at >= lo)
            if hi is not None:
                query = query.where(payouts.c.created_at < hi)
            bind.execute(query.values(tds_rate_bps=rate, tds_threshold=threshold))


def upgrade():
    _backfill(op.get_bind())
    # The model has no default: every payout states the rule it was deducted under.
    with op.batch_alter_table("payouts") as batch:
        batch.alter_column("tds_rate_bps", existing_type=sa.Integer(), server_default=None)
        batch.alter_column("tds_threshold", existing_type=sa.BigInteger(), server_default=None)
        batch.create_check_constraint(op.f("ck_payouts_tds_rule_valid"), CHECK)


def downgrade():
    with op.batch_alter_table("payouts") as batch:
        batch.drop_constraint(op.f("ck_payouts_tds_rule_valid"), type_="check")
        batch.drop_column("tds_threshold")
        batch.drop_column("tds_rate_bps")
